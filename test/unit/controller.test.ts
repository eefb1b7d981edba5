import test, { type ExecutionContext } from "ava";
import type { CommandBody, CommandResult } from "../../shared/index.js";
import { newOperation } from "../../coordinator/operations/new-operation.js";
import { announcing } from "../../coordinator/operations/operation.js";
import { succeed } from "../../coordinator/operations/logic.js";
import { ControllerHarness, SharedStore, type Responder } from "../helpers/controller-harness.js";
import { facts, healthOf } from "../helpers/situations.js";

const spec3 = { clusters: { c: { cluster_password: "test-password", members: { node1: { address: "192.0.2.11" }, node2: { address: "192.0.2.12" }, node3: { address: "192.0.2.13" } } } } };
const observation = (members = ["node1"]): CommandResult => ({
  kind: "observe",
  observation: { config: {}, members: members.map((name) => ({ name, description: "", failureDomain: "default", groups: ["default"] })), pools: [], networks: [], instances: [] },
});
const token: CommandResult = { kind: "mint-token", sealedToken: "sealed", clusterCertificate: "CERT", clusterAddress: "192.0.2.11:8443" };

/** An agent that answers what a healthy member of a one-member cluster answers. */
function healthyAgent(members = ["node1"]) {
  return (_node: string, body: CommandBody): CommandResult | Error => {
    switch (body.kind) {
      case "observe":
        return observation(members);
      case "mint-token":
        return token;
      case "probe":
        return { kind: "probe", reachable: true, rttMs: 0.2 };
      default:
        return new Error(`unexpected ${body.kind}`);
    }
  };
}


test("formation through the ports: the claim is stored before anyone is told to bootstrap, once", async (t) => {
  const h = await ControllerHarness.create(spec3);
  t.teardown(() => h.stop());
  h.controller.own("c", 1);
  for (const n of ["node2", "node1", "node3"]) await h.enroll(n, facts(false, undefined, `192.0.2.1${n.slice(-1)}:8443`));
  await h.advance(500);
  t.deepEqual(h.claims.claimOf("c")?.node, "node1");
  t.is(h.controller.assignmentFor("c", "node1").kind, "bootstrap");
  t.is(h.controller.assignmentFor("c", "node2").kind, "wait");
  t.is(h.kinds().filter((k) => k.startsWith("bootstrap.claimed")).length, 1);

  // node1 reports it is clustered: the bootstrap is recorded, the cluster is read, node2 prepares.
  h.respond = healthyAgent();
  h.health.set("c", healthOf([{ name: "node1" }]));
  await h.pulled("node1", facts(true, ["node1"], "192.0.2.11:8443"));
  await h.advance(500);
  t.truthy(h.claims.claimOf("c")?.completedAt);
  t.true(h.kinds().includes("bootstrap.completed:node1"));
  t.true(h.commands.some((c) => c.node === "node1" && c.body.kind === "observe"));
  t.is(h.controller.assignmentFor("c", "node2").kind, "prepare");
  t.is(h.controller.assignmentFor("c", "node1").kind, "member");
});

/** A cluster bootstrapped on node1, with node2 enrolled to join it. */
async function bootstrappedWithJoiner(t: ExecutionContext, spec: object = spec3, respond: Responder = healthyAgent()): Promise<ControllerHarness> {
  const h = await ControllerHarness.create(spec);
  t.teardown(() => h.stop());
  h.respond = respond;
  await h.claims.claim("c", { node: "node1", claimedAt: "t", completedAt: new Date(h.clock.now() - 60_000).toISOString() });
  h.health.set("c", healthOf([{ name: "node1" }]));
  h.controller.own("c", 1);
  await h.enroll("node1", facts(true, ["node1"], "192.0.2.11:8443"));
  await h.enroll("node2", facts(false, undefined, "192.0.2.12:8443"));
  return h;
}

