import test from "ava";
import { buildBusyboxImage, importImage, launchContainer } from "../../lab/busybox-image.js";
import type { FleetLab } from "../../lab/fleet-lab.js";
import { eventLog, incusMembers, labFor, onlineMembers, operationEnd, startOperation, type OperationBody } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";
import { until } from "../helpers/wait.js";

const PASSWORD = "failover-password";
/** What the README states: a dead coordinator's clusters are taken within the lease (3 s) and a tick, plus the time to notice. */
const TAKEOVER_BOUND_MS = 5_000;

/** How many different events of a kind there are: the stream may hold a retried publish twice (see below). */
const distinct = (events: { id: string; kind: string; node?: string }[], kind: string, node?: string) => new Set(events.filter((e) => e.kind === kind && (node === undefined || e.node === node)).map((e) => e.id)).size;

/** The lab index of the coordinator owning the cluster now (owners are named host/pid). */
async function ownerIndex(lab: FleetLab, cluster: string): Promise<number> {
  return until(`an owner of ${cluster}`, async () => {
    const summaries = await lab.api<{ name: string; owner: string | null }[]>("/v1/clusters", { coordinator: lab.coordinators.find((c) => c.daemon)!.index }).catch(() => null);
    const owner = summaries?.body.find?.((s) => s.name === cluster)?.owner;
    const pid = owner ? Number(owner.split("/").pop()) : NaN;
    return lab.coordinators.find((c) => c.daemon?.pid === pid)?.index ?? null;
  }, 30_000, 250);
}

/** Kills the owner of the cluster with SIGKILL and returns when the kill happened, and who it was. */
async function killOwner(lab: FleetLab, cluster: string): Promise<{ index: number; at: number }> {
  const index = await ownerIndex(lab, cluster);
  await lab.stopCoordinator("SIGKILL", index);
  return { index, at: Date.now() };
}

