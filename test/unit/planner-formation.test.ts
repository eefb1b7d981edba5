import test from "ava";
import fc from "fast-check";
import { MANAGED_KEY } from "../../shared/index.js";
import { planCluster } from "../../coordinator/planner/plan-cluster.js";
import { DEFAULT_LIMITS } from "../../coordinator/planner/types.js";
import { newOperation } from "../../coordinator/operations/new-operation.js";
import { facts, formed, healthOf, host, NOW, observed, preflight, situationOf, specOf } from "../helpers/situations.js";

const spec3 = specOf(["node1", "node2", "node3"]);
const plan = (s: Parameters<typeof planCluster>[0]) => planCluster(s, DEFAULT_LIMITS);
const reason = (d: unknown) => (d as { reason: string }).reason;
const n1Member = { claim: formed(), health: healthOf([{ name: "node1" }]), observed: observed() };

test("before any claim nobody bootstraps: the choice is recorded first, then only the chosen member is told", (t) => {
  const hosts = [host("node3", facts(false)), host("node2", facts(false)), host("node1", facts(false))];
  const first = plan(situationOf(spec3, hosts));
  t.is(first.phase, "pending");
  t.false(Object.values(first.decisions).some((d) => d.kind === "bootstrap"), "nobody bootstraps before the claim is stored");
  t.deepEqual(first.next, { kind: "claim-bootstrap", node: "node1" });

  const claimed = plan(situationOf(spec3, hosts, { claim: { node: "node1", claimedAt: "t" } }));
  t.is(claimed.decisions.node1?.kind, "bootstrap");
  t.like(claimed.decisions.node2, { kind: "wait" });
  t.regex(reason(claimed.decisions.node2), /waiting for node1 to bootstrap/);
  t.is(claimed.phase, "bootstrapping");
});

test("while the bootstrap member's agent has not enrolled, nothing is claimed", (t) => {
  const p = plan(situationOf(spec3, [host("node2", facts(false)), host("node3", facts(false))]));
  t.is(p.next, null);
  t.regex(reason(p.decisions.node2), /its agent has not enrolled yet/);
  t.like(p.changes.find((c) => c.object === "member node1"), { action: "bootstrap", status: "pending" });
});

test("a stored claim wins over the spec's choice", (t) => {
  const p = plan(situationOf(spec3, [host("node1", facts(false)), host("node2", facts(false))], { claim: { node: "node2", claimedAt: "t" } }));
  t.is(p.decisions.node2?.kind, "bootstrap");
  t.is(p.decisions.node1?.kind, "wait");
});

test("a clustered member with no claim is adopted, never bootstrapped again", (t) => {
  const p = plan(situationOf(spec3, [host("node1", facts(false)), host("node2", facts(true, ["node2", "nodeX"]))]));
  t.deepEqual(p.next, { kind: "adopt-cluster", node: "node2" });
  t.false(Object.values(p.decisions).some((d) => d.kind === "bootstrap"));
});

test("the bootstrap member reporting itself clustered completes the bootstrap", (t) => {
  const p = plan(situationOf(spec3, [host("node1", facts(true, ["node1"])), host("node2", facts(false))], { claim: { node: "node1", claimedAt: "t" } }));
  t.deepEqual(p.next, { kind: "complete-bootstrap", node: "node1" });
});

test("after the bootstrap the cluster is read first, then the first member prepares, is probed back, and only then joins", (t) => {
  const hosts = [host("node1", facts(true, ["node1"])), host("node2", facts(false)), host("node3", facts(false))];
  const unobserved = plan(situationOf(spec3, hosts, { ...n1Member, observed: null, observationDue: true }));
  t.deepEqual(unobserved.next, { kind: "observe", via: "node1" });

  const first = plan(situationOf(spec3, hosts, n1Member));
  t.is(first.decisions.node1?.kind, "member");
  t.like(first.decisions.node2, { kind: "prepare", target: { node: "node1", address: "192.0.2.11:8443" } });
  t.is(first.decisions.node3?.kind, "prepare", "the one after it prepares while it waits");

  const forward = hosts.map((h) => (h.node === "node2" ? { ...h, preflight: preflight("192.0.2.11:8443", true, NOW, false) } : h));
  const probing = plan(situationOf(spec3, forward, n1Member));
  t.like(probing.decisions.node2, { kind: "wait" });
  t.like(probing.next, { kind: "probe-reverse", node: "node2", via: "node1" });

  const both = hosts.map((h) => (h.node === "node2" ? { ...h, preflight: preflight("192.0.2.11:8443") } : h));
  const ready = plan(situationOf(spec3, both, n1Member));
  t.deepEqual(ready.next, { kind: "begin-join", node: "node2", sponsor: "node1" });
  t.like(ready.changes.find((c) => c.object === "member node2"), { action: "join", status: "next", now: "not a member", wanted: "member" });
  // A look fallen due (the last join just ended) is taken while the next join runs, not before it.
  t.deepEqual(plan(situationOf(spec3, both, { ...n1Member, observationDue: true })).next, { kind: "begin-join", node: "node2", sponsor: "node1" });
});

