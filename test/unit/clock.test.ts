import test from "ava";
import { ClockFilter, clockSampleFrom, wallLead } from "../../agent/clock.js";

test("a measurement reads the offset of a clock behind the coordinator's, the coordinator's hold taken out", (t) => {
  // The host's clock is 1,000 ms behind; each way takes 10 ms; the coordinator held the request for 500 ms.
  const sent = 0;
  const received = sent + 10 + 500 + 10;
  const sample = clockSampleFrom(sent, { received: 1_000 + 10, answered: 1_000 + 10 + 500 }, received);
  t.deepEqual(sample, { offsetMs: 1_000, rttMs: 20 });
  t.deepEqual(clockSampleFrom(5_000, { received: 4_010, answered: 4_010 }, 5_020), { offsetMs: -1_000, rttMs: 20 }, "and one ahead of it");
});

test("the measurement with the shortest round trip of the last three stands: one delayed on one way does not", (t) => {
  const filter = new ClockFilter();
  t.is(filter.best, null);
  t.is(filter.ageMs(), Infinity);
  filter.add({ offsetMs: 3, rttMs: 2 }, wallLead());
  filter.add({ offsetMs: 400, rttMs: 800 }, wallLead());
  t.deepEqual(filter.best, { offsetMs: 3, rttMs: 2 });
  t.true(filter.ageMs() < 1_000);
  filter.add({ offsetMs: 5, rttMs: 4 }, wallLead());
  filter.add({ offsetMs: 6, rttMs: 3 }, wallLead());
  t.deepEqual(filter.best, { offsetMs: 6, rttMs: 3 }, "the oldest has gone out");
});

test("a step of the host's clock voids the measurements before it, and spoils one under way", (t) => {
  const realNow = Date.now;
  const filter = new ClockFilter();
  try {
    filter.add({ offsetMs: 3, rttMs: 2 }, wallLead());
    const leadBefore = wallLead();
    Date.now = () => realNow() + 5_000;
    t.is(filter.best, null);
    t.is(filter.ageMs(), Infinity);
    filter.add({ offsetMs: -4_997, rttMs: 2 }, leadBefore);
    t.is(filter.best, null, "an exchange the step fell into measures nothing");
    filter.add({ offsetMs: -4_998, rttMs: 2 }, wallLead());
    t.deepEqual(filter.best, { offsetMs: -4_998, rttMs: 2 }, "the first measurement after the step stands alone");
  } finally {
    Date.now = realNow;
  }
});
