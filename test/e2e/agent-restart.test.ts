import test from "ava";
import { eventLog, incusMembers, labFor, onlineMembers } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";
import { until } from "../helpers/wait.js";

test("an agent killed in the middle of its join and restarted still ends in a healthy cluster", async (t) => {
  const lab = await labFor(t, { ...LabSlot.agentRestart, hosts: 3 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  await lab.putSpec(lab.specYaml("lab", "restart-password", ["node1", "node2", "node3"].map((name) => ({ name }))));
  for (const n of ["node1", "node2", "node3"]) lab.startAgent(n, { password: "restart-password" });

  await log.waitFor("join.started", "node2");
  // The token is in the agent's hands and its PUT /1.0/cluster is on its way: kill it there.
  await until("node2's agent holding its join assignment", () => /"assignment":"join"/.test(lab.agentLog("node2")), 30_000, 5);
  await lab.stopAgent("node2", "SIGKILL");
  lab.startAgent("node2", { password: "restart-password" });

  const status = await lab.waitForCluster("lab", "all three online", (s) => onlineMembers(s).length === 3 && s.phase === "ready" && s, 90_000);
  t.deepEqual(onlineMembers(status), ["node1", "node2", "node3"]);
  t.deepEqual((await incusMembers(lab, "node1")).map((m) => `${m.name}:${m.status}`), ["node1:Online", "node2:Online", "node3:Online"]);
  t.is(status.memberList.find((m) => m.name === "node2")?.state, "member");
  t.is(log.events.filter((e) => e.kind === "bootstrap.claimed").length, 1);
  t.is(status.operation, null, "no membership change is left holding the lock");
});
