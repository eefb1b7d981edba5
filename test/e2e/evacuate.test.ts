import test from "ava";
import { buildBusyboxImage, importImage, launchContainer } from "../../lab/busybox-image.js";
import { eventLog, labFor, onlineMembers } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

interface Maintenance {
  member: string;
  action: string;
  moved: { name: string; from: string; to: string }[];
  durationMs: number;
}

test("evacuating a member moves its running container to another member; restoring brings it back", async (t) => {
  const lab = await labFor(t, { ...LabSlot.evacuate, hosts: 3 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const names = ["node1", "node2", "node3"];
  await lab.putSpec(lab.specYaml("lab", "evacuate-password", names.map((name) => ({ name })), { storage_pools: { local: { driver: "dir", description: "local storage" } } }));
  for (const n of names) lab.startAgent(n, { password: "evacuate-password" });
  await lab.waitForCluster("lab", "three members", (s) => onlineMembers(s).length === 3 && s.phase === "ready", 120_000);
  await log.waitFor("pool.created", undefined, 60_000);

  const incus = lab.member("node1").client();
  t.teardown(() => incus.close());
  const pool = (await incus.storagePools()).find((p) => p.name === "local");
  t.is(pool?.status, "Created", "the spec's pool exists on every member");
  await importImage(incus, await buildBusyboxImage(), "bb");
  await launchContainer(incus, "c1", { alias: "bb", target: "node2", pool: "local" });
  const where = async () => (await incus.instances()).find((i) => i.name === "c1")!;
  t.like(await where(), { location: "node2", status: "Running" });
  await lab.waitForCluster("lab", "node2 reports its container", (s) => s.memberList.find((m) => m.name === "node2")?.instances?.running === 1, 30_000);

  const evacuated = await lab.api<Maintenance>("/v1/clusters/lab/members/node2/evacuate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode: "auto" }) });
  t.is(evacuated.status, 200, JSON.stringify(evacuated.body));
  t.is(evacuated.body.moved.length, 1);
  t.like(evacuated.body.moved[0], { name: "c1", from: "node2" });
  const away = await where();
  t.not(away.location, "node2");
  t.is(away.status, "Running");
  t.is(evacuated.body.moved[0]!.to, away.location);
  const event = await log.waitFor("member.evacuated", "node2");
  t.deepEqual(event.data.moved, evacuated.body.moved);
  await lab.waitForCluster("lab", "node2 shown evacuated", (s) => s.memberList.find((m) => m.name === "node2")?.status === "Evacuated", 30_000);

  const restored = await lab.api<Maintenance>("/v1/clusters/lab/members/node2/restore", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  t.is(restored.status, 200, JSON.stringify(restored.body));
  t.like(restored.body.moved[0], { name: "c1", from: away.location, to: "node2" });
  t.like(await where(), { location: "node2", status: "Running" });
  await log.waitFor("member.restored", "node2");
  const status = await lab.waitForCluster("lab", "back online", (s) => s.memberList.find((m) => m.name === "node2")?.status === "Online" && s, 30_000);
  t.true(status.recentActions.some((a) => a.kind === "member.evacuated"));
  t.is(status.operation, null);
});
