import test, { type ExecutionContext } from "ava";
import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { systemClock } from "../../coordinator/controller/clock.js";
import { LeaseManager } from "../../coordinator/leases/lease-manager.js";
import { newOperation } from "../../coordinator/operations/new-operation.js";
import { openBuckets, DEFAULT_LAYOUT } from "../../coordinator/store/buckets.js";
import { ClaimStore } from "../../coordinator/store/claim-store.js";
import { KvCache } from "../../coordinator/store/kv-cache.js";
import { OperationStore } from "../../coordinator/store/operation-store.js";
import type { BootstrapClaim } from "../../coordinator/store/records.js";
import { connectAsCoordinator, secureNats } from "../helpers/coordinator.js";
import { quiet } from "../helpers/controller-harness.js";
import { until } from "../helpers/wait.js";

const encoder = new TextEncoder();

test("coordinators starting together against a fresh store all open it: the creation race is no failure", async (t) => {
  const nats = await secureNats(t);
  const prefix = `race${randomUUID().slice(0, 6)}`;
  const connections = await Promise.all([1, 2, 3].map((i) => connectAsCoordinator(t, nats, i)));
  const opened = await Promise.all(connections.map((nc) => openBuckets(nc, { ...DEFAULT_LAYOUT, prefix }, quiet)));
  t.is(opened.length, 3);
  await opened[0]!.spec.put("k", encoder.encode('"v"'));
  t.is((await opened[2]!.spec.get("k"))?.string(), '"v"', "they opened the same buckets");
  // A replica just back from a restart answers direct gets from its old state: a compare-and-set retried on that loses again.
  const jsm = await jetstreamManager(connections[0]!);
  for (const name of ["spec", "secrets", "clusters", "nodes", "ops", "status", "leases"]) {
    t.false((await jsm.streams.info(`KV_${prefix}-${name}`)).config.allow_direct, `${name} is read from its leader`);
  }
});

test("a watch cache holds every key written before it and follows every write after, with no gap", async (t) => {
  const nats = await secureNats(t);
  const nc = await connectAsCoordinator(t, nats);
  const kv = await new Kvm(nc).create(`cache${randomUUID().slice(0, 6)}`, { history: 1 });
  for (let i = 0; i < 50; i++) await kv.put(`k${i}`, encoder.encode(JSON.stringify(i)));
  const writer = (async () => {
    for (let i = 50; i < 300; i++) await kv.put(`k${i % 80}`, encoder.encode(JSON.stringify(i)));
  })();
  const cache = await KvCache.open<number>(kv, "cache", quiet);
  t.teardown(() => cache.stop());
  t.true(cache.size >= 50, "everything written before is there once it opens");
  await writer;
  await until("the cache caught up", () => cache.get("k59") === 299);
  for (let k = 0; k < 80; k++) t.is(cache.get(`k${k}`), (await kv.get(`k${k}`))!.json<number>(), `k${k} is the last value written`);
});

test("the bootstrap claim is a compare-and-set: of many racing writers exactly one wins, and every loser reads the winner", async (t) => {
  const nats = await secureNats(t);
  const prefix = `claim${randomUUID().slice(0, 6)}`;
  const connections = await Promise.all(Array.from({ length: 6 }, (_, i) => connectAsCoordinator(t, nats, (i % 3) + 1)));
  const stores = await Promise.all(
    connections.map(async (nc) => {
      const buckets = await openBuckets(nc, { ...DEFAULT_LAYOUT, prefix }, quiet);
      const cache = await KvCache.open<BootstrapClaim>(buckets.clusters, "clusters", quiet);
      t.teardown(() => cache.stop());
      return new ClaimStore(cache);
    }),
  );
  const results = await Promise.all(stores.map((s, i) => s.claim("c", { node: `n${i}`, claimedAt: "t" })));
  const winners = results.filter((r) => r.won);
  t.is(winners.length, 1);
  t.true(results.every((r) => r.claim.node === winners[0]!.claim.node));
});

