import test from "ava";
import { RecentIds } from "../../coordinator/events/recent-ids.js";

test("an id is known for its whole time however many come after it, up to the limit", (t) => {
  const ids = new RecentIds(120_000, 50_000);
  for (let i = 0; i < 10_000; i++) ids.add(`e${i}`, 1_000 + i);
  t.true(ids.has("e0"), "ten thousand ids in ten seconds forget none");
  t.is(ids.size, 10_000);
});

test("an id older than its time is forgotten when the next one comes", (t) => {
  const ids = new RecentIds(120_000, 50_000);
  ids.add("old", 0);
  ids.add("fresh", 60_000);
  t.true(ids.has("old"));
  ids.add("newest", 120_001);
  t.false(ids.has("old"));
  t.true(ids.has("fresh") && ids.has("newest"));
});

test("past the limit the oldest go first, fresh or not", (t) => {
  const ids = new RecentIds(120_000, 3);
  for (const [i, id] of ["a", "b", "c", "d"].entries()) ids.add(id, i);
  t.deepEqual(["a", "b", "c", "d"].map((id) => ids.has(id)), [false, true, true, true]);
});

test("an id seen again counts from then", (t) => {
  const ids = new RecentIds(100, 10);
  ids.add("a", 0);
  ids.add("b", 50);
  ids.add("a", 90);
  ids.add("c", 140);
  t.true(ids.has("a"), "seen again at 90, still within its time at 140");
  t.true(ids.has("b"));
  ids.add("d", 151);
  t.false(ids.has("b"));
  t.true(ids.has("a"));
});
