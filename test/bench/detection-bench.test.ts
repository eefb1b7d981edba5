import test from "ava";
import { runBench } from "../helpers/bench.js";
import { LabSlot } from "../helpers/lab-slots.js";

test("the detection benchmark runs once and compares with Incus's own detection", async (t) => {
  const lines = await runBench("detection", ["--reps", "1", "--slot", String(LabSlot.benchDetection.slot), "--prefix", LabSlot.benchDetection.prefix]);
  const summary = lines.find((l) => l.bench === "detection-summary")!;
  t.truthy(summary);
  t.true((summary.agentKilledMedianMs as number) <= 3_500);
  t.true((summary.incusdStoppedMedianMs as number) <= 1_500);
  t.true((summary.incusOwnOfflineMedianMs as number) > (summary.incusdStoppedMedianMs as number), "incus-fleet notices before Incus does");
});
