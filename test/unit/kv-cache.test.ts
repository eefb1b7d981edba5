import test from "ava";
import { KvCache } from "../../coordinator/store/kv-cache.js";
import { capturingLogger } from "../helpers/capture-log.js";
import { MemoryKv } from "../helpers/memory-kv.js";
import { until } from "../helpers/wait.js";

const encoder = new TextEncoder();

test("a watch that ends while the bucket does not answer is followed again once it does, however many attempts fail first", async (t) => {
  const kv = new MemoryKv();
  await kv.put("k", encoder.encode("1"));
  const { log, lines } = capturingLogger("warn");
  const cache = await KvCache.open<number>(kv.asKv(), "test", log);
  t.teardown(() => cache.stop());
  t.is(cache.get("k"), 1);

  kv.outage(3);
  await kv.put("k", encoder.encode("2"));
  await until("the cache to hold the write made while it could not follow", () => cache.get("k") === 2, 30_000, 50);
  t.is(lines.filter((l) => /could not follow the bucket again/.test(l.msg)).length, 3, "each failed attempt is logged, and the next one made");

  await kv.put("k", encoder.encode("3"));
  await until("the cache to keep following", () => cache.get("k") === 3, 10_000, 10);
});

test("a cache opened on a bucket whose entries age out between its count and its watch opens all the same, empty, and follows", async (t) => {
  const kv = new MemoryKv();
  await kv.put("lease", encoder.encode("1"));
  kv.ageOutBeforeNextWatch();
  const cache = await KvCache.open<number>(kv.asKv(), "leases", capturingLogger("warn").log);
  t.teardown(() => cache.stop());
  t.is(cache.size, 0);
  await kv.put("lease", encoder.encode("2"));
  await until("the cache to follow the next write", () => cache.get("lease") === 2, 10_000, 10);
});
