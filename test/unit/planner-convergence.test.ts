import test from "ava";
import { MANAGED_KEY, type ObservedResource } from "../../shared/index.js";
import { planCluster } from "../../coordinator/planner/plan-cluster.js";
import { DEFAULT_LIMITS, type ClusterSituation } from "../../coordinator/planner/types.js";
import { facts, formed, healthOf, host, NOW, observed, situationOf, specOf } from "../helpers/situations.js";

const names = ["node1", "node2", "node3"];
const members = names.map((n) => ({ name: n }));
const hosts = names.map((n) => host(n, facts(true, names)));
const spec = (extra: Record<string, unknown>) => specOf(names, extra);
const base = (extra: Partial<ClusterSituation> = {}) => ({ claim: formed(), health: healthOf(members), ...extra });
const plan = (s: ClusterSituation, failures = new Map()) => planCluster(s, DEFAULT_LIMITS, failures);
const viewMembers = names.map((name) => ({ name, description: "", failureDomain: "default", groups: ["default"] }));

function resource(name: string, kind: string, extra: Partial<ObservedResource> = {}): ObservedResource {
  return {
    name,
    kind,
    managed: true,
    status: "Created",
    description: "",
    config: { [MANAGED_KEY]: "managed" },
    members: Object.fromEntries(names.map((n) => [n, { status: "Created", config: {} }])),
    ...extra,
  };
}

const withPool = spec({ storage_pools: { local: { driver: "dir", description: "fast" } }, networks: { br0: { type: "bridge", config: { "ipv4.address": "10.10.0.1/24" } } } });

test("a converged cluster: no change, phase ready, converged", (t) => {
  const o = observed({ members: viewMembers, pools: [resource("local", "dir", { description: "fast" })], networks: [resource("br0", "bridge", { config: { "ipv4.address": "10.10.0.1/24", [MANAGED_KEY]: "managed" } })] });
  const p = plan(situationOf(withPool, hosts, base({ observed: o })));
  t.deepEqual(p.changes, []);
  t.is(p.phase, "ready");
  t.is(p.convergence.state, "converged");
  t.is(p.next, null);
});

test("a setting changed by hand is a change with the value now and the value wanted, corrected next", (t) => {
  const s = spec({ server_settings: { config: { "cluster.offline_threshold": "20" } } });
  const p = plan(situationOf(s, hosts, base({ observed: observed({ members: viewMembers, config: { "cluster.offline_threshold": "30" } }) })));
  t.like(p.changes[0], { object: "setting cluster.offline_threshold", action: "set", now: "30", wanted: "20", status: "next" });
  t.like(p.next, { kind: "apply-settings", set: { "cluster.offline_threshold": "20" } });
  t.is(p.phase, "converging");
});

test("a setting already at Incus's default is not a change", (t) => {
  const s = spec({ server_settings: { config: { "cluster.max_standby": "2" } } });
  t.deepEqual(plan(situationOf(s, hosts, base({ observed: observed({ members: viewMembers }) }))).changes, []);
});

test("a deleted network is created again; a pool whose description changed is updated in place", (t) => {
  const o = observed({ members: viewMembers, pools: [resource("local", "dir", { description: "slow" })], networks: [] });
  const p = plan(situationOf(withPool, hosts, base({ observed: o })));
  t.like(p.changes.find((c) => c.object === "pool local description"), { action: "update", now: "slow", wanted: "fast" });
  t.like(p.changes.find((c) => c.object === "network br0"), { action: "create", now: null });
  t.like(p.next, { kind: "converge-pool", name: "local" });
});

test("a network config change in the spec is an update, never skipped as already present", (t) => {
  const o = observed({ members: viewMembers, pools: [resource("local", "dir", { description: "fast" })], networks: [resource("br0", "bridge", { config: { "ipv4.address": "10.20.0.1/24" } })] });
  const p = plan(situationOf(withPool, hosts, base({ observed: o })));
  t.like(p.changes[0], { object: "network br0 ipv4.address", action: "update", now: "10.20.0.1/24", wanted: "10.10.0.1/24" });
  t.like(p.next, { kind: "converge-network", name: "br0" });
});