test("a join: preflight both ways, a token minted by the sponsor's agent, handed to the joiner, done when Incus lists it", async (t) => {
  const h = await bootstrappedWithJoiner(t);
  await h.advance(500);
  t.is(h.controller.assignmentFor("c", "node2").kind, "prepare");

  await h.facts.pulled("c", "node2", facts(false, undefined, "192.0.2.12:8443"), { target: "192.0.2.11:8443", at: "t", checks: [{ name: "port", ok: true, detail: "ok" }] });
  await h.advance(500);
  t.true(h.commands.some((c) => c.node === "node1" && c.body.kind === "probe"), "the sponsor checks it reaches the joiner back");
  t.true(h.commands.some((c) => c.node === "node1" && c.body.kind === "mint-token"));
  const a = h.controller.assignmentFor("c", "node2");
  t.like(a, { kind: "join", sealedToken: "sealed", clusterCertificate: "CERT", clusterAddress: "192.0.2.11:8443" });
  t.is(h.active()?.phase, "handed");

  h.health.set("c", healthOf([{ name: "node1" }, { name: "node2" }]));
  await h.pulled("node2", facts(true, ["node1", "node2"], "192.0.2.12:8443"));
  await h.advance(500);
  t.is(h.active(), null, "the lock is released");
  t.true(h.kinds().includes("join.completed:node2"));
  t.is(h.kinds().filter((k) => k === "join.started:node2").length, 1);
  const done = h.ops.list("c").find((o) => o.kind === "join");
  t.is(done?.state, "succeeded");
  t.deepEqual(Object.keys(done?.data ?? {}), ["handedAt"], "the used token is not kept in the finished record");
});

test("the next joiner's token is minted while the current one joins: its join starts with it, without minting again", async (t) => {
  const h = await bootstrappedWithJoiner(t);
  await h.enroll("node3", facts(false, undefined, "192.0.2.13:8443"));
  let minted = 0;
  h.respond = (node, body) => (body.kind === "mint-token" ? { ...token, sealedToken: `sealed-for-${body.joiner}-${++minted}` } : healthyAgent()(node, body));
  const preflightDone = { target: "192.0.2.11:8443", at: "t", checks: [{ name: "port" as const, ok: true, detail: "ok" }] };
  await h.facts.pulled("c", "node2", facts(false, undefined, "192.0.2.12:8443"), preflightDone);
  await h.facts.pulled("c", "node3", facts(false, undefined, "192.0.2.13:8443"), preflightDone);
  await h.advance(500);
  t.like(h.controller.assignmentFor("c", "node2"), { kind: "join", sealedToken: "sealed-for-node2-1" });
  t.deepEqual(h.commands.filter((c) => c.body.kind === "mint-token").map((c) => (c.body as { joiner: string }).joiner), ["node2", "node3"], "node3's token is minted while node2 joins");
  t.like(h.controller.assignmentFor("c", "node3"), { kind: "wait" });

  h.health.set("c", healthOf([{ name: "node1" }, { name: "node2" }]));
  await h.pulled("node2", facts(true, ["node1", "node2"], "192.0.2.12:8443"));
  await h.advance(500);
  t.like(h.active(), { kind: "join", member: "node3", phase: "handed" });
  t.like(h.controller.assignmentFor("c", "node3"), { kind: "join", sealedToken: "sealed-for-node3-2" });
  t.is(minted, 2, "no token is minted twice");
  t.is(h.kinds().filter((k) => k === "join.started:node3").length, 1);
});

