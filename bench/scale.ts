/**
 * Scale benchmark: one coordinator and one real nats-server on this machine,
 * with thousands of SIMULATED agents (bench/simulator) heartbeating at 1 Hz
 * and forming clusters of 50 members each.
 *
 *   node dist/bench/scale.js --agents 1000,5000
 *
 * Prints one JSON line per size: heartbeats processed per second, assignment
 * round trips (p50/p99) timed by the agents of one more, small cluster run in
 * a quiet process of their own (and as the fleet simulator saw them), time
 * to form every cluster, coordinator memory and CPU, and the latency of the
 * API call listing every member, measured after the assignment window.
 */
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { startNatsServer } from "../lab/nats-server.js";
import { startDaemon, stopDaemon, systemEnv, waitFor } from "../lab/processes.js";
import { arg, emit, percentile, round, runBenchmark } from "./results.js";
import { COORDINATOR_NODE_FLAGS } from "../coordinator/node-flags.js";
import type { SimulatorPlan } from "./simulator/main.js";

const COORDINATOR = fileURLToPath(new URL("../coordinator/main.js", import.meta.url));
const SIMULATOR = fileURLToPath(new URL("./simulator/main.js", import.meta.url));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** Resident memory and CPU seconds of a process, from /proc. */
function processUsage(pid: number): { rssMb: number; cpuSeconds: number } {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { rssMb: rss ? Number(rss[1]) / 1024 : 0, cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100 };
}

