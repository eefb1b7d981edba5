import test from "ava";
import fc from "fast-check";
import { planCluster, type NodeSnapshot } from "../../coordinator/planner.js";
import { facts, node, passingPreflight, snapshotOf, specOf } from "../helpers/snapshots.js";

const spec3 = specOf(["node1", "node2", "node3"]);
const completed = { node: "node1", claimedAt: "t", completedAt: "t" };
const completedN1 = { node: "n1", claimedAt: "t", completedAt: "t" };
const clusteredView = (names: string[]) => names.map((n, i) => ({ name: n, status: "Online", roles: i === 0 ? ["database-leader", "database"] : ["database"] }));

test("before any claim, only the chosen member bootstraps and the others wait for it", (t) => {
  const plan = planCluster(snapshotOf(spec3, [node("node3", facts(false)), node("node2", facts(false)), node("node1", facts(false))]));
  t.is(plan.phase, "pending");
  t.is(plan.decisions.node1?.kind, "bootstrap");
  t.like(plan.decisions.node2, { kind: "wait" });
  t.regex((plan.decisions.node2 as { reason: string }).reason, /waiting for node1 to bootstrap/);
  t.deepEqual(plan.steps.map((s) => s.action), ["bootstrap"]);
});

test("while the bootstrap member's agent has not enrolled, nobody bootstraps", (t) => {
  const plan = planCluster(snapshotOf(spec3, [node("node2", facts(false)), node("node3", facts(false))]));
  t.false(Object.values(plan.decisions).some((d) => d.kind === "bootstrap"));
  t.regex((plan.decisions.node2 as { reason: string }).reason, /its agent has not enrolled yet/);
  t.deepEqual(plan.steps.map((s) => s.action), ["wait"]);
});

test("a stored claim wins over the spec's choice", (t) => {
  const plan = planCluster(snapshotOf(spec3, [node("node1", facts(false)), node("node2", facts(false))], { claim: { node: "node2", claimedAt: "t" } }));
  t.is(plan.decisions.node2?.kind, "bootstrap");
  t.like(plan.decisions.node1, { kind: "prepare", target: { node: "node2" } }, "the first joiner checks its way to the bootstrap member meanwhile");
  t.is(plan.phase, "bootstrapping");
});

test("after the bootstrap, the first pending member prepares, then joins once its preflight passed", (t) => {
  const base = { claim: completed, members: clusteredView(["node1"]) };
  const nodes = [node("node1", facts(true, ["node1"])), node("node2", facts(false)), node("node3", facts(false))];
  const first = planCluster(snapshotOf(spec3, nodes, base));
  t.is(first.decisions.node1?.kind, "member");
  t.like(first.decisions.node2, { kind: "prepare", target: { node: "node1", address: "192.0.2.11:8443" } });
  t.is(first.decisions.node3?.kind, "prepare", "the next in line prepares while it waits");

  const ready = nodes.map((n) => (n.node === "node2" ? { ...n, preflight: passingPreflight("192.0.2.11:8443"), preflightAt: 1_000_000 } : n));
  const second = planCluster(snapshotOf(spec3, ready, base));
  t.like(second.decisions.node2, { kind: "join", sponsor: "node1" });
  t.deepEqual(second.steps.filter((s) => s.action === "join").map((s) => ("node" in s ? s.node : "")), ["node2"]);
});

test("joins are one at a time: a member queued behind a running join waits", (t) => {
  const nodes = [
    node("node1", facts(true, ["node1"])),
    node("node2", facts(false), { preflight: passingPreflight("192.0.2.11:8443"), preflightAt: 1_000_000 }),
    node("node3", facts(false), { preflight: passingPreflight("192.0.2.11:8443"), preflightAt: 1_000_000 }),
  ];
  const plan = planCluster(snapshotOf(spec3, nodes, { claim: completed, members: clusteredView(["node1"]), op: { id: "x", kind: "join", node: "node2", startedAt: "t" } }));
  t.is(plan.decisions.node2?.kind, "join", "the joiner holding the lock gets a fresh token if it asks again");
  t.like(plan.decisions.node3, { kind: "wait" });
  t.regex((plan.decisions.node3 as { reason: string }).reason, /after node2/);
});