test("a join in progress: the joiner gets its token, the others wait their turn and do not prepare in a loop", (t) => {
  const op = newOperation("join", { cluster: "c", member: "node2", requestedBy: "spec", params: { sponsor: "node1" }, data: { token: { sealedToken: "x", clusterCertificate: "c", clusterAddress: "192.0.2.11:8443", mintedAt: NOW }, handedAt: NOW }, now: NOW });
  const hosts = [host("node1", facts(true, ["node1"])), host("node2", facts(false), { preflight: preflight("192.0.2.11:8443") }), host("node3", facts(false), { preflight: preflight("192.0.2.11:8443", true, NOW, false) })];
  const p = plan(situationOf(spec3, hosts, { ...n1Member, active: op }));
  t.is(p.decisions.node2?.kind, "join");
  t.like(p.decisions.node3, { kind: "wait" }, "a member whose preflight waits for the reverse check is not sent to prepare again");
  t.regex(reason(p.decisions.node3), /after node2/);
  t.deepEqual(p.next, { kind: "drive-operation" });
  // A look fallen due waits until the joins are done; an operation that waits on one (a restore's instances coming
  // back) gets it first.
  t.deepEqual(plan(situationOf(spec3, hosts, { ...n1Member, active: op, observationDue: true })).next, { kind: "drive-operation" });
  const restore = newOperation("restore", { cluster: "c", member: "node1", requestedBy: "operator", params: {}, data: {}, now: NOW });
  t.like(plan(situationOf(spec3, hosts, { ...n1Member, active: restore, observationDue: true })).next, { kind: "observe" });
  // Once node2 holds its token, node3 is probed back meanwhile, so that its join can start as soon as node2's ends;
  // after that probe has failed once, it waits for its ordinary turn.
  const handed = { ...op, phase: "handed" };
  t.like(plan(situationOf(spec3, hosts, { ...n1Member, active: handed })).next, { kind: "probe-reverse", node: "node3", via: "node1" });
  const failed = new Map([["member node3 preflight", { error: "timeout", at: NOW, count: 1 }]]);
  t.deepEqual(planCluster(situationOf(spec3, hosts, { ...n1Member, active: handed }), DEFAULT_LIMITS, failed).next, { kind: "drive-operation" });
  t.deepEqual(plan(situationOf(spec3, hosts, { ...n1Member, active: { ...op, phase: "minting" } })).next, { kind: "drive-operation" }, "not while the token is being minted");
  // Once node3 is through its preflight both ways, its token is minted in the background while node2 joins; once.
  const ready = [...hosts.slice(0, 2), host("node3", facts(false), { preflight: preflight("192.0.2.11:8443") })];
  t.deepEqual(plan(situationOf(spec3, ready, { ...n1Member, active: handed })).next, { kind: "mint-ahead", node: "node3", via: "node1" });
  t.deepEqual(plan(situationOf(spec3, ready, { ...n1Member, active: handed, tokensAhead: new Set(["node3"]) })).next, { kind: "drive-operation" });
  t.deepEqual(plan(situationOf(spec3, ready, { ...n1Member, active: { ...op, phase: "minting" } })).next, { kind: "drive-operation" }, "not while the sponsor mints node2's");
});

test("a failed preflight holds the member with its failing check, and lets the next one go", (t) => {
  const hosts = [
    host("node1", facts(true, ["node1"])),
    host("node2", facts(false), { preflight: preflight("192.0.2.11:8443", false, NOW - 1_000) }),
    host("node3", facts(false), { preflight: preflight("192.0.2.11:8443") }),
  ];
  const p = plan(situationOf(spec3, hosts, n1Member));
  t.like(p.decisions.node2, { kind: "held" });
  t.regex(reason(p.decisions.node2), /preflight failed: cannot reach/);
  t.deepEqual(p.next, { kind: "begin-join", node: "node3", sponsor: "node1" });
  t.like(p.changes.find((c) => c.object === "member node2"), { status: "blocked" });
  t.is(p.convergence.state, "failed", "a member held at preflight is a failure to converge, with the reason");
});

test("a stale preflight, or one from before the cluster existed, is run again", (t) => {
  const stale = plan(situationOf(specOf(["node1", "node2"]), [host("node1", facts(true, ["node1"])), host("node2", facts(false), { preflight: preflight("192.0.2.11:8443", true, NOW - 60_000) })], n1Member));
  t.is(stale.decisions.node2?.kind, "prepare");
  const early = plan(situationOf(specOf(["node1", "node2"]), [host("node1", facts(true, ["node1"])), host("node2", facts(false), { preflight: preflight("192.0.2.11:8443", false, NOW - 61_000) })], { ...n1Member, now: NOW }));
  t.is(early.decisions.node2?.kind, "prepare");
});

test("a member whose join failed waits out its backoff, doubling", (t) => {
  const failed = (failures: number) =>
    plan(situationOf(specOf(["node1", "node2"]), [host("node1", facts(true, ["node1"])), host("node2", facts(false), { failures, lastFailure: "boom", lastFailureAt: NOW - 500, preflight: preflight("192.0.2.11:8443") })], n1Member));
  t.like(failed(2).decisions.node2, { kind: "wait" });
  t.true((failed(3).decisions.node2 as { retryAfterMs: number }).retryAfterMs > (failed(2).decisions.node2 as { retryAfterMs: number }).retryAfterMs);
  t.is(failed(2).next, null);
});