/** A new cluster whose spec asks for settings, a pool and a network before anyone joins. */
async function bootstrappedWithResources(t: ExecutionContext, readsBack: boolean): Promise<ControllerHarness> {
  const spec = {
    clusters: {
      c: {
        ...spec3.clusters.c,
        server_settings: { config: { "cluster.max_voters": "5" } },
        storage_pools: { local: { driver: "dir", member_config: { node2: { source: "/srv/local" } } } },
        networks: { br0: { type: "bridge", config: { "ipv4.address": "none" } } },
      },
    },
  };
  let config: Record<string, string> = {};
  const made = new Map<string, Extract<CommandResult, { kind: "observe" }>["observation"]["pools"][number]>();
  const resource = (name: string, kind: string, cfg: Record<string, string>) => ({ name, kind, managed: true, status: "Created", description: "", config: cfg, members: { node1: { status: "Created", config: {} } } });
  const respond: Responder = (node, body) => {
    switch (body.kind) {
      case "observe": {
        const o = observation(["node1"]) as Extract<CommandResult, { kind: "observe" }>;
        return { kind: "observe", observation: { ...o.observation, config, pools: made.has("local") ? [made.get("local")!] : [], networks: made.has("br0") ? [made.get("br0")!] : [] } };
      }
      case "apply-config":
        config = { ...config, ...body.config };
        return { kind: "apply-config", changed: Object.keys(body.config), ...(readsBack ? { config } : {}) };
      case "converge-pool":
      case "converge-network": {
        const r = resource(body.name, body.kind === "converge-pool" ? body.driver : body.type, body.config);
        made.set(body.name, r);
        return { kind: body.kind, changes: ["created"], ...(readsBack ? { observed: r } : {}) };
      }
      default:
        return healthyAgent()(node, body);
    }
  };
  return bootstrappedWithJoiner(t, spec, respond);
}

const commandKinds = (h: ControllerHarness) => h.commands.filter((c) => c.body.kind !== "probe").map((c) => c.body.kind);

test("a new cluster's settings, pool and network are made one after another on one look: each change's read-back feeds the next plan, and joiners bring their member config", async (t) => {
  const h = await bootstrappedWithResources(t, true);
  await h.advance(500);
  t.deepEqual(commandKinds(h), ["observe", "apply-config", "converge-pool", "converge-network"]);
  t.is(h.controller.assignmentFor("c", "node2").kind, "prepare");

  await h.facts.pulled("c", "node2", facts(false, undefined, "192.0.2.12:8443"), { target: "192.0.2.11:8443", at: "t", checks: [{ name: "port", ok: true, detail: "ok" }] });
  await h.advance(500);
  const a = h.controller.assignmentFor("c", "node2");
  t.like(a, { kind: "join" });
  t.deepEqual(a.kind === "join" ? a.memberConfig : null, [{ entity: "storage-pool", name: "local", key: "source", value: "/srv/local" }]);
});

test("an agent that reads nothing back after a change: the cluster is looked at again before the next one", async (t) => {
  const h = await bootstrappedWithResources(t, false);
  await h.advance(500);
  t.deepEqual(commandKinds(h), ["observe", "apply-config", "observe", "converge-pool", "observe", "converge-network", "observe"]);
  t.is(h.controller.assignmentFor("c", "node2").kind, "prepare");
});

test("a joiner that reports a failure fails the join, releases the lock and backs off", async (t) => {
  const h = await bootstrappedWithJoiner(t);
  await h.facts.pulled("c", "node2", facts(false, undefined, "192.0.2.12:8443"), { target: "192.0.2.11:8443", at: "t", checks: [{ name: "port", ok: true, detail: "ok" }] });
  await h.advance(500);
  t.is(h.active()?.phase, "handed");
  await h.facts.report("c", "node2", { cluster: "c", node: "node2", instance: "i", seq: 9, sentAt: 0, outcome: "failed", assignment: "join", detail: "the token expired", durationMs: 5, facts: facts(false, undefined, "192.0.2.12:8443") });
  await h.advance(100);
  t.is(h.active(), null);
  const failed = h.ops.list("c").find((o) => o.kind === "join")!;
  t.regex(failed.reason, /the token expired/);
  t.false("token" in failed.data, "the token of a failed join is not kept either");
  t.is(h.controller.assignmentFor("c", "node2").kind, "wait", "it waits out its backoff");
});