test.serial("one coordinator killed with SIGKILL during formation comes back to one bootstrap and every member joined", async (t) => {
  const lab = await labFor(t, { ...LabSlot.failover, hosts: 4 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const names = ["node1", "node2", "node3", "node4"];
  await lab.putSpec(lab.specYaml("lab", PASSWORD, names.map((name) => ({ name }))));
  for (const n of names) lab.startAgent(n, { password: PASSWORD });

  await log.waitFor("join.started", "node2");
  await lab.stopCoordinator("SIGKILL");
  await lab.startCoordinator();

  // Done means every member online and no membership change left open by the killed coordinator.
  const status = await lab.waitForCluster("lab", "all four online, no change open", (s) => onlineMembers(s).length === 4 && s.phase === "ready" && s.operation === null && s, 120_000);
  t.deepEqual(onlineMembers(status), names);
  t.is(status.bootstrap?.node, "node1");
  t.is(log.events.filter((e) => e.kind === "bootstrap.claimed").length, 1, "one bootstrap claim across both coordinator runs");
  // Two bootstraps would make two clusters: every member would not list the same four.
  for (const n of names) t.deepEqual((await incusMembers(lab, n)).map((m) => m.name), names, `${n} sees the one cluster`);
});

test.serial("two coordinators over a three-server JetStream cluster: the owner and a nats-server killed during formation, the owner killed during an evacuation and a removal; every change ends, released, once", async (t) => {
  const lab = await labFor(t, { ...LabSlot.failover, hosts: 5, natsServers: 3 });
  await lab.startIncus();
  await Promise.all([lab.startCoordinator({}, 1), lab.startCoordinator({}, 2)]);
  const log = await eventLog(t, lab);
  const names = ["node1", "node2", "node3", "node4", "node5"];
  await lab.putSpec(lab.specYaml("lab", PASSWORD, names.map((name) => ({ name })), { storage_pools: { local: { driver: "dir" } } }));
  for (const n of names) lab.startAgent(n, { password: PASSWORD });

  // Formation: the owner dies once the first join is under way, a JetStream server once the second is.
  await log.waitFor("join.started", "node2");
  const first = await killOwner(lab, "lab");
  await log.waitFor("join.started", "node3", 60_000);
  await lab.nats.servers[0]!.stop("SIGKILL");
  const formed = await lab.waitForCluster("lab", "five members online, converged, no change open", (s) => onlineMembers(s).length === 5 && s.phase === "ready" && s.operation === null && s, 180_000, 3 - first.index);
  t.deepEqual(onlineMembers(formed), names);
  const takeover = await until("the other coordinator's word that it took the cluster over", () => log.events.find((e) => e.kind === "cluster.owner-changed" && Date.parse(e.at) >= first.at - 100), 30_000, 250);
  const takeoverMs = Date.parse(takeover!.at) - first.at;
  t.log(`takeover after the owner's SIGKILL: ${takeoverMs} ms`);
  t.true(takeoverMs <= TAKEOVER_BOUND_MS, `took ${takeoverMs} ms`);
  await lab.nats.servers[0]!.restart();
  await lab.startCoordinator({}, first.index);

  // An evacuation whose owner dies in the middle of it: the next owner finishes it, the container lands once.
  const incus = lab.member("node1").client();
  t.teardown(() => incus.close());
  await importImage(incus, await buildBusyboxImage(), "bb");
  await launchContainer(incus, "c1", { alias: "bb", target: "node2", pool: "local" });
  await lab.waitForCluster("lab", "node2 reports its container", (s) => s.memberList.find((m) => m.name === "node2")?.instances?.running === 1, 30_000);
  const evacuation = await startOperation(lab, "/v1/clusters/lab/members/node2/evacuate", { mode: "auto" });
  await until("the evacuation under way", async () => ((await lab.api<OperationBody>(`/v1/operations/${evacuation.id}`)).body.phase === "evacuating" ? true : null), 30_000, 250);
  const second = await killOwner(lab, "lab");
  const evacuated = await operationEnd(lab, evacuation.id, 120_000);
  t.is(evacuated.state, "succeeded", evacuated.reason);
  const c1 = (await incus.instances()).find((i) => i.name === "c1")!;
  t.not(c1.location, "node2");
  t.is(c1.status, "Running");
  await log.waitFor("member.evacuated", "node2");
  t.is(distinct(log.events, "member.evacuated", "node2"), 1, "evacuated once");
  await lab.startCoordinator({}, second.index);
  const restored = await operationEnd(lab, (await startOperation(lab, "/v1/clusters/lab/members/node2/restore")).id, 120_000);
  t.is(restored.state, "succeeded", "the lock was released: the next change runs");

  // A removal whose owner dies in the middle of it.
  await lab.putSpec(lab.specYaml("lab", PASSWORD, names.map((name) => ({ name, present: name !== "node5" })), { storage_pools: { local: { driver: "dir" } } }));
  const removal = await until("the removal started", () => log.events.find((e) => e.kind === "operation.started" && e.node === "node5" && (e.data as { kind?: string }).kind === "remove") ?? null, 60_000, 250);
  await killOwner(lab, "lab");
  await log.waitFor("member.removed", "node5", 120_000);
  // Exactly these four, online: a status a moment old can still list node5 and show node2 not yet back from its restore.
  const after = await lab.waitForCluster("lab", "node1 to node4 online, no change open", (s) => onlineMembers(s).join(",") === "node1,node2,node3,node4" && s.operation === null && s, 120_000);
  t.deepEqual(onlineMembers(after), ["node1", "node2", "node3", "node4"]);
  const removalOp = (await lab.api<OperationBody>(`/v1/operations/${(removal.data as { operation: string }).operation}`)).body;
  t.is(removalOp.state, "succeeded", removalOp.reason);
  t.deepEqual((await incusMembers(lab, "node1")).map((m) => m.name), ["node1", "node2", "node3", "node4"]);

  // Through all of it: one bootstrap, no agent taken for lost, every event once.
  t.is(distinct(log.events, "bootstrap.claimed"), 1);
  t.deepEqual(log.events.filter((e) => e.kind === "agent.lost").map((e) => e.node), [], "no false agent.lost");
  const repeated = (events: { id: string; kind: string; seq: number }[]) => events.filter((e, i) => events.findIndex((o) => o.id === e.id) !== i).map((e) => `${e.kind} ${e.id} at ${e.seq}`);
  // The stream drops a republished event within its duplicate window; one retried across a killed stream leader may
  // slip through: the coordinators serve each event once all the same.
  const inStream = repeated(log.events);
  if (inStream.length > 0) t.log(`repeated in the stream itself: ${inStream.join("; ")}`);
  const served = (await lab.api<{ id: string; kind: string; seq: number }[]>("/v1/events?after=0&limit=1000")).body;
  t.true(served.length >= log.events.length - 5, `the coordinator serves the history (${served.length} of ${log.events.length})`);
  t.deepEqual(repeated(served), [], "each event once in what the coordinator serves");
  t.is(distinct(log.events, "member.removed", "node5"), 1, "removed once");
});
