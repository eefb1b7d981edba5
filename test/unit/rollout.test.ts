import test from "ava";
import { newOperation } from "../../coordinator/operations/new-operation.js";
import type { RolloutOperation, RolloutPhase } from "../../coordinator/operations/operation.js";
import { rolloutLogic } from "../../coordinator/operations/rollout.js";
import type { OperationContext } from "../../coordinator/operations/logic.js";
import { facts, formed, healthOf, host, NOW, observed, situationOf, specOf } from "../helpers/situations.js";

const names = ["node1", "node2", "node3", "node4"];
const hosts = names.map((n, i) => host(n, facts(true, names, `192.0.2.${11 + i}:8443`)));
const everyoneHome = names.map((n) => ({ name: `c-${n}`, project: "default", location: n, status: "Running" }));

function rollout(phase: RolloutPhase, member = "node4", extra: Partial<RolloutOperation> = {}): RolloutOperation {
  const op = newOperation("rollout", {
    cluster: "c",
    member,
    requestedBy: "operator",
    params: { members: ["node4", "node3"], action: "restart-incus", mode: "auto", settleMs: 0 },
    data: { index: member === "node4" ? 0 : 1, memberPhase: phase, phaseSince: NOW - 5_000, instances: { node4: [{ name: "c-node4", project: "default", running: true }] }, deferred: [], completed: [] },
    progress: { done: 0, total: 2 },
    now: NOW - 10_000,
  }) as RolloutOperation;
  return { ...op, ...extra };
}

function ctx(health = healthOf(names.map((name) => ({ name }))), instances = everyoneHome): OperationContext {
  return {
    s: situationOf(specOf(names), hosts, { claim: formed(), health, observed: observed({ instances }, NOW) }),
    executor: (exclude) => names.find((n) => n !== exclude) ?? null,
    joinTimeoutMs: 120_000,
    convergence: { state: "converged", reason: "" },
    now: NOW,
  };
}

test("after a restore, the rollout's own member counting as in maintenance is no reason to wait: it moves to the next member", (t) => {
  const own = healthOf(names.map((name) => ({ name })), { status: "maintenance", reasons: [{ code: "maintenance", member: "node4", message: "node4: rollout: waiting-healthy", expected: true }] });
  const action = rolloutLogic.next(rollout("waiting-healthy"), ctx(own));
  t.is(action.kind, "update");
  t.like((action as { op: RolloutOperation }).op, { member: "node3", data: { memberPhase: "gate", completed: ["node4"] } });
});

test("after a restore, anything else wrong with the cluster holds the rollout, and says what", (t) => {
  const other = healthOf(names.map((name) => ({ name, status: name === "node2" ? "Offline" : "Online" })), { status: "degraded", reasons: [{ code: "incus-down", member: "node2", message: "Incus on node2 is unreachable" }] });
  const action = rolloutLogic.next(rollout("waiting-healthy"), ctx(other));
  t.is(action.kind, "update");
  t.regex((action as { op: RolloutOperation }).op.reason, /node2 is unreachable/);
});

test("after a restore, the member's instances must be back on it, seen in a look taken since", (t) => {
  const away = everyoneHome.map((i) => (i.name === "c-node4" ? { ...i, location: "node1" } : i));
  const action = rolloutLogic.next(rollout("waiting-healthy"), ctx(undefined, away));
  t.regex((action as { op: RolloutOperation }).op.reason, /c-node4 to run on node4/);
  const stale = { ...ctx(), s: { ...ctx().s, observed: observed({ instances: everyoneHome }, NOW - 60_000) } };
  t.regex((rolloutLogic.next(rollout("waiting-healthy"), stale) as { op: RolloutOperation }).op.reason, /fresh look/);
});