test("an operation holds its cluster's lock; a second waits; only its own end releases it; a stale writer loses", async (t) => {
  const nats = await secureNats(t);
  const nc = await connectAsCoordinator(t, nats);
  const buckets = await openBuckets(nc, { ...DEFAULT_LAYOUT, prefix: `ops${randomUUID().slice(0, 6)}` }, quiet);
  const cache: ConstructorParameters<typeof OperationStore>[0] = await KvCache.open(buckets.ops, "ops", quiet);
  t.teardown(() => cache.stop());
  const ops = new OperationStore(cache);
  const now = Date.now();
  const first = newOperation("evacuate", { cluster: "c", member: "n2", requestedBy: "operator", params: { mode: "auto" }, data: {}, now });
  const begun = await ops.begin(first, now);
  t.truthy(begun);
  t.is(await ops.begin(newOperation("restore", { cluster: "c", member: "n3", requestedBy: "operator", params: {}, data: {}, now }), now), null, "one at a time");
  const moved = await ops.update({ ...first, phase: "evacuating" }, begun!.revision);
  await t.throwsAsync(ops.update({ ...first, phase: "stale" }, begun!.revision), { message: /changed by someone else/ }, "a writer with an old revision loses");
  await ops.update({ ...first, state: "succeeded", phase: "succeeded", finishedAt: new Date().toISOString() }, moved);
  await until("the lock released", () => ops.active("c") === null);
  t.truthy(await ops.begin(newOperation("restore", { cluster: "c", member: "n2", requestedBy: "operator", params: {}, data: {}, now }), now));
});

test("leases: two coordinators spread clusters between them; when one dies, the other takes its clusters within the lease's time", async (t) => {
  const nats = await secureNats(t);
  const prefix = `lease${randomUUID().slice(0, 6)}`;
  // The clusters spread by hashing against random coordinator ids: with six, all of them went to one coordinator
  // once in 32 runs; with 24, once in eight million.
  const clusters = Array.from({ length: 24 }, (_, i) => `c${i}`);
  const make = async (i: number) => {
    const nc = await connectAsCoordinator(t, nats, i);
    const buckets = await openBuckets(nc, { ...DEFAULT_LAYOUT, prefix, leaseTtlMs: 2_000 }, quiet);
    const cache: ConstructorParameters<typeof LeaseManager>[0] = await KvCache.open(buckets.leases, "leases", quiet);
    const owned = new Set<string>();
    const manager = new LeaseManager(cache, () => clusters, { acquired: (c) => void owned.add(c), lost: (c) => void owned.delete(c), canRelease: () => true }, { ttlMs: 2_000, tickMs: 250 }, systemClock, quiet);
    return { manager, owned, cache, nc };
  };
  const one = await make(1);
  const two = await make(2);
  t.teardown(async () => {
    one.cache.stop();
    two.cache.stop();
  });
  one.manager.start();
  two.manager.start();
  await until("every cluster owned once, and both coordinators owning some", () => one.owned.size + two.owned.size === clusters.length && one.owned.size > 0 && two.owned.size > 0 && [...one.owned].every((c) => !two.owned.has(c)), 20_000);
  t.log(`spread: ${[...one.owned].sort().join(",")} | ${[...two.owned].sort().join(",")}`);
  t.is(new Set([...one.owned, ...two.owned]).size, clusters.length);

  // Coordinator two dies without a word: its connection closes and its leases are not renewed.
  const orphaned = [...two.owned];
  await two.nc.close();
  const died = Date.now();
  await until("coordinator one owns every cluster", () => one.owned.size === clusters.length, 10_000);
  const tookMs = Date.now() - died;
  t.log(`took over ${orphaned.join(",")} in ${tookMs} ms (lease 2 s)`);
  t.true(tookMs < 2_000 + 250 * 4 + 1_500, `takeover took ${tookMs} ms`);
  await one.manager.stop();
  await two.manager.stop();
});

