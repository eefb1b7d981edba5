import test from "ava";
import { buildBusyboxImage, importImage, launchContainer } from "../../lab/busybox-image.js";
import { eventLog, labFor, onlineMembers, operationEnd, startOperation, type OperationBody } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";
import { until } from "../helpers/wait.js";

interface Moved {
  name: string;
  from: string;
  to: string;
}

test.serial("manual maintenance: an evacuation moves the container away, a second one is refused meanwhile, a restore brings it back and leaves no origin behind", async (t) => {
  const lab = await labFor(t, { ...LabSlot.maintenance, hosts: 3 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const names = ["node1", "node2", "node3"];
  await lab.putSpec(lab.specYaml("lab", "evacuate-password", names.map((name) => ({ name })), { storage_pools: { local: { driver: "dir", description: "local storage" } } }));
  for (const n of names) lab.startAgent(n, { password: "evacuate-password" });
  await lab.waitForCluster("lab", "three members, converged", (s) => onlineMembers(s).length === 3 && s.phase === "ready" && s.convergence.state === "converged", 120_000);

  const incus = lab.member("node1").client();
  t.teardown(() => incus.close());
  t.is((await incus.storagePools()).find((p) => p.name === "local")?.status, "Created", "the spec's pool exists on every member");
  await importImage(incus, await buildBusyboxImage(), "bb");
  await launchContainer(incus, "c1", { alias: "bb", target: "node2", pool: "local" });
  const where = async () => (await incus.instances()).find((i) => i.name === "c1")!;
  t.like(await where(), { location: "node2", status: "Running" });
  await lab.waitForCluster("lab", "node2 reports its container", (s) => s.memberList.find((m) => m.name === "node2")?.instances?.running === 1, 30_000);

  // The request answers at once with the operation; the move happens behind it.
  const started = await startOperation(lab, "/v1/clusters/lab/members/node2/evacuate", { mode: "auto" });
  t.is(started.kind, "evacuate");
  t.is(started.state, "running");
  const evacuated = await operationEnd(lab, started.id);
  t.is(evacuated.state, "succeeded", evacuated.reason);
  const moved = evacuated.data.moved as Moved[];
  t.is(moved.length, 1);
  t.like(moved[0], { name: "c1", from: "node2" });
  const away = await where();
  t.not(away.location, "node2");
  t.is(away.status, "Running");
  t.is(moved[0]!.to, away.location);
  t.deepEqual((await log.waitFor("member.evacuated", "node2")).data.moved, evacuated.data.moved);
  const during = await lab.waitForCluster("lab", "node2 shown evacuated, the cluster in maintenance", (s) => s.memberList.find((m) => m.name === "node2")?.status === "Evacuated" && s, 30_000);
  t.not(during.health, "healthy", "an evacuated member is maintenance, not healthy");

  // One member out of service at a time: a second evacuation is refused with the reason, and nothing starts.
  const second = await lab.api<{ error: { code: string; message: string } }>("/v1/clusters/lab/members/node3/evacuate", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  t.is(second.status, 409);
  t.regex(second.body.error.message, /node2/);
  t.like(await where(), { status: "Running" });

  const restoring = await startOperation(lab, "/v1/clusters/lab/members/node2/restore");
  const restored = await operationEnd(lab, restoring.id);
  t.is(restored.state, "succeeded", restored.reason);
  t.like((restored.data.moved as Moved[])[0], { name: "c1", from: away.location, to: "node2" });
  const back = await where();
  t.like(back, { location: "node2", status: "Running" });
  t.falsy(back.config?.["volatile.evacuate.origin"], "no stale origin is left on the instance");
  await log.waitFor("member.restored", "node2");
  const status = await lab.waitForCluster("lab", "back online and healthy", (s) => s.memberList.find((m) => m.name === "node2")?.status === "Online" && s.health === "healthy" && s, 30_000);
  t.is(status.operation, null);
  const listed = await lab.api<{ id: string; state: string }[]>("/v1/operations?cluster=lab");
  t.true(listed.body.some((o) => o.id === started.id && o.state === "succeeded"), "finished operations stay listed");
});

/** A five-member cluster with a running container on every member, as a rollout finds it. */
async function clusterWithContainers(t: Parameters<typeof labFor>[0], prefixPassword: string) {
  const lab = await labFor(t, { ...LabSlot.maintenance, hosts: 5 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const five = ["node1", "node2", "node3", "node4", "node5"];
  await lab.putSpec(lab.specYaml("lab", prefixPassword, five.map((name) => ({ name })), { storage_pools: { local: { driver: "dir" } } }));
  for (const n of five) lab.startAgent(n, { password: prefixPassword });
  await lab.waitForCluster("lab", "five members, converged and healthy", (s) => onlineMembers(s).length === 5 && s.convergence.state === "converged" && s.health === "healthy", 180_000);
  const incus = lab.member("node1").client();
  t.teardown(() => incus.close());
  await importImage(incus, await buildBusyboxImage(), "bb");
  for (const n of five) await launchContainer(incus, `c-${n}`, { alias: "bb", target: n, pool: "local" });
  await lab.waitForCluster("lab", "every member reports its container", (s) => s.memberList.every((m) => m.instances?.running === 1) && s.health === "healthy", 60_000);
  return { lab, log, incus, five };
}

test.serial("a rolling restart of five members, with the coordinator killed half-way, ends with every container on its own member and never two members out", async (t) => {
  const { lab, log, incus, five } = await clusterWithContainers(t, "rollout-password");
  // Watch the cluster the whole time, as Incus itself reports it (through any member that answers): how many members are out of service at once.
  let worst = 0;
  let watching = true;
  const clients = five.map((n) => lab.member(n).client());
  t.teardown(() => clients.forEach((c) => c.close()));
  const watcher = (async () => {
    while (watching) {
      for (const c of clients) {
        const members = await c.members({ timeoutMs: 1_000 }).catch(() => null);
        if (!members) continue;
        worst = Math.max(worst, members.filter((m) => m.status !== "Online").length);
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  t.teardown(() => void (watching = false));

  const rollout = await startOperation(lab, "/v1/clusters/lab/rollouts", { action: "restart-incus", settleMs: 2_000 });
  t.is(rollout.kind, "rollout");
  t.deepEqual(rollout.progress, { done: 0, total: 5 });
  // Meanwhile, manual maintenance waits its turn.
  const manual = await lab.api<{ error: { code: string; message: string } }>("/v1/clusters/lab/members/node1/evacuate", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  t.is(manual.status, 409);
  t.is(manual.body.error.code, "FLEET_BUSY");

  // Half-way through the second member, the coordinator dies; a new one picks the rollout up from its phase.
  await until("the rollout at its second member's restart", async () => {
    const op = (await lab.api<OperationBody>(`/v1/operations/${rollout.id}`)).body;
    return op.progress?.done === 1 && /host-action|waiting-online|restoring/.test(op.phase) ? op : null;
  }, 240_000, 250);
  await lab.stopCoordinator("SIGKILL");
  await lab.startCoordinator();
  const done = await operationEnd(lab, rollout.id, 600_000);
  watching = false;
  await watcher;
  t.is(done.state, "succeeded", done.reason);
  t.deepEqual(done.progress, { done: 5, total: 5 });
  await log.waitFor("operation.resumed", undefined, 10_000);
  t.true(log.events.some((e) => e.kind === "operation.resumed" && (e.data as { operation?: string }).operation === rollout.id), "the new owner resumed it");
  t.log(`at most ${worst} member(s) out of service at once`);
  t.true(worst <= 1, `${worst} members were out of service at once`);
  const instances = await incus.instances();
  for (const n of five) t.like(instances.find((i) => i.name === `c-${n}`), { location: n, status: "Running" }, `c-${n} is back on ${n}`);
  const evacuations = (n: string) => log.events.filter((e) => e.kind === "operation.progress" && e.node === n && (e.data as { operation?: string; phase?: string }).operation === rollout.id && (e.data as { phase?: string }).phase === "evacuating");
  for (const n of five) t.is(evacuations(n).length, 1, `${n} evacuated once`);
  await lab.waitForCluster("lab", "healthy at the end", (s) => s.health === "healthy" && s.operation === null, 60_000);
});

test.serial("a member that dies during a rollout holds it at the gate with the reason; cancelled, it stops there", async (t) => {
  const { lab } = await clusterWithContainers(t, "rollout-gate-password");
  // The gate wants the cluster healthy for 10 s before it takes the next member: the death below, noticed within a
  // heartbeat or two, falls inside that time however the first member's end and the kill line up.
  const rollout = await startOperation(lab, "/v1/clusters/lab/rollouts", { members: ["node1", "node2", "node3"], action: "restart-incus", settleMs: 10_000 });
  await until("the first member done", async () => ((await lab.api<OperationBody>(`/v1/operations/${rollout.id}`)).body.progress?.done === 1 ? true : null), 240_000, 250);
  await lab.stopIncus("node5", "kill");
  const held = await until("the rollout held at the gate", async () => {
    const op = (await lab.api<OperationBody>(`/v1/operations/${rollout.id}`)).body;
    return /held at the gate/.test(op.reason) && /node5/.test(op.reason) ? op : null;
  }, 90_000, 250);
  t.is(held.state, "running");
  t.is(held.progress?.done, 1, "no further member was taken");
  const cancelled = await lab.api<OperationBody>(`/v1/operations/${rollout.id}/cancel`, { method: "POST" });
  t.is(cancelled.status, 202);
  const end = await operationEnd(lab, rollout.id, 60_000);
  t.is(end.state, "cancelled");
  t.regex(end.reason, /1 of 3/);
});
