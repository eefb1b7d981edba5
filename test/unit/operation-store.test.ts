import test from "ava";
import { newOperation } from "../../coordinator/operations/new-operation.js";
import type { Operation } from "../../coordinator/operations/operation.js";
import { KvCache } from "../../coordinator/store/kv-cache.js";
import { OperationStore } from "../../coordinator/store/operation-store.js";
import { quiet } from "../helpers/controller-harness.js";
import { MemoryKv } from "../helpers/memory-kv.js";
import { NOW } from "../helpers/situations.js";

const removal = () => newOperation("remove", { cluster: "c", member: "node5", requestedBy: "spec", params: {}, data: {}, now: NOW }) as Operation;

test("a lock the cache never saw (its watch down while another coordinator took it) is read from the server when a change finds the cluster busy", async (t) => {
  const kv = new MemoryKv();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const cache = await KvCache.open<any>(kv.asKv(), "ops", quiet);
  t.teardown(() => cache.stop());
  const store = new OperationStore(cache);
  kv.outage(1_000);
  // Another coordinator took the lock and died before it stored its operation.
  await kv.create("lock.c", new TextEncoder().encode(JSON.stringify({ id: "gone", at: NOW - 60_000 })));
  t.is(store.staleLock("c"), null, "the lagging cache does not know the lock");

  t.is(await store.begin(removal(), NOW), null, "busy");
  const stale = store.staleLock("c");
  t.like(stale, { ended: false, at: NOW - 60_000 }, "now it does, and the lock can be given back as abandoned");
  await store.releaseStale("c", stale!.revision);
  t.truthy(await store.begin(removal(), NOW), "and the next change runs");
});
