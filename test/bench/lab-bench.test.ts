import test from "ava";
import { runBench } from "../helpers/bench.js";
import { LabSlot } from "../helpers/lab-slots.js";

// Both benchmarks take real incusd members on the same lab slot: one after the other.
const slot = ["--slot", String(LabSlot.benchFormation.slot), "--prefix", LabSlot.benchFormation.prefix];

test.serial("the formation benchmark runs at a small size and prints its figures as JSON lines", async (t) => {
  const lines = await runBench("formation", ["--sizes", "3", "--reps", "1", "--settle-ms", "500", "--coordinators", "2", ...slot]);
  for (const mode of ["formation", "converged"]) {
    const run = lines.find((l) => l.bench === "formation" && l.mode === mode)!;
    t.truthy(run, mode);
    t.is(run.n, 3);
    t.true((run.floorMs as number) > 0 && (run.fleetMs as number) > 0);
    const summary = lines.find((l) => l.bench === "formation-summary" && l.mode === mode)!;
    t.like(summary, { n: 3, runs: 1, target: 1.1 });
    t.is(typeof summary.ratio, "number");
  }
  t.is((lines.find((l) => l.mode === "formation")!.floorJoinsMs as unknown[]).length, 2, "two joins after the bootstrap, timed one by one");
  t.is(typeof lines.find((l) => l.bench === "formation-summary" && l.mode === "formation")!.twoToOneRatio, "number", "two coordinators timed too");
});

test.serial("the rollout benchmark runs at a small size and prints the raw script and incus-fleet side by side", async (t) => {
  const lines = await runBench("rollout", ["--members", "3", "--reps", "1", ...slot]);
  const run = lines.find((l) => l.bench === "rollout")!;
  t.truthy(run);
  t.is(Object.keys(run.rawSecondsPerMember as object).length, 3);
  t.is(Object.keys(run.fleetSecondsPerMember as object).length, 3);
  t.is(Object.keys(run.fleetNotRunningS as object).length, 3, "each container's time not running");
  t.is(typeof lines.find((l) => l.bench === "rollout-summary")!.ratio, "number");
});
