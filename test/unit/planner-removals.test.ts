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