function ask<T>(child: ChildProcess, request: unknown, reply: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the simulator exited (${code}) while waiting for '${reply}'`));
    const onMessage = (m: { type: string; error?: string }) => {
      if (m.type === reply) {
        child.off("message", onMessage);
        child.off("exit", onExit);
        resolve(m as T);
      } else if (m.type === "error") reject(new Error(m.error));
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
    if (request) child.send(request as object);
  });
}

/** The coordinator's own record of event-loop stalls and garbage-collection pauses (prom-client defaults). */
function pauses(text: string): { eventLoopLagP99Ms: number; eventLoopLagMaxMs: number; gcSecondsByKind: Record<string, number> } {
  const gauge = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text)?.[1] ?? NaN) * 1000;
  const gcSecondsByKind: Record<string, number> = {};
  for (const m of text.matchAll(/^fleet_coordinator_nodejs_gc_duration_seconds_sum\{kind="(\w+)"\} ([0-9.e+-]+)$/gm)) gcSecondsByKind[m[1]!] = round(Number(m[2]), 3);
  return { eventLoopLagP99Ms: round(gauge("fleet_coordinator_nodejs_eventloop_lag_p99_seconds")), eventLoopLagMaxMs: round(gauge("fleet_coordinator_nodejs_eventloop_lag_max_seconds")), gcSecondsByKind };
}

/** A percentile read off the coordinator's own histogram of how long it took to answer assignment pulls. */
function coordinatorAssignSeconds(text: string): { buckets: [number, number][]; count: number } {
  const buckets = [...text.matchAll(/^fleet_nats_request_duration_seconds_bucket\{le="([^"]+)",endpoint="assign"\} (\d+)$/gm)].map((m): [number, number] => [m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2])]);
  const count = Number(/^fleet_nats_request_duration_seconds_count\{endpoint="assign"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  return { buckets, count };
}

function bucketPercentile(before: { buckets: [number, number][]; count: number }, after: { buckets: [number, number][]; count: number }, p: number): number {
  const total = after.count - before.count;
  const wanted = (p / 100) * total;
  for (const [i, [le, n]] of after.buckets.entries()) if (n - (before.buckets[i]?.[1] ?? 0) >= wanted) return le * 1000;
  return Infinity;
}

interface PullStats {
  pulls: number;
  pullP50Ms: number;
  pullP99Ms: number;
  pullMaxMs: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** The coordinator's V8 heap and the memory held outside it, from prom-client's process metrics. */
function heapFigures(text: string): { heapUsedMb: number; heapTotalMb: number; externalMb: number } {
  const mb = (name: string) => round(Number(new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text)?.[1] ?? NaN) / 2 ** 20);
  return { heapUsedMb: mb("fleet_coordinator_nodejs_heap_size_used_bytes"), heapTotalMb: mb("fleet_coordinator_nodejs_heap_size_total_bytes"), externalMb: mb("fleet_coordinator_nodejs_external_memory_bytes") };
}

/** Heartbeats the coordinator has received and not yet processed, from its health route. */
async function backlog(url: string): Promise<number> {
  return ((await (await fetch(`${url}/v1/health`)).json()) as { nats: { heartbeatBacklog: number } }).nats.heartbeatBacklog;
}

/** The coordinator's Prometheus text: a scrape at each end of the window, every figure read from it. */
async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

function heartbeatsProcessed(text: string): number {
  const m = /fleet_nats_messages_total\{endpoint="heartbeat",result="ok"\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

async function timed(url: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(url);
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return performance.now() - started;
}

async function runSize(agentCount: number, options: { perCluster: number; windowMs: number; heartbeatMs: number }): Promise<void> {
  const clusters = Math.ceil(agentCount / options.perCluster);
  const plan: SimulatorPlan["clusters"] = Array.from({ length: clusters }, (_, c) => ({
    name: `sim${c}`,
    password: `simulated-cluster-${c}-password`,
    members: Array.from({ length: Math.min(options.perCluster, agentCount - c * options.perCluster) }, (_, i) => {
      const n = c * options.perCluster + i;
      // Labels only: the simulated network never carries traffic to them.
      return { name: `m${i}`, address: `198.51.100.${(n % 250) + 1}:${10_000 + Math.floor(n / 250)}` };
    }),
  }));
  const quietCluster = {
    name: "quiet",
    password: "quiet-cluster-password",
    members: Array.from({ length: 10 }, (_, i) => ({ name: `q${i}`, address: `203.0.113.${i + 1}:8443` })),
  };
  const nats = await startNatsServer();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const profile = arg("profile", "");
  const heapDir = arg("heap-snapshot", "");
  const v8Flags = arg("v8-flags", COORDINATOR_NODE_FLAGS.join(" ")).split(" ").filter(Boolean);
  const coordinator = startDaemon(process.execPath, [...v8Flags, ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : []), ...(heapDir ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${heapDir}`] : []), COORDINATOR], {
    env: systemEnv({ FLEET_NATS_SERVERS: nats.url, FLEET_HTTP_PORT: String(port), FLEET_LOG_LEVEL: "warn", FLEET_HEARTBEAT_INTERVAL_MS: String(options.heartbeatMs) }),
    log: `${nats.dir}/coordinator.log`,
  });
  // The fleet, and apart from it a quiet process running the agents of one small cluster that
  // pull often: their round trips are not stretched by the fleet simulator's own busy event loop.
  const simulator = fork(SIMULATOR, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: ["--max-old-space-size=4096"] });
  const quiet = fork(SIMULATOR, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    await waitFor("the coordinator", async () => (await fetch(`${url}/v1/health`)).ok, 20_000, 50);
    await Promise.all([ask(simulator, null, "ready"), ask(quiet, null, "ready")]);
    await ask(simulator, { type: "start", plan: { nats: nats.url, clusters: plan, heartbeatMs: options.heartbeatMs, pullIntervalMs: 5_000, joinMs: 5, connections: Number(arg("connections", "20")) } }, "started");
    await ask(quiet, { type: "start", plan: { nats: nats.url, clusters: [quietCluster], heartbeatMs: options.heartbeatMs, pullIntervalMs: 100, joinMs: 5, connections: 1 } }, "started");
    await new Promise((r) => setTimeout(r, 2_000));

    const specStarted = performance.now();
    const spec = toYaml({ clusters: Object.fromEntries([...plan, quietCluster].map((c) => [c.name, { cluster_password: c.password, members: Object.fromEntries(c.members.map((m) => [m.name, { address: m.address }])) }])) });
    const put = await fetch(`${url}/v1/spec`, { method: "PUT", headers: { "content-type": "application/yaml" }, body: spec });
    if (!put.ok) throw new Error(`spec refused: ${await put.text()}`);
    const specApplyMs = performance.now() - specStarted;
    await waitFor(
      `${clusters + 1} clusters formed`,
      async () => ((await (await fetch(`${url}/v1/clusters`)).json()) as { phase: string }[]).every((c) => c.phase === "ready"),
      600_000,
      1_000,
    );
    const formationMs = performance.now() - specStarted;
    const formed = await ask<{ clustered: number }>(simulator, { type: "stats" }, "stats");

    // Steady state: every agent a member, heartbeating, pulling every 5 s, and the heartbeats queued while
    // the clusters formed all processed.
    await new Promise((r) => setTimeout(r, 5_000));
    const drainStarted = performance.now();
    await waitFor("the heartbeat backlog to drain", async () => (await backlog(url)) < 100, 300_000, 250);
    const backlogDrainMs = performance.now() - drainStarted;
    const scrapeStarted = performance.now();
    const scrapedBefore = await scrape(url);
    const beatsCountedAt = performance.now();
    const metricsScrapeMs = beatsCountedAt - scrapeStarted;
    const beforeBeats = heartbeatsProcessed(scrapedBefore);
    const assignBefore = coordinatorAssignSeconds(scrapedBefore);
    // The benchmark's own scrapes stay outside the measured window.
    await new Promise((r) => setTimeout(r, 1_000));
    simulator.send({ type: "reset-stats" });
    quiet.send({ type: "reset-stats" });
    const before = processUsage(coordinator.pid);
    const simBefore = processUsage(simulator.pid!);
    const natsBefore = processUsage(nats.daemon.pid);
    let peakRssMb = before.rssMb;
    let backlogMax = 0;
    const windowStarted = performance.now();
    while (performance.now() - windowStarted < options.windowMs) {
      peakRssMb = Math.max(peakRssMb, processUsage(coordinator.pid).rssMb);
      backlogMax = Math.max(backlogMax, await backlog(url));
      await new Promise((r) => setTimeout(r, 250));
    }
    const steady = await ask<PullStats>(simulator, { type: "stats" }, "stats");
    const quietPulls = await ask<PullStats>(quiet, { type: "stats" }, "stats");
    const windowMs = performance.now() - windowStarted;
    const after = processUsage(coordinator.pid);
    const simAfter = processUsage(simulator.pid!);
    const natsAfter = processUsage(nats.daemon.pid);
    const scrapedAfter = await scrape(url);
    const afterBeats = heartbeatsProcessed(scrapedAfter);
    const cpu = (a: { cpuSeconds: number }, b: { cpuSeconds: number }) => round(((b.cpuSeconds - a.cpuSeconds) * 100_000) / windowMs);
    const heartbeatsPerSecond = ((afterBeats - beforeBeats) * 1000) / (performance.now() - beatsCountedAt);
    const heartbeatsExpected = (agentCount + quietCluster.members.length) * (1000 / options.heartbeatMs);
    const stalls = pauses(scrapedAfter);
    const assignAfter = coordinatorAssignSeconds(scrapedAfter);
    const memory = heapFigures(scrapedAfter);

    // Listing every member is measured after, not during, the assignment window: what a listing
    // costs the event loop is a figure of its own, not a hidden part of the round trips above.
    const listing: number[] = [];
    const summaries: number[] = [];
    for (let i = 0; i < 20; i++) {
      listing.push(await timed(`${url}/v1/nodes`));
      summaries.push(await timed(`${url}/v1/clusters`));
      peakRssMb = Math.max(peakRssMb, processUsage(coordinator.pid).rssMb);
      await new Promise((r) => setTimeout(r, 250));
    }
    if (heapDir) {
      // A heap snapshot stops the coordinator for a while: it is taken once everything was measured.
      process.kill(coordinator.pid, "SIGUSR2");
      await new Promise((r) => setTimeout(r, 30_000));
    }
    emit({
      bench: "scale",
      agents: agentCount,
      clusters,
      membersPerCluster: options.perCluster,
      heartbeatIntervalMs: options.heartbeatMs,
      specApplyMs: round(specApplyMs),
      formationMs: round(formationMs),
      membersFormed: formed.clustered,
      heartbeatsPerSecond: round(heartbeatsPerSecond),
      heartbeatsExpectedPerSecond: heartbeatsExpected,
      heartbeatBacklogDrainMs: round(backlogDrainMs),
      heartbeatBacklogMax: backlogMax,
      assignmentPulls: quietPulls.pulls,
      assignmentP50Ms: round(quietPulls.pullP50Ms, 2),
      assignmentP99Ms: round(quietPulls.pullP99Ms, 2),
      assignmentMaxMs: round(quietPulls.pullMaxMs, 2),
      fleetAssignmentPulls: steady.pulls,
      fleetAssignmentP50Ms: round(steady.pullP50Ms, 2),
      fleetAssignmentP99Ms: round(steady.pullP99Ms, 2),
      fleetAssignmentMaxMs: round(steady.pullMaxMs, 2),
      coordinatorAnswerP50UpToMs: bucketPercentile(assignBefore, assignAfter, 50),
      coordinatorAnswerP99UpToMs: bucketPercentile(assignBefore, assignAfter, 99),
      coordinatorRssMb: round(after.rssMb),
      coordinatorPeakRssMb: round(peakRssMb),
      coordinatorHeapUsedMb: memory.heapUsedMb,
      coordinatorHeapTotalMb: memory.heapTotalMb,
      coordinatorExternalMb: memory.externalMb,
      coordinatorCpuPercent: cpu(before, after),
      simulatorCpuPercent: cpu(simBefore, simAfter),
      natsCpuPercent: cpu(natsBefore, natsAfter),
      simulatorLoopDelayP99Ms: round(steady.loopDelayP99Ms, 1),
      simulatorLoopDelayMaxMs: round(steady.loopDelayMaxMs, 1),
      coordinatorEventLoopLagP99Ms: stalls.eventLoopLagP99Ms,
      coordinatorEventLoopLagMaxMs: stalls.eventLoopLagMaxMs,
      coordinatorGcSecondsSinceStart: stalls.gcSecondsByKind,
      metricsScrapeMs: round(metricsScrapeMs),
      listMembersP50Ms: round(percentile(listing, 50), 2),
      listMembersP99Ms: round(percentile(listing, 99), 2),
      listClustersP50Ms: round(percentile(summaries, 50), 2),
      targets: { heartbeatsPerSecond: heartbeatsExpected, assignmentP99Ms: 100, coordinatorRssMb: 500 },
      met: heartbeatsPerSecond >= heartbeatsExpected * 0.98 && quietPulls.pullP99Ms < 100 && peakRssMb < 500,
    });
  } finally {
    await Promise.all([stopSimulator(simulator), stopSimulator(quiet)]);
    await stopDaemon(coordinator, "SIGTERM", 10_000);
    await nats.stop();
  }
}

async function stopSimulator(simulator: ChildProcess): Promise<void> {
  if (simulator.exitCode !== null || simulator.signalCode !== null) return;
  const exited = new Promise((r) => simulator.once("exit", r));
  simulator.send({ type: "stop" });
  const timer = setTimeout(() => simulator.kill("SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}

runBenchmark(async () => {
  const sizes = arg("agents", "1000,5000").split(",").map(Number);
  for (const n of sizes) {
    await runSize(n, { perCluster: Number(arg("per-cluster", "50")), windowMs: Number(arg("window-ms", "20000")), heartbeatMs: Number(arg("heartbeat-ms", "1000")) });
  }
});
