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

test("a cache whose first watches deliver nothing replaces them, each after twice as long, says which bucket, and opens with every key", async (t) => {
  const kv = new MemoryKv();
  await kv.put("c1.n1", encoder.encode("1"));
  await kv.put("c1.n2", encoder.encode("2"));
  kv.stallNextWatches(2);
  const { log, lines } = capturingLogger("warn");
  const cache = await KvCache.open<number>(kv.asKv(), "nodes", log);
  t.teardown(() => cache.stop());
  t.deepEqual([...cache.all()].map(([k, e]) => [k, e.value]), [["c1.n1", 1], ["c1.n2", 2]]);
  const replaced = lines.filter((l) => /replacing it/.test(l.msg));
  t.deepEqual(replaced.map((l) => [l.bucket, l.stalledMs]), [["nodes", 5_000], ["nodes", 10_000]]);
  t.false(lines.some((l) => /following the bucket again/.test(l.msg)), "the replaced watch does not start a second one");
  await kv.put("c1.n3", encoder.encode("3"));
  await until("the cache to follow the next write", () => cache.get("c1.n3") === 3, 10_000, 10);
});

test("a cache whose first watch ends before it caught up follows the bucket again before it counts as read", async (t) => {
  const kv = new MemoryKv();
  for (const key of ["a", "b", "c"]) await kv.put(key, encoder.encode(JSON.stringify(key)));
  kv.cutNextWatch();
  const { log, lines } = capturingLogger("warn");
  const cache = await KvCache.open<string>(kv.asKv(), "spec", log);
  t.teardown(() => cache.stop());
  t.is(cache.size, 3, "every key is read before the cache opens");
  t.is(lines.filter((l) => /ended before it caught up/.test(l.msg)).length, 1);
  await kv.put("d", encoder.encode('"d"'));
  await until("the cache to follow the next write", () => cache.get("d") === "d", 10_000, 10);
});

test("a group of keys (a cluster's hosts) is read without the others, and follows puts and deletes", async (t) => {
  const kv = new MemoryKv();
  for (const key of ["c1.n1", "c1.n2", "c10.n1", "op.c1.a", "op.c1.b", "op.c10.a"]) await kv.put(key, encoder.encode(JSON.stringify(key)));
  const cache = await KvCache.open<string>(kv.asKv(), "test", capturingLogger("warn").log);
  t.teardown(() => cache.stop());
  const keys = (parent: string) => [...cache.childrenOf(parent)].map(([k]) => k).sort();
  t.deepEqual(keys("c1"), ["c1.n1", "c1.n2"]);
  t.deepEqual(keys("op.c1"), ["op.c1.a", "op.c1.b"]);
  t.deepEqual(keys("c2"), []);
  await kv.put("c1.n3", encoder.encode('"c1.n3"'));
  await kv.delete("c1.n1");
  await until("the cache to follow", () => cache.get("c1.n3") !== undefined && cache.get("c1.n1") === undefined, 10_000, 10);
  t.deepEqual(keys("c1"), ["c1.n2", "c1.n3"]);
  cache.remember("c2.n1", "c2.n1", await kv.put("c2.n1", encoder.encode('"c2.n1"')));
  t.deepEqual(keys("c2"), ["c2.n1"], "a value this process wrote is in its group at once");
  t.deepEqual(keys("c10"), ["c10.n1"]);
});
