import test from "ava";
import { ErrorCode, parseSpec, type FleetError } from "../../shared/index.js";
import type { EventSpec } from "../../coordinator/events/event-log.js";
import { newOperation } from "../../coordinator/operations/new-operation.js";
import type { Operation } from "../../coordinator/operations/operation.js";
import { OperationService, orderForRollout } from "../../coordinator/operations/operation-service.js";
import type { ClusterStatusRecord } from "../../coordinator/status/cluster-status.js";
import { KvCache } from "../../coordinator/store/kv-cache.js";
import { OperationStore } from "../../coordinator/store/operation-store.js";
import { StatusStore } from "../../coordinator/store/status-store.js";
import { quiet } from "../helpers/controller-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { MemoryKv } from "../helpers/memory-kv.js";
import { healthOf, NOW } from "../helpers/situations.js";

const NODES = ["node1", "node2", "node3"];
const spec = parseSpec({ clusters: { c: { cluster_password: "test-password", members: Object.fromEntries(NODES.map((n, i) => [n, { address: `192.0.2.${11 + i}` }])) } } }).spec;

/** An operation service over stores in memory, with node2 in the state the view gives, evaluated at `evaluatedAt`. */
async function service(node2: "Online" | "Evacuated", evaluatedAt: number) {
  const clock = new FakeClock(NOW);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const open = (kv: MemoryKv, name: string) => KvCache.open<any>(kv.asKv(), name, quiet);
  const [opCache, statusCache] = await Promise.all([open(new MemoryKv(), "ops"), open(new MemoryKv(), "status")]);
  const ops = new OperationStore(opCache);
  const statuses = new StatusStore(statusCache);
  const health = healthOf(NODES.map((name) => ({ name, status: name === "node2" ? node2 : "Online" })), { evaluatedAt });
  await statuses.put({ cluster: "c", at: clock.now(), health } as ClusterStatusRecord);
  const events: EventSpec[] = [];
  const svc = new OperationService(ops, statuses, () => spec, { publish: (_c, e) => void events.push(e) }, clock);
  /** Records an evacuation or restore of node2 that succeeded at `finishedAt`. */
  const ended = async (kind: "evacuate" | "restore", finishedAt: number) => {
    const op = newOperation(kind, { cluster: "c", member: "node2", requestedBy: "operator", params: kind === "evacuate" ? { mode: "auto" } : {}, data: {}, now: finishedAt - 1_000 } as never) as Operation;
    const begun = (await ops.begin(op, finishedAt - 1_000))!;
    await ops.update({ ...op, state: "succeeded", finishedAt: new Date(finishedAt).toISOString() } as Operation, begun.revision);
  };
  return { svc, ended, clock };
}

const refusal = async (run: Promise<unknown>) => ((await run.then(() => null, (e: FleetError) => e)) as FleetError | null);

test("a restore of a member the views show online, never evacuated through us, is refused with the reason", async (t) => {
  const { svc } = await service("Online", NOW);
  const err = await refusal(svc.restore("c", "node2", {}));
  t.is(err?.code, ErrorCode.MaintenanceRefused);
  t.regex(err!.message, /node2 is not evacuated/);
});

test("a restore right after an evacuation ended goes ahead although the views still show the member online", async (t) => {
  const { svc, ended } = await service("Online", NOW - 2_000);
  await ended("evacuate", NOW - 1_000);
  const op = await svc.restore("c", "node2", {});
  t.is(op.kind, "restore");
});

test("an evaluation that postdates the evacuation by a second may still be made of views taken before it: the restore goes ahead", async (t) => {
  const { svc, ended } = await service("Online", NOW);
  await ended("evacuate", NOW - 1_000);
  t.is((await svc.restore("c", "node2", {})).kind, "restore");
});

test("an evacuation restored since, or long enough ago that the views have caught up, no longer counts", async (t) => {
  const restored = await service("Online", NOW);
  await restored.ended("evacuate", NOW - 5_000);
  await restored.ended("restore", NOW - 3_000);
  t.is((await refusal(restored.svc.restore("c", "node2", {})))?.code, ErrorCode.MaintenanceRefused);

  const old = await service("Online", NOW);
  await old.ended("evacuate", NOW - 60_000);
  t.is((await refusal(old.svc.restore("c", "node2", {})))?.code, ErrorCode.MaintenanceRefused, "Online a minute after the evacuation: restored by hand");
});

test("an evacuation of a member the views show evacuated is refused, unless a restore of it ended since", async (t) => {
  const still = await service("Evacuated", NOW);
  const err = await refusal(still.svc.evacuate("c", "node2", {}));
  t.is(err?.code, ErrorCode.MaintenanceRefused);
  t.regex(err!.message, /already evacuated/);

  const justRestored = await service("Evacuated", NOW);
  await justRestored.ended("evacuate", NOW - 10_000);
  await justRestored.ended("restore", NOW - 500);
  t.is((await justRestored.svc.evacuate("c", "node2", {})).kind, "evacuate");
});

test("a rollout of every member takes spares first, then stand-bys, then voters, and the database leader last", (t) => {
  const members = [
    { name: "leader", roles: ["database-leader", "database"] },
    { name: "voter-b", roles: ["database"] },
    { name: "standby", roles: ["database-standby"] },
    { name: "voter-a", roles: ["database"] },
    { name: "spare", roles: [] },
  ];
  t.deepEqual(orderForRollout(members), ["spare", "standby", "voter-a", "voter-b", "leader"]);
});

test("a rollout paused is resumed, and can still be cancelled", async (t) => {
  const { svc } = await service("Online", NOW);
  const rollout = await svc.rollout("c", { members: ["node2"] });
  t.is(rollout.kind, "rollout");
  t.true((await svc.request(rollout.id, "pause")).pauseRequested);
  const resumed = await svc.request(rollout.id, "resume");
  t.false(resumed.pauseRequested);
  t.false(resumed.cancelRequested);
  t.is((await svc.request(rollout.id, "cancel")).cancelRequested, true);
});
