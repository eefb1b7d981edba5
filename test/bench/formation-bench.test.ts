import test from "ava";
import { runBench } from "../helpers/bench.js";
import { LabSlot } from "../helpers/lab-slots.js";

test("the formation benchmark runs at a small size and prints its figures as JSON lines", async (t) => {
  const lines = await runBench("formation", ["--sizes", "3", "--reps", "1", "--settle-ms", "500", "--slot", String(LabSlot.benchFormation.slot), "--prefix", LabSlot.benchFormation.prefix]);
  const run = lines.find((l) => l.bench === "formation")!;
  t.truthy(run);
  t.is(run.n, 3);
  t.true((run.floorMs as number) > 0 && (run.fleetMs as number) > 0);
  t.is((run.floorJoinsMs as unknown[]).length, 2, "two joins after the bootstrap, timed one by one");
  const summary = lines.find((l) => l.bench === "formation-summary")!;
  t.like(summary, { n: 3, runs: 1, target: 1.15 });
  t.is(typeof summary.ratio, "number");
});
