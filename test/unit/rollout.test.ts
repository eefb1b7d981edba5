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
