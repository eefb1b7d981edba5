import test from "ava";
import { eventLog, incusMembers, labFor, onlineMembers } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

const PASSWORD = "formation-password";

test.serial("three agents form a three-member cluster; a fourth with a wrong password gets no role and a clear reason", async (t) => {
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

test.serial("the seed's basic Salt pillar forms three real members, and per-minion pillar output adds a fourth", async (t) => {
  const lab = await labFor(t, { ...LabSlot.formation, hosts: 4, clusters: ["default"] });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const ip = (n: string) => lab.address(n).replace(/:8443$/, "");
  // The seed's "Basic 3-Node Cluster" pillar, rendered: the bootstrap host is only its cluster.https_address.
  const pillar = `
incus_bootstrap:
  server_settings:
    config:
      cluster.https_address: "${lab.address("node1")}"
      core.https_address: "[::]:8443"
incus_cluster:
  cluster_members:
    node2: { address: ${ip("node2")}, cluster_password: "${PASSWORD}", description: Cluster node 2 }
    node3: { address: ${ip("node3")}, cluster_password: "${PASSWORD}", description: Cluster node 3 }
`;
  const applied = await lab.putSpec(pillar);
  t.is(applied.status, 200, JSON.stringify(applied.body));
  for (const n of ["node1", "node2", "node3"]) lab.startAgent(n, { cluster: "default", password: PASSWORD });
  const formed = await lab.waitForCluster("default", "three members online", (s) => onlineMembers(s).length === 3 && s.phase === "ready" && s, 90_000);
  t.deepEqual(onlineMembers(formed), ["node1", "node2", "node3"], "the host at cluster.https_address took the name its agent gave");
  t.is(formed.bootstrap?.node, "node1");
  const spec = await lab.api<{ spec: { clusters: { members: { name: string; named: boolean; address: string }[] }[] } }>("/v1/spec");
  t.like(spec.body.spec.clusters[0]!.members.find((m) => m.address === lab.address("node1")), { name: "node1", named: true });

  // `salt '*' pillar.items --out=yaml`: each minion's own pillar, merged into the one cluster; node4 is new.
  const minions = `
node1:
  incus_bootstrap:
    server_settings:
      config:
        cluster.https_address: "${lab.address("node1")}"
${["node2", "node3", "node4"]
  .map(
    (m) => `${m}:
  incus_cluster:
    cluster_members:
${["node2", "node3", "node4"].map((n) => `      ${n}: { address: ${ip(n)}, cluster_password: "${PASSWORD}" }`).join("\n")}`,
  )
  .join("\n")}
`;
  const merged = await lab.putSpec(minions);
  t.is(merged.status, 200, JSON.stringify(merged.body));
  lab.startAgent("node4", { cluster: "default", password: PASSWORD });
  await log.waitFor("join.completed", "node4", 90_000);
  const grown = await lab.waitForCluster("default", "four members online", (s) => onlineMembers(s).length === 4 && s, 60_000);
  t.deepEqual(onlineMembers(grown), ["node1", "node2", "node3", "node4"]);
  t.deepEqual((await incusMembers(lab, "node1")).map((m) => m.name), ["node1", "node2", "node3", "node4"]);
  t.is(log.events.filter((e) => e.kind === "bootstrap.claimed").length, 1);
});