/** A leases bucket of its own on a server of its own, and the cache a lease manager works through. */
async function leaseBucket(t: ExecutionContext, leaseTtlMs: number) {
  const nc = await connectAsCoordinator(t, await secureNats(t), 1);
  const buckets = await openBuckets(nc, { ...DEFAULT_LAYOUT, prefix: `leases${randomUUID().slice(0, 6)}`, leaseTtlMs }, quiet);
  const cache: ConstructorParameters<typeof LeaseManager>[0] = await KvCache.open(buckets.leases, "leases", quiet);
  t.teardown(() => cache.stop());
  return { buckets, cache };
}

test("leases: a coordinator taking many clusters at once through a slow store keeps every lease it took", async (t) => {
  const clusters = Array.from({ length: 40 }, (_, i) => `c${i}`);
  const { cache } = await leaseBucket(t, 2_000);
  // A busy store: it answers the writes that take leases only once it has all forty in hand, or else a lease's time
  // later. Forty taken one after another would each wait that long, and the first would lapse before its renewal.
  const kv = cache.kv;
  const renewals = new Map<string, number>();
  let asked = 0;
  const create = kv.create.bind(kv);
  kv.create = async (...args: Parameters<typeof kv.create>) => {
    asked += 1;
    await until("every free lease asked for", () => asked >= clusters.length, 2_500).catch(() => undefined);
    return create(...args);
  };
  const update = kv.update.bind(kv);
  kv.update = async (...args: Parameters<typeof kv.update>) => {
    const revision = await update(...args);
    renewals.set(args[0], (renewals.get(args[0]) ?? 0) + 1);
    return revision;
  };
  const owned = new Set<string>();
  const lost: string[] = [];
  const manager = new LeaseManager(cache, () => clusters, { acquired: (c) => void owned.add(c), lost: (c) => void (owned.delete(c), lost.push(c)), canRelease: () => true }, { ttlMs: 2_000, tickMs: 250 }, systemClock, quiet);
  manager.start();
  t.teardown(() => manager.stop());
  await until("every cluster owned", () => owned.size === clusters.length, 10_000);
  // Eight renewals of every lease (a round every 250 ms): longer than a lease lasts, so one renewed late has lapsed.
  await until("every lease renewed eight times", () => lost.length > 0 || clusters.every((c) => (renewals.get(`cluster.${c}`) ?? 0) >= 8), 15_000);
  t.deepEqual(lost, [], "no lease lapsed");
  t.is(owned.size, clusters.length);
});

test("leases: a coordinator stopped while it is taking leases keeps none of them", async (t) => {
  const clusters = Array.from({ length: 10 }, (_, i) => `c${i}`);
  const { buckets, cache } = await leaseBucket(t, 30_000);
  // The writes taking leases are held until the coordinator has been told to stop.
  const kv = cache.kv;
  let asked = 0;
  let answered = 0;
  let stopping = false;
  const create = kv.create.bind(kv);
  kv.create = async (...args: Parameters<typeof kv.create>) => {
    asked += 1;
    await until("the coordinator told to stop", () => stopping, 10_000);
    try {
      return await create(...args);
    } finally {
      answered += 1;
    }
  };
  const owned = new Set<string>();
  const manager = new LeaseManager(cache, () => clusters, { acquired: (c) => void owned.add(c), lost: (c) => void owned.delete(c), canRelease: () => true }, { ttlMs: 30_000, tickMs: 250 }, systemClock, quiet);
  manager.start();
  await until("every free lease asked for", () => asked >= clusters.length, 10_000);
  const stopped = manager.stop();
  stopping = true;
  await stopped;
  await until("every write answered", () => answered >= clusters.length, 10_000);
  const leaseKeys = async () => {
    const keys: string[] = [];
    for await (const k of await buckets.leases.keys("cluster.>")) keys.push(k);
    return keys;
  };
  await until("the leases given back", async () => (await leaseKeys()).length === 0, 10_000, 50).catch(() => undefined);
  t.is(owned.size, 0, "nothing started on a stopped coordinator");
  t.deepEqual(await leaseKeys(), [], "no lease left to lapse after 30 s");
});