test("a new owner picks up a join where the last one left it: the token it handed is still the joiner's, once", async (t) => {
  const store = new SharedStore();
  const first = await ControllerHarness.create(spec3, store);
  t.teardown(() => first.stop());
  const now = first.clock.now();
  await first.claims.claim("c", { node: "node1", claimedAt: "t", completedAt: new Date(now - 60_000).toISOString() });
  const op = newOperation("join", { cluster: "c", member: "node2", requestedBy: "spec", params: { sponsor: "node1" }, data: { token: { sealedToken: "from-the-old-owner", clusterCertificate: "C", clusterAddress: "192.0.2.11:8443", mintedAt: now }, handedAt: now }, now });
  await first.ops.begin({ ...op, phase: "handed", owner: { coordinator: "old", epoch: 1 } }, now);

  const second = await ControllerHarness.create(spec3, store);
  t.teardown(() => second.stop());
  second.respond = healthyAgent();
  second.health.set("c", healthOf([{ name: "node1" }]));
  second.controller.own("c", 7);
  await second.enroll("node1", facts(true, ["node1"], "192.0.2.11:8443"));
  await second.enroll("node2", facts(false, undefined, "192.0.2.12:8443"));
  await second.advance(500);
  t.like(second.controller.assignmentFor("c", "node2"), { kind: "join", sealedToken: "from-the-old-owner" });
  t.is(second.active()?.owner?.epoch, 7, "the operation carries its new owner's lease");
  t.false(second.commands.some((c) => c.body.kind === "mint-token"), "no second token is minted for a join already handed out");
  t.is(second.kinds().filter((k) => k.startsWith("operation.resumed")).length, 1);
});

test("a lock whose operation was never written is released after a while; nothing waits on it forever", async (t) => {
  const h = await ControllerHarness.create(spec3);
  t.teardown(() => h.stop());
  h.respond = healthyAgent();
  await h.store.opsKv.create("lock.c", new TextEncoder().encode(JSON.stringify({ id: "ghost", at: h.clock.now() })));
  h.controller.own("c", 1);
  await h.advance(2_000);
  t.truthy(h.ops.staleLock("c"), "not before it is clearly abandoned");
  await h.advance(10_000);
  t.is(h.ops.staleLock("c"), null);
});

test("an evacuation runs through another member's agent, reports what moved, and releases the lock; a resumed one does not evacuate twice", async (t) => {
  const h = await ControllerHarness.create(spec3);
  t.teardown(() => h.stop());
  const members = ["node1", "node2", "node3"];
  await h.claims.claim("c", { node: "node1", claimedAt: "t", completedAt: new Date(h.clock.now() - 60_000).toISOString() });
  h.health.set("c", healthOf(members.map((name) => ({ name }))));
  let evacuations = 0;
  let finish: (r: CommandResult) => void = () => undefined;
  h.respond = (node, body) => {
    if (body.kind === "observe") return observation(members);
    if (body.kind === "evacuate") {
      evacuations += 1;
      t.not(node, "node3", "never through the member being evacuated");
      return new Promise<CommandResult>((resolve) => (finish = resolve));
    }
    return new Error("unexpected");
  };
  h.controller.own("c", 1);
  for (const n of members) await h.enroll(n, facts(true, members, `192.0.2.1${n.slice(-1)}:8443`));
  const op = newOperation("evacuate", { cluster: "c", member: "node3", requestedBy: "operator", params: { mode: "auto" }, data: {}, now: h.clock.now() });
  await h.ops.begin(op, h.clock.now());
  await h.advance(1_000);
  t.is(evacuations, 1);
  t.is(h.active()?.phase, "evacuating");
  await h.advance(5_000);
  t.is(evacuations, 1, "a command in flight is not sent again");
  finish({ kind: "evacuate", before: [{ name: "web", project: "default", location: "node3", status: "Running" }], after: [{ name: "web", project: "default", location: "node1", status: "Running", origin: "node3" }] });
  await h.advance(500);
  t.is(h.active(), null);
  const done = h.events.find((e) => e.kind === "member.evacuated");
  t.deepEqual(done?.data?.moved, [{ name: "web", project: "default", from: "node3", to: "node1" }]);
});