test("with no healthy member to mint tokens, joiners wait with the reason", (t) => {
  const p = plan(situationOf(specOf(["node1", "node2"]), [host("node1", facts(true, ["node1"]), { agentOnline: false }), host("node2", facts(false))], n1Member));
  t.regex(reason(p.decisions.node2), /no healthy member can mint/);
});

test("a host clustered into some other cluster is not taken for a member of this one", (t) => {
  const p = plan(situationOf(specOf(["node1", "node2"]), [host("node1", facts(true, ["node1"])), host("node2", facts(true, ["strangerA", "strangerB"]))], n1Member));
  t.not(p.decisions.node2?.kind, "member");
});

test("settings that shape membership go right after the bootstrap, before any join", (t) => {
  const spec = specOf(["node1", "node2", "node3"], { server_settings: { config: { "cluster.max_voters": "5", "cluster.offline_threshold": "30" } } });
  const hosts = [host("node1", facts(true, ["node1"])), host("node2", facts(false), { preflight: preflight("192.0.2.11:8443") })];
  // node2 is through its preflight: its token is minted in the background while the settings are applied.
  t.deepEqual(plan(situationOf(spec, hosts, n1Member)).next, { kind: "mint-ahead", node: "node2", via: "node1" });
  // Before that, node2 is probed back, so that its token can be minted while the settings go in; not again once that failed.
  const unprobed = [hosts[0]!, host("node2", facts(false), { preflight: preflight("192.0.2.11:8443", true, NOW, false) })];
  t.like(plan(situationOf(spec, unprobed, n1Member)).next, { kind: "probe-reverse", node: "node2", via: "node1" });
  const failed = new Map([["member node2 preflight", { error: "timeout", at: NOW, count: 1 }]]);
  t.like(planCluster(situationOf(spec, unprobed, n1Member), DEFAULT_LIMITS, failed).next, { kind: "apply-settings" });
  const p = plan(situationOf(spec, hosts, { ...n1Member, tokensAhead: new Set(["node2"]) }));
  t.like(p.next, { kind: "apply-settings", set: { "cluster.max_voters": "5", "cluster.offline_threshold": "30" } });
  t.like(p.changes.find((c) => c.object === "setting cluster.max_voters"), { now: "3 (default)", wanted: "5", status: "next" });
  // Applied, but not read back yet: the look comes before the join, or the join would go in under the old settings.
  t.like(plan(situationOf(spec, hosts, { ...n1Member, observationDue: true })).next, { kind: "observe" });
  const applied = plan(situationOf(spec, hosts, { ...n1Member, observed: observed({ config: { "cluster.max_voters": "5", "cluster.offline_threshold": "30" } }) }));
  t.like(applied.next, { kind: "begin-join", node: "node2" });
});

test("the spec's pools and networks are created right after the bootstrap, before any join", (t) => {
  const spec = specOf(["node1", "node2", "node3"], { storage_pools: { local: { driver: "dir" } }, networks: { br0: { type: "bridge" } } });
  const hosts = [host("node1", facts(true, ["node1"])), host("node2", facts(false), { preflight: preflight("192.0.2.11:8443") })];
  const created = (name: string, kind: string) => ({ name, kind, managed: true, status: "Created", description: "", config: { [MANAGED_KEY]: "managed" }, members: { node1: { status: "Created", config: {} } } });
  const steps = (o: Parameters<typeof observed>[0]) => plan(situationOf(spec, hosts, { ...n1Member, observed: observed(o), tokensAhead: new Set(["node2"]) })).next;
  t.like(steps({}), { kind: "converge-pool", name: "local" });
  t.like(steps({ pools: [created("local", "dir")] }), { kind: "converge-network", name: "br0" });
  t.like(steps({ pools: [created("local", "dir")], networks: [created("br0", "bridge")] }), { kind: "begin-join", node: "node2" });
});

test("exactly one bootstrap: whatever hosts say and in whatever order, no plan tells two members to bootstrap", (t) => {
  fc.assert(
    fc.property(fc.subarray(["node1", "node2", "node3"]), fc.option(fc.constantFrom("node1", "node2", "node3"), { nil: undefined }), fc.subarray(["node1", "node2", "node3"]), (enrolled, claimed, clustered) => {
      const hosts = enrolled.map((n) => host(n, facts(clustered.includes(n), clustered.includes(n) ? [n] : undefined)));
      const p = plan(situationOf(spec3, hosts, claimed ? { claim: { node: claimed, claimedAt: "t" } } : {}));
      const bootstrapping = Object.entries(p.decisions).filter(([, d]) => d.kind === "bootstrap").map(([n]) => n);
      return bootstrapping.length <= 1 && (bootstrapping.length === 0 || bootstrapping[0] === claimed);
    }),
  );
  t.pass();
});
