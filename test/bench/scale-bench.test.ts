import test from "ava";
import { runBench } from "../helpers/bench.js";

interface CoordinatorFigures {
  owns: number;
  heartbeatsPerSecond: number;
  cpuPerHeartbeatUs: number;
  rssMb: number;
  peakRssMb: number;
}

interface ScaleFigures {
  heartbeatsExpectedPerSecond: number;
  heartbeatsSentPerSecond: number;
  heartbeatsProcessedOfSent: number;
  assignmentPulls: number;
  assignmentP50Ms: number;
  assignmentP99Ms: number;
  coordinatorCpuPerHeartbeatUs: number;
  rawReceiver: { heartbeatsPerSecond: number; cpuPerHeartbeatUs: number };
  coordinatorCpuOfRawReceiver: number;
  coordinatorRssMb: number;
  coordinatorPeakRssMb: number;
  perCoordinator: CoordinatorFigures[];
  simulators: { role: string; agents: number; cpuPercent: number; rssMb: number }[];
}

test("the scale benchmark runs the shipped agent on simulated hosts at a small size and prints its figures", async (t) => {
  const [result] = await runBench("scale", ["--agents", "60", "--per-cluster", "20", "--window-ms", "3000"]);
  t.like(result, { bench: "scale", agents: 60, clusters: 3, coordinators: 1, membersFormed: 60, agentDroppedMessages: 0 });
  for (const key of ["formationMs", "heartbeatsPerSecond", "heartbeatsSentPerSecond", "assignmentP50Ms", "assignmentP99Ms", "coordinatorCpuPerHeartbeatUs", "coordinatorRssMb", "coordinatorPeakRssMb", "listMembersP50Ms", "metricsScrapeMs"]) {
    t.is(typeof result![key], "number", key);
  }
  const r = result as unknown as ScaleFigures;
  t.is(r.heartbeatsExpectedPerSecond, 70, "60 agents and the 10 quiet ones, once a second");
  t.true(r.heartbeatsSentPerSecond > 0 && r.heartbeatsSentPerSecond <= 70 * 1.1, "the simulators count what the agents send");
  t.true(r.heartbeatsProcessedOfSent > 0.8 && r.heartbeatsProcessedOfSent < 1.2, "the coordinator's count and the agents' count agree");
  t.true(r.assignmentPulls > 0 && r.assignmentP50Ms > 0 && r.assignmentP50Ms <= r.assignmentP99Ms);
  t.true(r.coordinatorCpuPerHeartbeatUs > 0);
  const receivedOfSent = r.rawReceiver.heartbeatsPerSecond / r.heartbeatsSentPerSecond;
  t.true(receivedOfSent > 0.8 && receivedOfSent < 1.2, `the raw receiver opens every heartbeat sent (${receivedOfSent})`);
  t.true(r.rawReceiver.cpuPerHeartbeatUs > 0);
  t.is(r.coordinatorCpuOfRawReceiver, Math.round((r.coordinatorCpuPerHeartbeatUs / r.rawReceiver.cpuPerHeartbeatUs) * 100) / 100);
  t.true(r.coordinatorPeakRssMb >= r.coordinatorRssMb && r.coordinatorRssMb > 0);
  t.is(r.perCoordinator.length, 1);
  t.is(r.perCoordinator[0]!.owns, 4, "the three clusters and the quiet one");
  t.deepEqual(
    r.simulators.map((s) => [s.role, s.agents]),
    [
      ["fleet", 60],
      ["quiet", 10],
    ],
  );
  for (const s of r.simulators) t.true(s.cpuPercent >= 0 && s.rssMb > 0);
});

test("with two coordinators the scale benchmark prints each one's load, kills one and times the takeover", async (t) => {
  const lines = await runBench("scale", ["--agents", "40", "--per-cluster", "20", "--window-ms", "2000", "--quiet-members", "3", "--coordinators", "2"]);
  const scale = lines.find((l) => l.bench === "scale") as Record<string, unknown> & { perCoordinator: CoordinatorFigures[] };
  t.like(scale, { agents: 40, clusters: 2, coordinators: 2, membersFormed: 40 });
  t.is(scale.perCoordinator.length, 2);
  t.is(scale.perCoordinator.reduce((n, c) => n + c.owns, 0), 3, "every cluster, the quiet one included, owned by exactly one of them");
  for (const c of scale.perCoordinator) t.true(c.rssMb > 0 && c.peakRssMb >= c.rssMb);
  const failover = lines.find((l) => l.bench === "scale-failover") as Record<string, number | string>;
  t.truthy(failover);
  t.like(failover, { clusters: 3, coordinators: 2, clustersWithoutOwner: 0, clustersOwnedByOthers: 0 });
  t.not(failover.killed, failover.survivor);
  t.true((failover.killedOwned as number) >= 1);
  t.true((failover.takeoverMs as number) > 0 && (failover.takeoverMs as number) < 60_000);
  t.true((failover.heartbeatsPerSecondAfterTakeover as number) > 0, "the agents' heartbeats reach the survivor");
});