test("a failed preflight holds the member with the failing check and lets the next one go", (t) => {
  const failing = { target: "192.0.2.11:8443", at: "t", checks: [{ name: "port" as const, ok: false, detail: "cannot reach node1", fix: "open TCP 8443" }] };
  const nodes = [
    node("node1", facts(true, ["node1"])),
    node("node2", facts(false), { preflight: failing, preflightAt: 1_000_000 - 1_000 }),
    node("node3", facts(false), { preflight: passingPreflight("192.0.2.11:8443"), preflightAt: 1_000_000 }),
  ];
  const plan = planCluster(snapshotOf(spec3, nodes, { claim: completed, members: clusteredView(["node1"]) }));
  t.like(plan.decisions.node2, { kind: "held" });
  t.regex((plan.decisions.node2 as { reason: string }).reason, /preflight failed: cannot reach node1/);
  t.like(plan.decisions.node3, { kind: "join" });
});

test("a preflight that failed before the bootstrap finished is run again, not held against the member", (t) => {
  const failing = { target: "192.0.2.11:8443", at: "t", checks: [{ name: "port" as const, ok: false, detail: "refused" }] };
  const claim = { node: "node1", claimedAt: "t", completedAt: new Date(1_000_000 - 100).toISOString() };
  const nodes = [node("node1", facts(true, ["node1"])), node("node2", facts(false), { preflight: failing, preflightAt: 1_000_000 - 200 })];
  const plan = planCluster(snapshotOf(specOf(["node1", "node2"]), nodes, { claim, members: clusteredView(["node1"]) }));
  t.is(plan.decisions.node2?.kind, "prepare");
});

test("a stale preflight is run again before joining", (t) => {
  const nodes = [node("node1", facts(true, ["node1"])), node("node2", facts(false), { preflight: passingPreflight("192.0.2.11:8443"), preflightAt: 1_000_000 - 60_000 })];
  const plan = planCluster(snapshotOf(specOf(["node1", "node2"]), nodes, { claim: completed, members: clusteredView(["node1"]) }));
  t.is(plan.decisions.node2?.kind, "prepare");
});

test("a member whose join failed waits out its backoff", (t) => {
  const nodes = [
    node("node1", facts(true, ["node1"])),
    node("node2", facts(false), { failures: 2, lastFailure: "boom", lastFailureAt: 1_000_000 - 500, preflight: passingPreflight("192.0.2.11:8443"), preflightAt: 1_000_000 }),
  ];
  const plan = planCluster(snapshotOf(specOf(["node1", "node2"]), nodes, { claim: completed, members: clusteredView(["node1"]) }));
  t.like(plan.decisions.node2, { kind: "wait" });
  t.true((plan.decisions.node2 as { retryAfterMs: number }).retryAfterMs > 1_000);
});

test("with no healthy member to mint tokens, joiners wait", (t) => {
  const nodes = [node("node1", facts(true, ["node1"]), { agentOnline: false }), node("node2", facts(false))];
  const plan = planCluster(snapshotOf(specOf(["node1", "node2"]), nodes, { claim: completed, members: clusteredView(["node1"]) }));
  t.regex((plan.decisions.node2 as { reason: string }).reason, /no healthy member can mint/);
});

test("a member clustered into some other cluster is not taken for a member of this one", (t) => {
  const nodes = [node("node1", facts(true, ["node1"])), node("node2", facts(true, ["strangerA", "strangerB"]))];
  const plan = planCluster(snapshotOf(specOf(["node1", "node2"]), nodes, { claim: completed, members: clusteredView(["node1"]) }));
  t.not(plan.decisions.node2?.kind, "member");
});

