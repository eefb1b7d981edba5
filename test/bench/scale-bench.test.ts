import test from "ava";
import { runBench } from "../helpers/bench.js";

test("the scale benchmark runs simulated agents at a small size and prints its figures", async (t) => {
  const [result] = await runBench("scale", ["--agents", "60", "--per-cluster", "20", "--window-ms", "3000"]);
  t.like(result, { bench: "scale", agents: 60, clusters: 3, membersFormed: 60 });
  t.true((result!.heartbeatsPerSecond as number) > 40, "the coordinator keeps up with the heartbeats");
  for (const key of ["formationMs", "assignmentP50Ms", "assignmentP99Ms", "coordinatorRssMb", "listMembersP50Ms", "metricsScrapeMs"]) t.is(typeof result![key], "number", key);
});
