import test from "ava";
import { SlicedQueue } from "../../coordinator/gateway/sliced-queue.js";
import { until } from "../helpers/wait.js";

/** A clock that moves one millisecond per handled item: slices hold a known number of items, however loaded the machine. */
function itemClock() {
  let time = 0;
  return { now: () => time, tick: () => (time += 1), at: (t: number) => (time = t) };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

test("items are handled in order, later than pushed, and all of them", async (t) => {
  const seen: number[] = [];
  const q = new SlicedQueue<number>((n) => seen.push(n), { sliceMs: 5, maxAgeMs: 10_000, limit: 1000, onDrop: () => t.fail("nothing is dropped below the limit") });
  for (let i = 0; i < 500; i++) q.push(i);
  t.deepEqual(seen, [], "pushing costs the push only");
  await until("every item handled", () => seen.length === 500);
  t.deepEqual(seen, Array.from({ length: 500 }, (_, i) => i));
  t.is(q.length, 0);
});

test("a long backlog gives the event loop back between slices", async (t) => {
  const clock = itemClock();
  let handled = 0;
  const q = new SlicedQueue<number>(() => {
    clock.tick();
    handled += 1;
  }, { sliceMs: 5, maxAgeMs: 10_000, limit: 10_000, onDrop: () => undefined, now: clock.now });
  for (let i = 0; i < 200; i++) q.push(i);
  await nextTurn();
  // One slice: items are handled eight at a time until the slice is used up.
  t.is(handled, 8, "other work gets the event loop after one slice");
  await until("the backlog handled", () => handled === 200);
});

test("past the limit the oldest items are dropped and counted", async (t) => {
  const seen: number[] = [];
  let dropped = 0;
  const q = new SlicedQueue<number>((n) => seen.push(n), { sliceMs: 5, maxAgeMs: 10_000, limit: 3, onDrop: (n) => (dropped += n) });
  for (let i = 0; i < 5; i++) q.push(i);
  await until("the queue drained", () => q.length === 0 && seen.length === 3);
  t.deepEqual(seen, [2, 3, 4]);
  t.is(dropped, 2);
});

test("once stopped, nothing more is handled", async (t) => {
  const seen: number[] = [];
  const q = new SlicedQueue<number>((n) => seen.push(n), { sliceMs: 5, maxAgeMs: 10_000, limit: 10, onDrop: () => undefined });
  q.push(1);
  q.stop();
  q.push(2);
  await nextTurn();
  await nextTurn();
  t.deepEqual(seen, []);
  t.is(q.length, 0);
});

test("items that waited too long are dropped unhandled, and counted", async (t) => {
  const clock = itemClock();
  const seen: number[] = [];
  let dropped = 0;
  const q = new SlicedQueue<number>((n) => seen.push(n), { sliceMs: 5, maxAgeMs: 100, limit: 100, onDrop: (n) => (dropped += n), now: clock.now });
  clock.at(1_000);
  q.push(1, 500);
  q.push(2, 800);
  q.push(3, 1_000);
  await until("the queue drained", () => q.length === 0);
  t.deepEqual(seen, [3]);
  t.is(dropped, 2);
});