test("a member dropped from the spec is removed when the rules allow, refused with reasons otherwise", (t) => {
  const view = [...clusteredView(["node1", "node2", "node3"]), { name: "node4", status: "Online", roles: [] }];
  const nodes = ["node1", "node2", "node3", "node4"].map((n) => node(n, facts(true, ["node1", "node2", "node3", "node4"])));
  const plan = planCluster(snapshotOf(spec3, nodes, { claim: completed, members: view }));
  t.like(plan.steps.find((s) => s.action === "remove"), { node: "node4", force: false });

  const held = planCluster(snapshotOf(spec3, nodes, { claim: completed, members: view, hold: { held: true, reasons: ["split"] } }));
  t.like(held.steps.find((s) => s.action === "refused"), { node: "node4" });

  const small = specOf(["node1", "node2"]);
  const three = planCluster(snapshotOf(small, nodes.slice(0, 3), { claim: completed, members: clusteredView(["node1", "node2", "node3"]) }));
  const refused = three.steps.find((s) => s.action === "refused");
  t.truthy(refused);
  t.regex(refused!.detail, /at least 3/);
});

test("settings, member metadata and resources become steps once the cluster exists", (t) => {
  const spec = specOf(["node1"], {
    server_settings: { config: { "cluster.max_voters": "3" } },
    storage_pools: { local: { driver: "dir" } },
  });
  const view = [{ name: "node1", status: "Online", roles: ["database-leader", "database"], description: "", failureDomain: "default", groups: ["default"] }];
  const plan = planCluster(snapshotOf(spec, [node("node1", facts(true, ["node1"]))], { claim: completed, members: view }));
  t.deepEqual(plan.steps.map((s) => s.action), ["apply-settings", "ensure-pool"]);
  t.is(plan.phase, "ready");
});

// ------------------------------------------------------------------ properties

const names = ["n1", "n2", "n3", "n4", "n5"];
const arbitraryNode = (name: string) =>
  fc.record({
    enrolled: fc.boolean(),
    agentOnline: fc.boolean(),
    clustered: fc.boolean(),
    reachable: fc.boolean(),
  }).map((x): NodeSnapshot => node(name, { address: "a", agentVersion: "t", incus: { observedAt: 0, reachable: x.reachable, clustered: x.clustered, version: "6.0.4", members: x.clustered ? [name] : [] } }, { enrolled: x.enrolled, agentOnline: x.agentOnline }));

test("property: whatever agents say, at most one member is told to bootstrap, and only the claim holder once there is a claim", (t) => {
  fc.assert(
    fc.property(
      fc.tuple(...names.map(arbitraryNode)),
      fc.option(fc.record({ node: fc.constantFrom(...names), completed: fc.boolean() }), { nil: null }),
      (nodes, claim) => {
        const snap = snapshotOf(specOf(names), nodes, {
          claim: claim ? { node: claim.node, claimedAt: "t", ...(claim.completed ? { completedAt: "t" } : {}) } : null,
        });
        const plan = planCluster(snap);
        const bootstrappers = Object.entries(plan.decisions).filter(([, d]) => d.kind === "bootstrap").map(([n]) => n);
        if (bootstrappers.length > 1) return false;
        if (claim?.completed) return bootstrappers.length === 0;
        if (claim) return bootstrappers.every((n) => n === claim.node);
        return bootstrappers.every((n) => n === "n1");
      },
    ),
    { numRuns: 3000 },
  );
  t.pass();
});

test("property: at most one member is told to join at a time", (t) => {
  fc.assert(
    fc.property(fc.tuple(...names.map(arbitraryNode)), fc.option(fc.constantFrom(...names), { nil: null }), (nodes, opNode) => {
      const withPreflight = nodes.map((n) => ({ ...n, preflight: passingPreflight("192.0.2.11:8443"), preflightAt: 1_000_000 }));
      const snap = snapshotOf(specOf(names), withPreflight, {
        claim: completedN1,
        members: [{ name: "n1", status: "Online", roles: ["database"] }],
        op: opNode ? { id: "o", kind: "join", node: opNode, startedAt: "t" } : null,
      });
      const joiners = Object.values(planCluster(snap).decisions).filter((d) => d.kind === "join");
      return joiners.length <= 1;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
