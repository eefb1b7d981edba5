import test from "ava";
import { planCluster } from "../../coordinator/planner/plan-cluster.js";
import { DEFAULT_LIMITS } from "../../coordinator/planner/types.js";
import { facts, formed, healthOf, host, observed, situationOf, specOf } from "../helpers/situations.js";

const all = ["node1", "node2", "node3", "node4"];
const hosts = all.map((n) => host(n, facts(true, all)));
const view = (statuses: Record<string, string> = {}) => healthOf(all.map((name) => ({ name, status: statuses[name] ?? "Online" })));
const plan = (s: Parameters<typeof planCluster>[0]) => planCluster(s, DEFAULT_LIMITS);
const members = all.map((name) => ({ name, description: "", failureDomain: "default", groups: ["default"] }));

test("a member dropped from the spec is removed when the rules allow", (t) => {
  const p = plan(situationOf(specOf(["node1", "node2", "node3"]), hosts, { claim: formed(), health: view(), observed: observed({ members }) }));
  t.like(p.next, { kind: "begin-remove", node: "node4", force: false });
  t.like(p.changes.find((c) => c.object === "member node4"), { action: "remove", status: "next", wanted: "absent" });
});

test("a removal the rules refuse is listed as refused, with the reasons, and nothing is started", (t) => {
  const held = plan(situationOf(specOf(["node1", "node2", "node3"]), hosts, { claim: formed(), health: { ...view(), hold: { held: true, reasons: ["split"] } }, observed: observed({ members }) }));
  t.like(held.changes.find((c) => c.object === "member node4"), { status: "refused" });
  t.not(held.next?.kind, "begin-remove");
  const tooFew = plan(situationOf(specOf(["node1", "node2"]), hosts.slice(0, 3), { claim: formed(), health: healthOf([{ name: "node1" }, { name: "node2" }, { name: "node3" }]), observed: observed({ members }) }));
  t.regex(tooFew.changes.find((c) => c.object === "member node3")!.reason, /at least 3/);
  t.is(tooFew.convergence.state, "drifted");
});

test("an offline member marked absent with force is removed by force", (t) => {
  const spec = specOf(["node1", "node2", "node3", "node4"]);
  spec.members[3] = { ...spec.members[3]!, present: false, force: true };
  const p = plan(situationOf(spec, hosts, { claim: formed(), health: view({ node4: "Offline" }), observed: observed({ members }) }));
  t.like(p.next, { kind: "begin-remove", node: "node4", force: true });
});

test("a member removed a moment ago is not removed again from views read before it left", (t) => {
  const p = plan(situationOf(specOf(["node1", "node2", "node3"]), hosts, { claim: formed(), health: view(), observed: observed({ members }), recentlyRemoved: new Set(["node4"]) }));
  t.not(p.next?.kind, "begin-remove");
});

test("removals wait for joins to finish", (t) => {
  const spec = specOf(["node1", "node2", "node3", "node5"]);
  const p = plan(situationOf(spec, [...hosts, host("node5", facts(false))], { claim: formed(), health: view(), observed: observed({ members }) }));
  t.not(p.next?.kind, "begin-remove");
});

test("a member whose own daemon is down is still a member: it is not taken for a joiner, and a forced removal of another dead member goes ahead", (t) => {
  const spec = specOf(["node1", "node2", "node3", "node4"]);
  spec.members[1] = { ...spec.members[1]!, present: false, force: true };
  // node2 and node3 are stopped: their agents say Incus is unreachable (so not clustered, as far as they can tell); the cluster lists both offline.
  const down = (n: string) => host(n, { ...facts(false), incus: { observedAt: 0, reachable: false, clustered: false, error: "ENOENT" } });
  const p = plan(situationOf(spec, [hosts[0]!, down("node2"), down("node3"), hosts[3]!], { claim: formed(), health: view({ node2: "Offline", node3: "Offline" }), observed: observed({ members }) }));
  t.false(p.changes.some((c) => c.object === "member node3"), "node3 is no joiner");
  t.like(p.next, { kind: "begin-remove", node: "node2", force: true });
});