test("the gate holds while another member is out of service, and pauses or stops only there", (t) => {
  const evacuated = healthOf(names.map((name) => ({ name, status: name === "node1" ? "Evacuated" : "Online" })), { status: "maintenance", reasons: [{ code: "member-evacuated", member: "node1", message: "node1 is evacuated", expected: true }] });
  const held = rolloutLogic.next(rollout("gate", "node3"), ctx(evacuated));
  t.regex((held as { op: RolloutOperation }).op.reason, /held at the gate before node3/);
  const paused = rolloutLogic.next(rollout("gate", "node3", { pauseRequested: true }), ctx());
  t.like((paused as { op: RolloutOperation }).op, { state: "paused" });
  const cancelled = rolloutLogic.next(rollout("gate", "node3", { cancelRequested: true }), ctx());
  t.like((cancelled as { op: RolloutOperation }).op, { state: "cancelled" });
  const go = rolloutLogic.next(rollout("gate", "node3", { data: { ...rollout("gate", "node3").data, gateSince: NOW - 1 } }), ctx());
  t.like(go, { kind: "command", body: { kind: "evacuate", member: "node3" } });
});

/** An upgrade rollout of node4 then node3 to Incus 6.0.5, with what each host's package manager offers. */
function upgrade(phase: RolloutPhase, member = "node4", data: Partial<RolloutOperation["data"]> = {}): RolloutOperation {
  const op = rollout(phase, member);
  return { ...op, params: { ...op.params, action: "upgrade-incus", targetVersion: "6.0.5" }, data: { ...op.data, ...data } } as RolloutOperation;
}
function upgradeCtx(hostFacts: Record<string, Partial<ReturnType<typeof facts>["incus"]> & { candidateVersion?: string }>, extra: { now?: number } = {}): OperationContext {
  const base = ctx();
  const upgradedHosts = names.map((n, i) => {
    const { candidateVersion, ...incus } = hostFacts[n] ?? {};
    const f = facts(true, names, `192.0.2.${11 + i}:8443`, candidateVersion ? { candidateVersion } : {});
    return host(n, { ...f, incus: { ...f.incus, ...incus } });
  });
  return { ...base, s: situationOf(specOf(names), upgradedHosts, { claim: formed(), health: base.s.health!, observed: base.s.observed! }), ...(extra.now ? { now: extra.now } : {}) };
}

test("an upgrade rollout's first gate checks that the target version is offered on every member it takes, and names those without it", (t) => {
  const go = { gateSince: NOW - 1 };
  const missing = rolloutLogic.next(upgrade("gate", "node4", go), upgradeCtx({ node4: { candidateVersion: "6.0.5" } }));
  t.regex((missing as { op: RolloutOperation }).op.reason, /Incus 6\.0\.5 is not available on node3: check their package sources/);
  const offered = rolloutLogic.next(upgrade("gate", "node4", go), upgradeCtx({ node4: { candidateVersion: "6.0.5" }, node3: { version: "6.0.5" } }));
  t.like(offered, { kind: "command", body: { kind: "evacuate", member: "node4" } });
});

test("an upgraded member is back only on the target version; one that waits for the others is set aside and the next member taken", (t) => {
  const sent = { actionSentAt: NOW - 20_000, pidBefore: 1 };
  const old = rolloutLogic.next(upgrade("waiting-online", "node4", sent), upgradeCtx({ node4: { version: "6.0.4", pid: 2 } }));
  t.regex((old as { op: RolloutOperation }).op.reason, /node4 runs Incus 6\.0\.4, waiting for 6\.0\.5/);

  const blocked = rolloutLogic.next(upgrade("waiting-online", "node4", { ...sent, phaseSince: NOW - 15_000 }), upgradeCtx({ node4: { version: "6.0.5", pid: 2, notReady: "waiting for other cluster members to upgrade" } }));
  const moved = (blocked as { op: RolloutOperation }).op;
  t.like(moved, { member: "node3", data: { memberPhase: "gate", deferred: ["node4"] } });
  t.regex(moved.reason, /node4 waits for the other members to be upgraded/);
});