test("a removal from the spec: evacuate, remove, clear the origins instances keep of it; the member is left out of old views", async (t) => {
  const h = await ControllerHarness.create({ clusters: { c: { cluster_password: "test-password", members: { node1: { address: "192.0.2.11" }, node2: { address: "192.0.2.12" }, node3: { address: "192.0.2.13" }, node4: { address: "192.0.2.14", present: false } } } } });
  t.teardown(() => h.stop());
  const members = ["node1", "node2", "node3", "node4"];
  await h.claims.claim("c", { node: "node1", claimedAt: "t", completedAt: new Date(h.clock.now() - 60_000).toISOString() });
  h.health.set("c", healthOf(members.map((name) => ({ name }))));
  const sent: string[] = [];
  // Incus lists node4 until it is removed; the agents' views (health) lag behind, as they do.
  let listed = members;
  h.respond = (node, body) => {
    sent.push(`${body.kind}@${node}`);
    if (body.kind === "observe") {
      const o = observation(listed) as Extract<CommandResult, { kind: "observe" }>;
      return { kind: "observe", observation: { ...o.observation, instances: [{ name: "db", project: "default", location: "node4", status: "Running" }] } };
    }
    if (body.kind === "evacuate") return { kind: "evacuate", before: [], after: [{ name: "db", project: "default", location: "node2", status: "Running", origin: "node4" }] };
    if (body.kind === "remove-member") {
      listed = members.slice(0, 3);
      return { kind: "remove-member", removed: true };
    }
    if (body.kind === "clear-evacuation-origin") return { kind: "clear-evacuation-origin", cleared: ["default/db"] };
    return new Error("unexpected");
  };
  h.controller.own("c", 1);
  for (const n of members) await h.enroll(n, facts(true, members, `192.0.2.1${n.slice(-1)}:8443`));
  await h.advance(1_000);
  t.true(sent.includes("evacuate@node1") || sent.includes("evacuate@node2"));
  t.true(sent.some((s) => s.startsWith("remove-member@")));
  t.deepEqual(h.nudges, [], "members' answers have not changed");
  h.health.set("c", healthOf(members.slice(0, 3).map((name) => ({ name }))));
  await h.pulled("node4", facts(false, undefined, "192.0.2.14:8443"));
  await h.advance(1_000);
  t.deepEqual(h.nudges, ["c"], "node4's agent, which only asks every so often, is told to ask now: it is retired");
  t.like(h.controller.assignmentFor("c", "node4"), { kind: "retired" });
  t.true(sent.some((s) => s.startsWith("clear-evacuation-origin@")));
  t.is(h.active(), null);
  t.is(h.kinds().filter((k) => k === "member.removed:node4").length, 1);
  // Views read before the removal still list it: it is not removed again.
  h.health.set("c", healthOf(members.map((name) => ({ name }))));
  await h.advance(2_000);
  t.is(sent.filter((s) => s.startsWith("remove-member")).length, 1);
});

