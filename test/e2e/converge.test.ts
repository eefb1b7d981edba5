import test from "ava";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FleetLab } from "../../lab/fleet-lab.js";
import { eventLog, labFor, onlineMembers } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

const PASSWORD = "converge-password";
const names = ["node1", "node2", "node3"];

/** The spec this test moves through: settings, a dir pool, a bridge, and what each step adds. */
function spec(lab: FleetLab, o: { threshold?: string; mtu?: string; scratch?: boolean; data?: string; prune?: boolean } = {}): string {
  return lab.specYaml("lab", PASSWORD, names.map((name) => ({ name })), {
    server_settings: { config: { "cluster.offline_threshold": o.threshold ?? "25", "cluster.max_standby": "1" } },
    storage_pools: {
      local: { driver: "dir", description: "local storage" },
      ...(o.scratch === false ? {} : { scratch: { driver: "dir", description: "to be pruned" } }),
      ...(o.data ? { data: { driver: "dir", member_config: Object.fromEntries(names.map((n) => [n, { source: join(o.data!, n) }])) } } : {}),
    },
    // No addresses: the bridge carries nothing anywhere, and still needs what Incus needs for a managed bridge.
    networks: { br0: { type: "bridge", config: { "ipv4.address": "none", "ipv6.address": "none", ...(o.mtu ? { "bridge.mtu": o.mtu } : {}) } } },
    ...(o.prune ? { prune: true } : {}),
  });
}

const converged = (s: { convergence: { state: string }; phase: string }) => s.convergence.state === "converged" && s.phase === "ready";

test("settings, a pool and a bridge converge, and stay so: hand changes are corrected, a spec change is applied, a dropped pool is pruned, a failed pool recovers, an older spec file undoes nothing", async (t) => {
  const lab = await labFor(t, { ...LabSlot.converge, hosts: 3 });
  await lab.startIncus();
  const specFile = join(lab.root, "spec.yaml");
  writeFileSync(specFile, spec(lab));
  await lab.startCoordinator({ FLEET_SPEC_FILE: specFile, FLEET_OBSERVE_EVERY_MS: "2000" });
  const log = await eventLog(t, lab);
  for (const n of names) lab.startAgent(n, { password: PASSWORD });
  const formed = await lab.waitForCluster("lab", "converged", (s) => onlineMembers(s).length === 3 && converged(s) && s, 120_000);
  t.deepEqual(formed.plan.filter((c) => c.status !== "done" && c.status !== "ok"), [], "nothing left to do");

  const incus = lab.member("node1").client();
  t.teardown(() => incus.close());
  const setting = async () => (await incus.server()).config["cluster.offline_threshold"];
  t.is(await setting(), "25");
  t.like(await incus.storagePool("local"), { status: "Created", description: "local storage" });
  t.like(await incus.network("br0"), { status: "Created", type: "bridge" });
  for (const n of names) t.like(await incus.network("br0", n), { status: "Created" }, `br0 on ${n}`);

  // Hand changes: a setting, a pool's description, a deleted network. Each is found and set right.
  await incus.patchServerConfig({ "cluster.offline_threshold": "30" });
  await incus.patchStoragePool("local", { description: "edited by hand" });
  await incus.deleteNetwork("br0");
  const drift = await log.waitFor("drift.detected", undefined, 30_000);
  t.true(JSON.stringify(drift.data).includes("offline_threshold") || JSON.stringify(drift.data).includes("br0") || JSON.stringify(drift.data).includes("local"), JSON.stringify(drift.data));
  await lab.waitForCluster("lab", "every hand change corrected", async () => (await setting()) === "25" && (await incus.storagePool("local"))?.description === "local storage" && (await incus.network("br0"))?.status === "Created", 60_000);
  await log.waitFor("drift.corrected", undefined, 10_000);
  await lab.waitForCluster("lab", "converged again", converged, 30_000);

  // A config change of an existing network is applied, not skipped as already there.
  t.is((await lab.putSpec(spec(lab, { mtu: "1400" }))).status, 200);
  await lab.waitForCluster("lab", "the bridge's MTU applied", async () => (await incus.network("br0"))?.config["bridge.mtu"] === "1400", 30_000);

  // A pool dropped from the spec is listed in the plan; with prune it is deleted.
  const dryRun = await lab.api<{ plans: { changes: { object: string; action: string }[] }[] }>("/v1/spec?dry_run=true", { method: "PUT", headers: { "content-type": "application/yaml" }, body: spec(lab, { mtu: "1400", scratch: false, prune: true }) });
  t.is(dryRun.status, 200);
  t.true(dryRun.body.plans[0]!.changes.some((c) => c.object.includes("scratch") && c.action === "delete"), JSON.stringify(dryRun.body.plans[0]!.changes));
  t.truthy(await incus.storagePool("scratch"), "a dry run changes nothing");
  await lab.putSpec(spec(lab, { mtu: "1400", scratch: false, prune: true }));
  await lab.waitForCluster("lab", "scratch pruned", async () => (await incus.storagePool("scratch")) === null, 30_000);
  await log.waitFor("resource.deleted", undefined, 10_000);

  // A pool whose source is missing on node3 fails there; it is finished once the cause is gone.
  const data = join(lab.root, "pool-sources");
  for (const n of ["node1", "node2"]) mkdirSync(join(data, n), { recursive: true });
  await lab.putSpec(spec(lab, { mtu: "1400", scratch: false, prune: true, data }));
  const failed = await lab.waitForCluster("lab", "the pool's failure shown", (s) => s.failures.some((f) => f.object.includes("data")) && s, 60_000);
  t.regex(failed.failures.find((f) => f.object.includes("data"))!.error, /node3|doesn't exist|source/i);
  t.not(failed.convergence.state, "converged");
  await log.waitFor("resource.failed", undefined, 10_000);
  mkdirSync(join(data, "node3"), { recursive: true });
  await lab.waitForCluster("lab", "the pool created everywhere", async () => (await incus.storagePool("data"))?.status === "Created", 90_000);
  await lab.waitForCluster("lab", "converged with the pool", converged, 30_000);

  // The coordinator restarted with its first spec file: the stored revision is newer and wins.
  await lab.stopCoordinator();
  await lab.startCoordinator({ FLEET_SPEC_FILE: specFile, FLEET_OBSERVE_EVERY_MS: "2000" });
  await log.waitFor("spec.kept", undefined, 30_000);
  await lab.waitForCluster("lab", "still converged to the stored spec", converged, 30_000);
  t.is((await incus.network("br0"))?.config["bridge.mtu"], "1400", "the newer revision's change stays");
  t.is(await incus.storagePool("scratch"), null, "nothing pruned comes back");
  t.like(await incus.storagePool("data"), { status: "Created" });
});
