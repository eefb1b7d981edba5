import test from "ava";
import { eventLog, incusMembers, labFor, onlineMembers } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

const PASSWORD = "formation-password";

test("three agents form a three-member cluster; a fourth with a wrong password gets no role and a clear reason", async (t) => {
  const lab = await labFor(t, { ...LabSlot.formation, hosts: 4 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const applied = await lab.putSpec(lab.specYaml("lab", PASSWORD, ["node1", "node2", "node3", "node4"].map((name) => ({ name }))));
  t.is(applied.status, 200);
  for (const n of ["node1", "node2", "node3"]) lab.startAgent(n, { password: PASSWORD });
  lab.startAgent("node4", { password: "not-the-cluster-password" });

  const status = await lab.waitForCluster("lab", "three members online", (s) => onlineMembers(s).length === 3 && s, 90_000);
  t.deepEqual(onlineMembers(status), ["node1", "node2", "node3"]);
  t.is(status.bootstrap?.node, "node1");

  const node4 = await lab.waitForCluster("lab", "node4 rejected", (s) => s.memberList.find((m) => m.name === "node4" && m.state === "rejected"));
  t.regex(node4.reason, /wrong cluster password/);
  t.regex(lab.agentLog("node4"), /wrong cluster password/, "the agent's own log says why it got no role");
  t.deepEqual((await incusMembers(lab, "node1")).map((m) => m.name), ["node1", "node2", "node3"], "Incus itself has exactly the three members");
  const node4Incus = lab.member("node4").client();
  t.false((await node4Incus.server()).environment.server_clustered);
  node4Incus.close();

  // Incus lists a joining member online before its join has returned: the coordinator's record of it comes after.
  await log.waitFor("join.completed", "node3", 30_000);
  t.is(log.events.filter((e) => e.kind === "bootstrap.claimed").length, 1);
  t.is(log.events.filter((e) => e.kind === "join.completed").length, 2);
  const everything = lab.coordinatorLogs() + ["node1", "node2", "node3", "node4"].map((n) => lab.agentLog(n)).join("") + JSON.stringify(log.events);
  t.false(everything.includes(PASSWORD), "the cluster password is in no log and no event");
  t.false(everything.includes("not-the-cluster-password"));
  t.false(/"secret":"[0-9a-f]{16,}/.test(everything), "no join token secret leaks");
});
