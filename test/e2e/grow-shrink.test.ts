import test from "ava";
import { eventLog, incusMembers, labFor, onlineMembers } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

const PASSWORD = "membership-password";

test("a five-member cluster settles to 3 voters and 2 stand-by; a member dropped from the spec leaves, a new one joins", async (t) => {
  const lab = await labFor(t, { ...LabSlot.growShrink, hosts: 6 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const five = ["node1", "node2", "node3", "node4", "node5"];
  await lab.putSpec(lab.specYaml("lab", PASSWORD, five.map((name) => ({ name, failureDomain: name === "node1" ? "rack1" : "rack2", groups: ["default", "compute"] }))));
  for (const n of [...five, "node6"]) lab.startAgent(n, { password: PASSWORD });

  const settled = await lab.waitForCluster(
    "lab",
    "five members with 3 voters and 2 stand-by",
    (s) => onlineMembers(s).length === 5 && s.quorum?.voters === 3 && s.quorum.standby === 2 && s,
    120_000,
  );
  t.like(settled.quorum, { voters: 3, onlineVoters: 3, majority: 2, failuresTolerated: 1, standby: 2 });
  const roles = await incusMembers(lab, "node1");
  t.is(roles.filter((m) => m.roles.includes("database")).length, 3);
  t.is(roles.filter((m) => m.roles.includes("database-standby")).length, 2);
  t.is(settled.memberList.find((m) => m.name === "node6"), undefined, "node6 is not in the spec yet");
  t.regex(lab.agentLog("node6"), /'node6' is not a member of cluster 'lab'/);

  // The failure domains and groups from the spec are set on the members.
  await lab.waitForCluster("lab", "member metadata applied", (s) => s.plan.every((p) => p.action !== "set-member"), 60_000);
  const node1 = lab.member("node1").client();
  const m1 = (await node1.member("node1")).member;
  t.is(m1.failure_domain, "rack1");
  t.deepEqual([...(m1.groups ?? [])].sort(), ["compute", "default"]);

  // Shrink: node5 leaves the spec.
  await lab.putSpec(lab.specYaml("lab", PASSWORD, five.slice(0, 4).map((name) => ({ name, failureDomain: name === "node1" ? "rack1" : "rack2", groups: ["default", "compute"] }))));
  await log.waitFor("member.removed", "node5", 120_000);
  const shrunk = await lab.waitForCluster("lab", "node5 gone", (s) => onlineMembers(s).join() === "node1,node2,node3,node4" && s, 60_000);
  t.is(shrunk.operation, null);
  t.deepEqual((await incusMembers(lab, "node1")).map((m) => m.name), ["node1", "node2", "node3", "node4"]);
  const node5 = lab.member("node5").client();
  t.false((await node5.server()).environment.server_clustered, "the removed member's Incus is unclustered");
  node5.close();
  const removing = (e: (typeof log.events)[number]) => e.kind === "operation.started" && e.node === "node5" && (e.data as { kind?: string }).kind === "remove";
  const removedAt = Date.parse((await log.waitFor("member.removed", "node5")).at);
  t.truthy(log.events.find(removing), "the removal was announced before it happened");
  t.true(log.events.findIndex(removing) < log.events.findIndex((e) => e.kind === "member.removed"));
  // Views read before the removal still list node5 for a moment: it is not removed a second time.
  await lab.waitForCluster("lab", "two observations after the removal", (s) => s.observed !== null && Date.parse(s.observed.at) > removedAt + 5_000, 60_000);
  t.is(log.events.filter(removing).length, 1, "one removal, once");

  // Grow: node6 joins the spec.
  await lab.putSpec(lab.specYaml("lab", PASSWORD, [...five.slice(0, 4), "node6"].map((name) => ({ name }))));
  await log.waitFor("join.completed", "node6", 120_000);
  await lab.waitForCluster("lab", "node6 online", (s) => onlineMembers(s).join() === "node1,node2,node3,node4,node6", 60_000);
  t.deepEqual((await incusMembers(lab, "node1")).map((m) => m.name), ["node1", "node2", "node3", "node4", "node6"]);
  node1.close();
});