test("a new owner does not remove again a member its dead predecessor removed a moment ago, from views read before it left, nor one it finds gone mid-removal", async (t) => {
  const spec = { clusters: { c: { cluster_password: "test-password", members: { node1: { address: "192.0.2.11" }, node2: { address: "192.0.2.12" }, node3: { address: "192.0.2.13" }, node4: { address: "192.0.2.14", present: false }, node5: { address: "192.0.2.15", present: false } } } } };
  const store = new SharedStore();
  const first = await ControllerHarness.create(spec, store);
  t.teardown(() => first.stop());
  const now = first.clock.now();
  await first.claims.claim("c", { node: "node1", claimedAt: "t", completedAt: new Date(now - 60_000).toISOString() });
  // node4's removal ended just before its owner died; node5's was removed by Incus, the owner dying before it wrote so.
  const done = newOperation("remove", { cluster: "c", member: "node4", requestedBy: "spec", params: {}, data: {}, now: now - 5_000 });
  const begun = await first.ops.begin({ ...done, phase: "cleaning-up", owner: { coordinator: "old", epoch: 1 } }, now - 5_000);
  await first.ops.update({ ...done, phase: "succeeded", state: "succeeded", finishedAt: new Date(now - 1_000).toISOString(), owner: { coordinator: "old", epoch: 1 } }, begun!.revision);
  const cut = newOperation("remove", { cluster: "c", member: "node5", requestedBy: "spec", params: {}, data: {}, now });
  await first.ops.begin({ ...cut, phase: "removing", owner: { coordinator: "old", epoch: 1 } }, now);

  const second = await ControllerHarness.create(spec, store);
  t.teardown(() => second.stop());
  const all = ["node1", "node2", "node3", "node4", "node5"];
  const sent: string[] = [];
  second.respond = (node, body) => {
    sent.push(`${body.kind}:${"member" in body ? body.member : ""}`);
    if (body.kind === "observe") return observation(["node1", "node2", "node3"]);
    if (body.kind === "clear-evacuation-origin") return { kind: "clear-evacuation-origin", cleared: [] };
    if (body.kind === "remove-member" || body.kind === "evacuate") return { kind: "remove-member", removed: true };
    return new Error(`unexpected ${body.kind}@${node}`);
  };
  // node5 is gone from the views the new owner reads first; node4 is listed again by a view read before it left.
  second.health.set("c", healthOf(["node1", "node2", "node3", "node4"].map((name) => ({ name }))));
  second.controller.own("c", 2);
  for (const n of all.slice(0, 3)) await second.enroll(n, facts(true, all, `192.0.2.1${n.slice(-1)}:8443`));
  await second.advance(1_000);
  t.is(second.ops.get("c", cut.id)?.op.state, "succeeded", "the cut-off removal is finished");
  t.deepEqual(second.ops.get("c", cut.id)?.op.announced?.events.map((e) => e.kind), ["operation.succeeded", "member.removed"], "its end is stored with the events it announces");
  // Then a view read before node5 left lists both.
  second.health.set("c", healthOf(all.map((name) => ({ name }))));
  await second.advance(3_000);
  t.deepEqual(sent.filter((s) => s.startsWith("remove-member") || s.startsWith("evacuate")), [], "nothing is removed again");
  t.deepEqual(second.ops.list("c").filter((o) => o.kind === "remove").map((o) => o.member).sort(), ["node4", "node5"], "no new removal");
  t.is(second.kinds().filter((k) => k.startsWith("member.removed")).length, 1, "node5's removal reported once, by its new owner");
});

test("a new owner publishes the events its predecessor stored with an operation's end and died before sending, once; those of an end long past it leaves alone", async (t) => {
  const store = new SharedStore();
  const first = await ControllerHarness.create(spec3, store);
  t.teardown(() => first.stop());
  const now = first.clock.now();
  await first.claims.claim("c", { node: "node1", claimedAt: "t", completedAt: new Date(now - 600_000).toISOString() });
  const end = async (member: string, at: number) => {
    const op = { ...newOperation("evacuate", { cluster: "c", member, requestedBy: "operator", params: { mode: "auto" }, data: {}, now: at - 10_000 }), owner: { coordinator: "old", epoch: 1 } };
    const begun = await first.ops.begin(op, at - 10_000);
    const done = succeed(op, `${member} evacuated`, at);
    await first.ops.update(announcing(done.op, done.events, at), begun!.revision);
    return done.events;
  };
  const longAgo = await end("node3", now - 300_000);
  const lost = await end("node2", now - 2_000);

  const second = await ControllerHarness.create(spec3, store);
  t.teardown(() => second.stop());
  second.respond = healthyAgent();
  second.health.set("c", healthOf([{ name: "node1" }, { name: "node2" }, { name: "node3" }]));
  second.controller.own("c", 2);
  await second.advance(3_000);
  second.controller.disown("c");
  second.controller.own("c", 3);
  await second.advance(1_000);
  const ids = second.events.map((e) => e.id);
  t.deepEqual(ids.filter((id) => id === lost[0]!.id), [lost[0]!.id], "published once, by the next owner");
  t.false(ids.includes(longAgo[0]!.id), "an end from minutes ago was announced then");
});