test("a network errored on one member is to be finished; a driver change is refused with the reason, never skipped", (t) => {
  const errored = resource("br0", "bridge", { status: "Errored", members: { node1: { status: "Created", config: {} }, node2: { status: "Created", config: {} }, node3: { status: "Pending", config: {} } } });
  const p = plan(situationOf(withPool, hosts, base({ observed: observed({ members: viewMembers, pools: [resource("local", "zfs")], networks: [errored] }) })));
  t.like(p.changes.find((c) => c.object === "network br0"), { action: "finish", now: "Errored", status: "next" });
  t.regex(p.changes.find((c) => c.object === "network br0")!.reason, /node3/);
  t.like(p.changes.find((c) => c.object === "pool local"), { status: "blocked", now: "zfs", wanted: "dir" });
  t.is(p.convergence.state, "failed");
});

test("a pool dropped from the spec is listed; deleted only with prune or an absent entry", (t) => {
  const o = observed({ members: viewMembers, pools: [resource("old", "dir")] });
  const kept = plan(situationOf(spec({}), hosts, base({ observed: o })));
  t.like(kept.changes[0], { object: "pool old", action: "delete", status: "report-only" });
  t.is(kept.convergence.state, "drifted");
  const pruned = plan(situationOf(spec({ prune: true }), hosts, base({ observed: o })));
  t.like(pruned.next, { kind: "delete-pool", name: "old" });
  const absent = plan(situationOf(spec({ storage_pools: { old: { driver: "dir", present: false } } }), hosts, base({ observed: o })));
  t.like(absent.next, { kind: "delete-pool", name: "old" });
  const foreign = plan(situationOf(spec({}), hosts, base({ observed: observed({ members: viewMembers, pools: [resource("theirs", "dir", { config: {} })] }) })));
  t.deepEqual(foreign.changes, [], "a pool incus-fleet did not create is not its business");
});

test("the report-only drift policy lists every difference and corrects none", (t) => {
  const s = spec({ drift_policy: "report", server_settings: { config: { "cluster.offline_threshold": "20" } } });
  const p = plan(situationOf(s, hosts, base({ observed: observed({ members: viewMembers, config: { "cluster.offline_threshold": "30" } }) })));
  t.like(p.changes[0], { status: "report-only" });
  t.is(p.next, null);
  t.is(p.convergence.state, "drifted");
});

test("a pool a member cannot create is held at preflight, naming the member, before any member is changed", (t) => {
  const s = spec({ storage_pools: { fast: { driver: "zfs" } } });
  const noZfs = names.map((n) => host(n, facts(true, names, undefined, n === "node2" ? { capabilities: { storageDrivers: ["dir"], networkTypes: [], missing: { zfs: "no zfs tools" } } } : { capabilities: { storageDrivers: ["dir", "zfs"], networkTypes: [] } })));
  const p = plan(situationOf(s, noZfs, base({ observed: observed({ members: viewMembers }) })));
  t.like(p.changes[0], { object: "pool fast", status: "blocked" });
  t.regex(p.changes[0]!.reason, /held at preflight: node2 cannot create a zfs pool: no zfs tools/);
  t.is(p.next, null);
});

test("member metadata differing from the spec is set", (t) => {
  const s = specOf(names, {}).members.map((m) => m);
  const described = specOf(names);
  described.members[1] = { ...s[1]!, description: "second", failureDomain: "rack2", groups: ["compute"] };
  const p = plan(situationOf(described, hosts, base({ observed: observed({ members: viewMembers }) })));
  t.like(p.changes.find((c) => c.object === "member node2 failure domain"), { now: "default", wanted: "rack2" });
  t.like(p.next, { kind: "set-member", node: "node2" });
});

test("a change that failed a moment ago waits out its backoff, and the status says failed with the reason", (t) => {
  const s = spec({ server_settings: { config: { "cluster.offline_threshold": "20" } } });
  const failures = new Map([["settings", { error: "Incus said no", at: NOW - 1_000, count: 1 }]]);
  const p = plan(situationOf(s, hosts, base({ observed: observed({ members: viewMembers, config: { "cluster.offline_threshold": "30" } }) })), failures);
  t.is(p.next, null);
  t.is(p.convergence.state, "failed");
  t.regex(p.convergence.reason, /Incus said no/);
});
