import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { eventLog, incusMembers, labFor, onlineMembers } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

test("the coordinator killed with SIGKILL during formation comes back to one bootstrap and every member joined", async (t) => {
  const lab = await labFor(t, { ...LabSlot.coordinatorRestart, hosts: 4 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const names = ["node1", "node2", "node3", "node4"];
  await lab.putSpec(lab.specYaml("lab", "coordinator-password", names.map((name) => ({ name }))));
  for (const n of names) lab.startAgent(n, { password: "coordinator-password" });

  await log.waitFor("join.started", "node2");
  await lab.stopCoordinator("SIGKILL");
  await sleep(1_500);
  await lab.startCoordinator();

  // Done means every member online and no membership change left open by the killed coordinator.
  const status = await lab.waitForCluster("lab", "all four online, no change open", (s) => onlineMembers(s).length === 4 && s.phase === "ready" && s.operation === null && s, 120_000);
  t.deepEqual(onlineMembers(status), names);
  t.is(status.bootstrap?.node, "node1");
  t.is(log.events.filter((e) => e.kind === "bootstrap.claimed").length, 1, "one bootstrap claim across both coordinator runs");
  // Two bootstraps would make two clusters: every member would not list the same four.
  for (const n of names) t.deepEqual((await incusMembers(lab, n)).map((m) => m.name), names, `${n} sees the one cluster`);
});
