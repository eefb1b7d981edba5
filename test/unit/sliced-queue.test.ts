import test from "ava";
import { SlicedQueue } from "../../coordinator/sliced-queue.js";

const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

test("items are handled in order, later than pushed, and all of them", async (t) => {
  const seen: number[] = [];
  const q = new SlicedQueue<number>((n) => seen.push(n), { sliceMs: 5, maxAgeMs: 10_000, limit: 1000, onDrop: () => t.fail("nothing is dropped below the limit") });
  for (let i = 0; i < 500; i++) q.push(i);
  t.deepEqual(seen, [], "pushing costs the push only");
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(seen, Array.from({ length: 500 }, (_, i) => i));
  t.is(q.length, 0);
});

test("a long backlog gives the event loop back between slices", async (t) => {
  let handled = 0;
  const q = new SlicedQueue<number>(() => {
    busy(1);
    handled += 1;
  }, { sliceMs: 5, maxAgeMs: 10_000, limit: 10_000, onDrop: () => undefined });
  for (let i = 0; i < 200; i++) q.push(i);
  // Work that arrives meanwhile (an agent's request) runs long before the backlog is through.
  const handledWhenOtherWorkRan = await new Promise<number>((resolve) => setImmediate(() => setImmediate(() => resolve(handled))));
  t.true(handledWhenOtherWorkRan < 30, `other work waited for ${handledWhenOtherWorkRan} items`);
  await new Promise((r) => setTimeout(r, 400));
  t.is(handled, 200);
});

test("past the limit the oldest items are dropped and counted", async (t) => {
  const seen: number[] = [];
  let dropped = 0;
  const q = new SlicedQueue<number>((n) => seen.push(n), { sliceMs: 5, maxAgeMs: 10_000, limit: 3, onDrop: (n) => (dropped += n) });
  for (let i = 0; i < 5; i++) q.push(i);
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(seen, [2, 3, 4]);
  t.is(dropped, 2);
});

test("once stopped, nothing more is handled", async (t) => {
  const seen: number[] = [];
  const q = new SlicedQueue<number>((n) => seen.push(n), { sliceMs: 5, maxAgeMs: 10_000, limit: 10, onDrop: () => undefined });
  q.push(1);
  q.stop();
  q.push(2);
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(seen, []);
});

test("items that waited too long are dropped unhandled, and counted", async (t) => {
  const seen: number[] = [];
  let dropped = 0;
  const q = new SlicedQueue<number>((n) => seen.push(n), { sliceMs: 5, maxAgeMs: 100, limit: 100, onDrop: (n) => (dropped += n) });
  const now = performance.now();
  q.push(1, now - 500);
  q.push(2, now - 200);
  q.push(3, now);
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(seen, [3]);
  t.is(dropped, 2);
});
