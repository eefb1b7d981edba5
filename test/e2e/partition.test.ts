import test from "ava";
import { setClusterLink } from "../../lab/network.js";
import { eventLog, labFor, onlineMembers, operationEnd, startOperation } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

type ErrorBody = { error: { code: string; message: string } };
const post = { method: "POST", headers: { "content-type": "application/json" }, body: "{}" };

test("a member cut off from the others splits the views: destructive actions are held until the link is back", async (t) => {
  const lab = await labFor(t, { ...LabSlot.partition, hosts: 4 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const names = ["node1", "node2", "node3", "node4"];
  await lab.putSpec(lab.specYaml("lab", "partition-password", names.map((name) => ({ name }))));
  for (const n of names) lab.startAgent(n, { password: "partition-password" });
  await lab.waitForCluster("lab", "four members, healthy", (s) => onlineMembers(s).length === 4 && s.health === "healthy", 120_000);

  // node4 keeps its management link (its agent still talks to NATS) but loses the cluster network.
  await setClusterLink(lab.member("node4").host, false);
  const held = await lab.waitForCluster("lab", "actions held", (s) => s.held && s, 30_000);
  t.true(held.holdReasons.some((r) => /node4/.test(r)), held.holdReasons.join("\n"));
  t.true(held.reasons.some((r) => r.code === "split-view"));
  t.true(held.links.some((l) => l.to === "node4" && l.state === "down"));
  t.true(held.guidance.some((g) => /held until every member sees the same cluster/.test(g)));

  const evacuate = await lab.api<ErrorBody>("/v1/clusters/lab/members/node2/evacuate", post);
  t.is(evacuate.status, 409);
  t.is(evacuate.body.error.code, "FLEET_HELD_DEGRADED");
  t.regex(evacuate.body.error.message, /node4/);
  const remove = await lab.api<ErrorBody>("/v1/clusters/lab/members/node3", { method: "DELETE" });
  t.is(remove.status, 409);
  t.is(remove.body.error.code, "FLEET_HELD_DEGRADED");
  await log.waitFor("action.refused", "node2", 10_000);

  await setClusterLink(lab.member("node4").host, true);
  await lab.waitForCluster("lab", "views agree again", (s) => !s.held && onlineMembers(s).length === 4, 90_000);
  const allowed = await operationEnd(lab, (await startOperation(lab, "/v1/clusters/lab/members/node2/evacuate")).id);
  t.is(allowed.state, "succeeded", allowed.reason);
  t.is((await operationEnd(lab, (await startOperation(lab, "/v1/clusters/lab/members/node2/restore")).id)).state, "succeeded");
  const degraded = log.events.find((e) => e.kind === "cluster.degraded" && (e.data as { held?: boolean }).held);
  t.truthy(degraded, "the hold was published");
});
