/**
 * Scale benchmark: thousands of hosts, each running the shipped agent
 * (agent/agent.ts) with its own NATS credential against a simulated Incus
 * member (bench/simulator), on real nats-servers locked down as `incus-fleet
 * setup` writes them, with one coordinator process (or two sharing the
 * fleet), heartbeats at 1 Hz and clusters of 50 members.
 *
 *   node dist/bench/scale.js --agents 1000,5000 [--coordinators 2] [--heartbeat-ms 1000] [--window-ms 20000] [--settle-ms 0] [--simulator-nice 10]
 *
 * Prints one JSON line per size: heartbeats processed per second against
 * those sent and those expected, assignment round trips (p50/p99) timed by
 * the agents of one more, small cluster run in a quiet process of their own
 * (and as the fleet's agents saw them, and by the coordinator's own
 * histogram), time to form every cluster, each coordinator's resident memory
 * and CPU time per heartbeat, the same for a raw receiver (bench/raw-receiver:
 * every heartbeat received and opened, nothing more) as the floor of that
 * figure, each simulator process's CPU and memory, and the latency of the
 * API calls listing every member, measured after the window. With two
 * coordinators, one more line: one of them is killed (SIGKILL) and the time
 * until the other owns every cluster is measured.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { hostCredentials } from "../coordinator/setup/setup.js";
import { COORDINATOR_ENV, COORDINATOR_NODE_FLAGS } from "../coordinator/node-flags.js";
import { freePort, startSecureNats, type SecureNats } from "../lab/nats-server.js";
import { startDaemon, stopDaemon, systemEnv, waitFor, type Daemon } from "../lab/processes.js";
import { arg, emit, maxOf, percentile, round, runBenchmark } from "./results.js";
import type { RawReceiverPlan, RawReceiverStats } from "./raw-receiver/main.js";
import type { SimulatedHost, SimulatorPlan, SimulatorStats } from "./simulator/main.js";

const COORDINATOR = fileURLToPath(new URL("../coordinator/main.js", import.meta.url));
const SIMULATOR = fileURLToPath(new URL("./simulator/main.js", import.meta.url));
const RAW_RECEIVER = fileURLToPath(new URL("./raw-receiver/main.js", import.meta.url));

interface Options {
  perCluster: number;
  windowMs: number;
  /** How long the fleet runs after it has formed (and the heartbeat backlog drained) before the window opens. */
  settleMs: number;
  heartbeatMs: number;
  coordinators: number;
  agentsPerSimulator: number;
  quietMembers: number;
  quietPullMs: number;
  joinMs: number;
  formationTimeoutMs: number;
  agentLogLevel: string;
  profile: string;
  simulatorProfile: string;
  simulatorNice: number;
  heapDir: string;
  v8Flags: string[];
  keep: boolean;
}

interface PlannedCluster {
  name: string;
  password: string;
  members: { name: string; address: string }[];
}

/** Open files a simulated host may need at once: its NATS connection, its simulated Incus's listener, and both ends of up to four keep-alive sockets. */
const FILES_PER_AGENT = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident memory now and at its peak, and CPU seconds, of a process, from /proc. */
function processUsage(pid: number): { rssMb: number; peakRssMb: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { rssMb: kb("VmRSS"), peakRssMb: kb("VmHWM"), cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100 };
}

/** Percent of one core a process used between two readings. */
const cpuPercent = (a: { cpuSeconds: number }, b: { cpuSeconds: number }, ms: number) => round(((b.cpuSeconds - a.cpuSeconds) * 100_000) / ms);

/** The coordinator's own record of event-loop stalls and garbage-collection pauses (prom-client defaults). */
function pauses(text: string): { eventLoopLagP99Ms: number; eventLoopLagMaxMs: number; gcSecondsByKind: Record<string, number> } {
  const gauge = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text)?.[1] ?? NaN) * 1000;
  const gcSecondsByKind: Record<string, number> = {};
  for (const m of text.matchAll(/^fleet_coordinator_nodejs_gc_duration_seconds_sum\{kind="(\w+)"\} ([0-9.e+-]+)$/gm)) gcSecondsByKind[m[1]!] = round(Number(m[2]), 3);
  return { eventLoopLagP99Ms: round(gauge("fleet_coordinator_nodejs_eventloop_lag_p99_seconds")), eventLoopLagMaxMs: round(gauge("fleet_coordinator_nodejs_eventloop_lag_max_seconds")), gcSecondsByKind };
}

interface Histogram {
  buckets: [number, number][];
  count: number;
}

/** The coordinator's own histogram of how long it took to answer assignment pulls. */
function coordinatorAssignSeconds(text: string): Histogram {
  const buckets = [...text.matchAll(/^fleet_nats_request_duration_seconds_bucket\{le="([^"]+)",endpoint="assign"\} (\d+)$/gm)].map((m): [number, number] => [m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2])]);
  const count = Number(/^fleet_nats_request_duration_seconds_count\{endpoint="assign"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  return { buckets, count };
}

/** The upper bound of the bucket a percentile falls in, over what was observed between two scrapes. */
function bucketPercentile(before: Histogram, after: Histogram, p: number): number | null {
  const total = after.count - before.count;
  if (total === 0) return null;
  const wanted = (p / 100) * total;
  for (const [i, [le, n]] of after.buckets.entries()) if (n - (before.buckets[i]?.[1] ?? 0) >= wanted) return le * 1000;
  return null;
}

/** The coordinator's V8 heap and the memory held outside it, from prom-client's process metrics. */
function heapFigures(text: string): { heapUsedMb: number; heapTotalMb: number; externalMb: number } {
  const mb = (name: string) => round(Number(new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text)?.[1] ?? NaN) / 2 ** 20);
  return { heapUsedMb: mb("fleet_coordinator_nodejs_heap_size_used_bytes"), heapTotalMb: mb("fleet_coordinator_nodejs_heap_size_total_bytes"), externalMb: mb("fleet_coordinator_nodejs_external_memory_bytes") };
}

function heartbeatsProcessed(text: string): number {
  const m = /^fleet_nats_messages_total\{endpoint="heartbeat",result="ok"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** One coordinator process, started as the lab starts one: its own credential, the set-up's signing key and API token. */
class CoordinatorProcess {
  name = "";

  private constructor(
    readonly index: number,
    readonly url: string,
    readonly daemon: Daemon,
    private readonly token: string,
  ) {}

  static async start(nats: SecureNats, index: number, dir: string, options: Options): Promise<CoordinatorProcess> {
    const credentials = nats.setup.coordinators[index - 1]!;
    const port = await freePort();
    const profile = options.profile ? ["--cpu-prof", `--cpu-prof-dir=${options.profile}`] : [];
    const heap = options.heapDir && index === 1 ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${options.heapDir}`] : [];
    const daemon = startDaemon(process.execPath, [...options.v8Flags, ...profile, ...heap, COORDINATOR], {
      env: systemEnv({
        ...COORDINATOR_ENV,
        FLEET_NATS_SERVERS: nats.urls.join(","),
        FLEET_NATS_NKEY_FILE: credentials.nkeyFile,
        FLEET_SIGNING_KEY_FILE: credentials.signingKeyFile,
        FLEET_API_TOKEN_FILE: nats.setup.apiTokenFile,
        FLEET_HTTP_HOST: "127.0.0.1",
        FLEET_HTTP_PORT: String(port),
        FLEET_HEARTBEAT_INTERVAL_MS: String(options.heartbeatMs),
        FLEET_LOG_LEVEL: "warn",
      }),
      log: join(dir, `coordinator-${index}.log`),
    });
    const c = new CoordinatorProcess(index, `http://127.0.0.1:${port}`, daemon, readFileSync(nats.setup.apiTokenFile, "utf8").trim());
    await waitFor(`coordinator ${index} to answer`, async () => (await fetch(`${c.url}/v1/health`)).ok, 30_000, 50);
    c.name = (await c.health()).coordinator.name;
    return c;
  }

  async api<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${this.token}` } });
    if (!res.ok) throw new Error(`coordinator ${this.index}: ${init.method ?? "GET"} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  async health(): Promise<{ coordinator: { name: string; owns: number }; nats: { heartbeatBacklog: number } }> {
    return (await fetch(`${this.url}/v1/health`)).json() as never;
  }

  /** The Prometheus text: a scrape at each end of the window, every figure read from it. */
  async scrape(): Promise<string> {
    return (await fetch(`${this.url}/metrics`)).text();
  }

  /** An API call's latency, the whole answer read. */
  async timed(path: string): Promise<number> {
    const started = performance.now();
    await this.api(path);
    return performance.now() - started;
  }

  get alive(): boolean {
    return this.daemon.child.exitCode === null && this.daemon.child.signalCode === null;
  }
}

/** Simulated sockets' directories of simulators not seen to exit yet: removed however the benchmark ends, Ctrl-C included. */
const simulatorDirs = new Set<string>();
process.on("exit", () => {
  for (const dir of simulatorDirs) rmSync(dir, { recursive: true, force: true });
});

/** A child process of the benchmark, driven over its IPC channel. */
class BenchChild {
  protected constructor(readonly child: ChildProcess) {}

  get pid(): number {
    return this.child.pid!;
  }

  ask<T>(request: unknown, reply: string): Promise<T> {
    const child = this.child;
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`a child process exited (${code}) while the benchmark waited for '${reply}'`));
      const onMessage = (m: { type: string; error?: string }) => {
        if (m.type === reply) {
          child.off("message", onMessage);
          child.off("exit", onExit);
          resolve(m as T);
        } else if (m.type === "error") reject(new Error(`a child process failed: ${m.error}`));
      };
      child.on("message", onMessage);
      child.once("exit", onExit);
      if (request) child.send(request as object);
    });
  }

  send(request: unknown): void {
    this.child.send(request as object);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.send({ type: "stop" });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

/** A simulator process and what it hosts. */
class SimulatorProcess extends BenchChild {
  private constructor(
    child: ChildProcess,
    readonly role: "fleet" | "quiet",
    readonly hosts: number,
  ) {
    super(child);
  }

  static fork(role: "fleet" | "quiet", hosts: number, profileDir: string, nice = 0): SimulatorProcess {
    const execArgv = [...(role === "fleet" ? ["--max-old-space-size=4096"] : []), ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [])];
    // Its simulated sockets' directory is removed once it has exited, even when it was killed.
    const dir = mkdtempSync(join(tmpdir(), "fleet-sim-"));
    // Its stdout is left out: the benchmark's own stdout carries the results, one JSON line each.
    const child = fork(SIMULATOR, [dir], { stdio: ["ignore", "ignore", "inherit", "ipc"], execArgv });
    if (nice !== 0) setPriority(child.pid!, nice);
    simulatorDirs.add(dir);
    child.once("exit", () => {
      rmSync(dir, { recursive: true, force: true });
      simulatorDirs.delete(dir);
    });
    return new SimulatorProcess(child, role, hosts);
  }
}

/** The raw receiver (bench/raw-receiver): the same-run floor of what taking in a heartbeat costs. */
class RawReceiverProcess extends BenchChild {
  static async start(plan: RawReceiverPlan): Promise<RawReceiverProcess> {
    const receiver = new RawReceiverProcess(fork(RAW_RECEIVER, [], { stdio: ["ignore", "ignore", "inherit", "ipc"] }));
    await receiver.ask(null, "ready");
    await receiver.ask({ type: "start", plan }, "started");
    return receiver;
  }

  async opened(): Promise<number> {
    return (await this.ask<RawReceiverStats>({ type: "stats" }, "stats")).opened;
  }
}

/** Whole clusters per simulator process: a simulated cluster's members share its state in one process's memory. */
function partition(clusters: PlannedCluster[], perProcess: number): PlannedCluster[][] {
  const groups: PlannedCluster[][] = [];
  let current: PlannedCluster[] = [];
  let size = 0;
  for (const c of clusters) {
    if (current.length > 0 && size + c.members.length > perProcess) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(c);
    size += c.members.length;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

function simulatedHosts(nats: SecureNats, clusters: PlannedCluster[]): SimulatedHost[] {
  return clusters.flatMap((c) =>
    c.members.map((m) => {
      const credentials = hostCredentials(nats.setup, c.name, m.name);
      return { cluster: c.name, node: m.name, address: m.address, password: c.password, nkeyFile: credentials.nkeyFile, coordinatorKeyFile: credentials.coordinatorKeyFile };
    }),
  );
}

interface CoordinatorWindow {
  index: number;
  name: string;
  owns: number;
  heartbeatsPerSecond: number;
  cpuPercent: number;
  cpuPerHeartbeatUs: number | null;
  rssMb: number;
  peakRssMb: number;
  heartbeatBacklogMax: number;
  assignAnswerP50UpToMs: number | null;
  assignAnswerP99UpToMs: number | null;
  eventLoopLagP99Ms: number;
  eventLoopLagMaxMs: number;
  gcSecondsSinceStart: Record<string, number>;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
}

/**
 * Measures a window of steady state on each coordinator: heartbeats
 * processed (scrapes at both ends, outside the window so that the
 * benchmark's own scrapes do not count), CPU time from /proc, memory, the
 * heartbeat backlog, and what the simulators' agents saw meanwhile.
 */
async function measureWindow(coordinators: CoordinatorProcess[], simulators: SimulatorProcess[], receiver: RawReceiverProcess, natsPid: number, windowMs: number) {
  const scrapedBefore = await Promise.all(coordinators.map((c) => c.scrape()));
  const beatsCountedAt = performance.now();
  await sleep(1_000);
  for (const s of simulators) s.send({ type: "reset-stats" });
  const cpuBefore = coordinators.map((c) => processUsage(c.daemon.pid));
  const simBefore = simulators.map((s) => processUsage(s.pid));
  const natsBefore = processUsage(natsPid);
  const [receiverBefore, openedBefore] = [processUsage(receiver.pid), await receiver.opened()];
  const backlogMax = coordinators.map(() => 0);
  const windowStarted = performance.now();
  while (performance.now() - windowStarted < windowMs) {
    const health = await Promise.all(coordinators.map((c) => c.health()));
    for (const [i, h] of health.entries()) backlogMax[i] = Math.max(backlogMax[i]!, h.nats.heartbeatBacklog);
    await sleep(250);
  }
  const stats = await Promise.all(simulators.map((s) => s.ask<SimulatorStats>({ type: "stats" }, "stats")));
  const elapsedMs = performance.now() - windowStarted;
  const cpuAfter = coordinators.map((c) => processUsage(c.daemon.pid));
  const simAfter = simulators.map((s) => processUsage(s.pid));
  const natsAfter = processUsage(natsPid);
  const [receiverAfter, openedAfter] = [processUsage(receiver.pid), await receiver.opened()];
  const scrapedAfter = await Promise.all(coordinators.map((c) => c.scrape()));
  const beatsMs = performance.now() - beatsCountedAt;
  const health = await Promise.all(coordinators.map((c) => c.health()));
  const perCoordinator: CoordinatorWindow[] = coordinators.map((c, i) => {
    const beatsPerSecond = ((heartbeatsProcessed(scrapedAfter[i]!) - heartbeatsProcessed(scrapedBefore[i]!)) * 1000) / beatsMs;
    const cpuPerSecond = (cpuAfter[i]!.cpuSeconds - cpuBefore[i]!.cpuSeconds) / (elapsedMs / 1000);
    const stalls = pauses(scrapedAfter[i]!);
    const heap = heapFigures(scrapedAfter[i]!);
    const assignBefore = coordinatorAssignSeconds(scrapedBefore[i]!);
    const assignAfter = coordinatorAssignSeconds(scrapedAfter[i]!);
    return {
      index: c.index,
      name: c.name,
      owns: health[i]!.coordinator.owns,
      heartbeatsPerSecond: round(beatsPerSecond),
      cpuPercent: cpuPercent(cpuBefore[i]!, cpuAfter[i]!, elapsedMs),
      // Everything the coordinator did in the window, pulls and leases included, shared out over the heartbeats.
      cpuPerHeartbeatUs: beatsPerSecond > 0 ? round((cpuPerSecond / beatsPerSecond) * 1e6) : null,
      rssMb: round(cpuAfter[i]!.rssMb),
      peakRssMb: round(cpuAfter[i]!.peakRssMb),
      heartbeatBacklogMax: backlogMax[i]!,
      assignAnswerP50UpToMs: bucketPercentile(assignBefore, assignAfter, 50),
      assignAnswerP99UpToMs: bucketPercentile(assignBefore, assignAfter, 99),
      eventLoopLagP99Ms: stalls.eventLoopLagP99Ms,
      eventLoopLagMaxMs: stalls.eventLoopLagMaxMs,
      gcSecondsSinceStart: stalls.gcSecondsByKind,
      ...heap,
    };
  });
  const simulatorFigures = simulators.map((s, i) => ({
    role: s.role,
    agents: stats[i]!.agents,
    cpuPercent: cpuPercent(simBefore[i]!, simAfter[i]!, elapsedMs),
    rssMb: round(simAfter[i]!.rssMb),
    loopDelayP99Ms: round(stats[i]!.loopDelayP99Ms, 1),
    loopDelayMaxMs: round(stats[i]!.loopDelayMaxMs, 1),
  }));
  const opened = openedAfter - openedBefore;
  const rawReceiver = {
    heartbeatsPerSecond: round((opened * 1000) / elapsedMs),
    cpuPercent: cpuPercent(receiverBefore, receiverAfter, elapsedMs),
    cpuPerHeartbeatUs: opened > 0 ? round(((receiverAfter.cpuSeconds - receiverBefore.cpuSeconds) / opened) * 1e6) : null,
  };
  return { perCoordinator, stats, simulatorFigures, rawReceiver, natsCpuPercent: cpuPercent(natsBefore, natsAfter, elapsedMs) };
}

/** The highest of figures some of which may be missing (a coordinator that answered no pull in the window). */
function worst(values: (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? Math.max(...known) : null;
}

/** Assignment round trips as the agents of some simulators saw them. */
function pullFigures(stats: SimulatorStats[]): { pulls: number; p50Ms: number; p99Ms: number; maxMs: number } {
  const rtts = stats.flatMap((s) => s.pullRttsMs);
  return { pulls: rtts.length, p50Ms: round(percentile(rtts, 50), 2), p99Ms: round(percentile(rtts, 99), 2), maxMs: round(rtts.length ? maxOf(rtts) : NaN, 2) };
}

async function runSize(agentCount: number, options: Options): Promise<void> {
  const clusterCount = Math.ceil(agentCount / options.perCluster);
  const clusters: PlannedCluster[] = Array.from({ length: clusterCount }, (_, c) => ({
    name: `sim${c}`,
    password: `simulated-cluster-${c}-password`,
    members: Array.from({ length: Math.min(options.perCluster, agentCount - c * options.perCluster) }, (_, i) => {
      const n = c * options.perCluster + i;
      // Documentation addresses: the simulated cluster network answers for them, nothing else does.
      return { name: `m${i}`, address: `198.51.100.${(n % 250) + 1}:${10_000 + Math.floor(n / 250)}` };
    }),
  }));
  const quiet: PlannedCluster = {
    name: "quiet",
    password: "quiet-cluster-password",
    members: Array.from({ length: options.quietMembers }, (_, i) => ({ name: `q${i}`, address: `203.0.113.${i + 1}:8443` })),
  };
  const everyCluster = [...clusters, quiet];
  const dir = mkdtempSync(join(tmpdir(), "fleet-scale-"));
  const interrupted = () => process.stderr.write(`scale: interrupted; logs kept in ${dir}\n`);
  process.once("exit", interrupted);
  let failed = true;
  const setupStarted = performance.now();
  const nats = await startSecureNats({
    hosts: everyCluster.flatMap((c) => c.members.map((m) => ({ cluster: c.name, node: m.name, address: m.address }))),
    // One credential more than there are coordinators: the raw receiver's.
    coordinators: options.coordinators + 1,
    dir: join(dir, "nats"),
  });
  const setupMs = performance.now() - setupStarted;
  const coordinators: CoordinatorProcess[] = [];
  const simulators: SimulatorProcess[] = [];
  let receiver: RawReceiverProcess | null = null;
  try {
    for (let i = 1; i <= options.coordinators; i++) coordinators.push(await CoordinatorProcess.start(nats, i, dir, options));
    const first = coordinators[0]!;
    receiver = await RawReceiverProcess.start({
      natsServers: nats.urls,
      nkeyFile: nats.setup.coordinators[options.coordinators]!.nkeyFile,
      clusters: everyCluster.map((c) => ({ name: c.name, password: c.password })),
    });
    // The fleet in processes of a bounded size, and apart from it a quiet process running the agents of one small
    // cluster that pull often: their round trips are not stretched by a fleet simulator's busy event loop.
    const groups = partition(clusters, options.agentsPerSimulator);
    // The fleet's simulators stand in for thousands of machines of their own: on this one they yield the CPU to the
    // coordinator under test, nats-server and the quiet process that times the round trips.
    const fleet = groups.map((g) => SimulatorProcess.fork("fleet", g.reduce((n, c) => n + c.members.length, 0), options.simulatorProfile, options.simulatorNice));
    const quietSimulator = SimulatorProcess.fork("quiet", quiet.members.length, "");
    simulators.push(...fleet, quietSimulator);
    await Promise.all(simulators.map((s) => s.ask(null, "ready")));
    const plan = (hosts: PlannedCluster[], pullIntervalMs: number | undefined, name: string): SimulatorPlan => ({
      natsServers: nats.urls,
      hosts: simulatedHosts(nats, hosts),
      heartbeatMs: options.heartbeatMs,
      pullIntervalMs,
      joinMs: options.joinMs,
      logLevel: options.agentLogLevel,
      logFile: join(dir, `agents-${name}.log`),
      connectConcurrency: 32,
    });
    const connectStarted = performance.now();
    await Promise.all([
      // Members pull at the agent's default interval, and when nudged.
      ...fleet.map((s, i) => s.ask({ type: "start", plan: plan(groups[i]!, undefined, `fleet-${i + 1}`) }, "started")),
      // At most five messages a second per agent are let through; with heartbeats and clock readings, a pull every 300 ms stays under that.
      quietSimulator.ask({ type: "start", plan: plan([quiet], options.quietPullMs, "quiet") }, "started"),
    ]);
    const connectMs = performance.now() - connectStarted;

    const specStarted = performance.now();
    const spec = toYaml({ clusters: Object.fromEntries(everyCluster.map((c) => [c.name, { cluster_password: c.password, members: Object.fromEntries(c.members.map((m) => [m.name, { address: m.address }])) }])) });
    await first.api("/v1/spec", { method: "PUT", headers: { "content-type": "application/yaml" }, body: spec });
    const specApplyMs = performance.now() - specStarted;
    let lastProgress = 0;
    await waitFor(
      `${everyCluster.length} clusters formed`,
      async () => {
        const summaries = await first.api<{ phase: string }[]>("/v1/clusters");
        const ready = summaries.filter((c) => c.phase === "ready").length;
        if (performance.now() - lastProgress > 10_000) {
          lastProgress = performance.now();
          process.stderr.write(`scale: ${agentCount} agents: ${ready} of ${everyCluster.length} clusters ready after ${round((performance.now() - specStarted) / 1000)} s\n`);
        }
        return ready === everyCluster.length;
      },
      options.formationTimeoutMs,
      250,
    );
    const formationMs = performance.now() - specStarted;
    const formed = await Promise.all(simulators.map((s) => s.ask<SimulatorStats>({ type: "stats" }, "stats")));

    // Steady state: every agent a member, heartbeating, pulling at its idle interval, and the heartbeats queued while
    // the clusters formed all processed.
    await sleep(5_000);
    const drainStarted = performance.now();
    await waitFor("the heartbeat backlog to drain", async () => (await Promise.all(coordinators.map((c) => c.health()))).every((h) => h.nats.heartbeatBacklog < 100), 300_000, 250);
    const backlogDrainMs = performance.now() - drainStarted;
    const metricsScrapeMs = await (async () => {
      const started = performance.now();
      await first.scrape();
      return performance.now() - started;
    })();

    await sleep(options.settleMs);
    const window = await measureWindow(coordinators, simulators, receiver, nats.servers[0]!.daemon.pid, options.windowMs);
    const fleetStats = window.stats.slice(0, fleet.length);
    const quietStats = window.stats[fleet.length]!;
    const fleetPulls = pullFigures(fleetStats);
    const quietPulls = pullFigures([quietStats]);
    const sent = window.stats.reduce((n, s) => n + s.heartbeatsSent, 0);
    const sentPerSecond = window.stats.reduce((r, s) => r + (s.heartbeatsSent * 1000) / s.sinceResetMs, 0);
    const processedPerSecond = window.perCoordinator.reduce((r, c) => r + c.heartbeatsPerSecond, 0);
    const expectedPerSecond = (agentCount + quiet.members.length) * (1000 / options.heartbeatMs);
    const cpuPerSecond = window.perCoordinator.reduce((r, c) => r + c.cpuPercent / 100, 0);
    const cpuPerHeartbeatUs = processedPerSecond > 0 ? round((cpuPerSecond / processedPerSecond) * 1e6) : null;
    const peakRssMb = Math.max(...window.perCoordinator.map((c) => c.peakRssMb));

    // Listing every member is measured after, not during, the window: what a listing
    // costs the event loop is a figure of its own, not a hidden part of the round trips above.
    const listing: number[] = [];
    const summaries: number[] = [];
    for (let i = 0; i < 20; i++) {
      listing.push(await first.timed("/v1/nodes"));
      summaries.push(await first.timed("/v1/clusters"));
      await sleep(250);
    }
    const peakAfterListing = Math.max(...coordinators.map((c) => processUsage(c.daemon.pid).peakRssMb));
    if (options.heapDir) {
      // A heap snapshot stops the coordinator for a while: it is taken once everything was measured.
      process.kill(first.daemon.pid, "SIGUSR2");
      await sleep(30_000);
    }
    const targets = { heartbeatsProcessedOfExpected: 0.99, assignmentP99Ms: 100, coordinatorPeakRssMb: 500, coordinatorCpuPerHeartbeatUs: 50 };
    const missed = [
      ...(processedPerSecond >= expectedPerSecond * targets.heartbeatsProcessedOfExpected ? [] : ["heartbeatsProcessedOfExpected"]),
      ...(quietPulls.p99Ms < targets.assignmentP99Ms ? [] : ["assignmentP99Ms"]),
      ...(Math.max(peakRssMb, peakAfterListing) < targets.coordinatorPeakRssMb ? [] : ["coordinatorPeakRssMb"]),
      ...(cpuPerHeartbeatUs !== null && cpuPerHeartbeatUs <= targets.coordinatorCpuPerHeartbeatUs ? [] : ["coordinatorCpuPerHeartbeatUs"]),
    ];
    emit({
      bench: "scale",
      agents: agentCount,
      clusters: clusterCount,
      membersPerCluster: options.perCluster,
      coordinators: options.coordinators,
      heartbeatIntervalMs: options.heartbeatMs,
      simulatorNice: options.simulatorNice,
      windowMs: options.windowMs,
      setupMs: round(setupMs),
      agentsConnectMs: round(connectMs),
      specApplyMs: round(specApplyMs),
      formationMs: round(formationMs),
      membersFormed: formed.slice(0, fleet.length).reduce((n, s) => n + s.clustered, 0),
      heartbeatsPerSecond: round(processedPerSecond),
      heartbeatsSentPerSecond: round(sentPerSecond),
      heartbeatsExpectedPerSecond: expectedPerSecond,
      heartbeatsProcessedOfSent: sent > 0 ? round(processedPerSecond / sentPerSecond, 4) : null,
      heartbeatsProcessedOfExpected: round(processedPerSecond / expectedPerSecond, 4),
      heartbeatBacklogDrainMs: round(backlogDrainMs),
      heartbeatBacklogMax: Math.max(...window.perCoordinator.map((c) => c.heartbeatBacklogMax)),
      assignmentPulls: quietPulls.pulls,
      assignmentP50Ms: quietPulls.p50Ms,
      assignmentP99Ms: quietPulls.p99Ms,
      assignmentMaxMs: quietPulls.maxMs,
      fleetAssignmentPulls: fleetPulls.pulls,
      fleetAssignmentP50Ms: fleetPulls.p50Ms,
      fleetAssignmentP99Ms: fleetPulls.p99Ms,
      fleetAssignmentMaxMs: fleetPulls.maxMs,
      coordinatorAnswerP50UpToMs: worst(window.perCoordinator.map((c) => c.assignAnswerP50UpToMs)),
      coordinatorAnswerP99UpToMs: worst(window.perCoordinator.map((c) => c.assignAnswerP99UpToMs)),
      coordinatorCpuPerHeartbeatUs: cpuPerHeartbeatUs,
      rawReceiverCpuPerHeartbeatUs: window.rawReceiver.cpuPerHeartbeatUs,
      coordinatorCpuOfRawReceiver: cpuPerHeartbeatUs !== null && window.rawReceiver.cpuPerHeartbeatUs ? round(cpuPerHeartbeatUs / window.rawReceiver.cpuPerHeartbeatUs, 2) : null,
      rawReceiver: window.rawReceiver,
      coordinatorRssMb: Math.max(...window.perCoordinator.map((c) => c.rssMb)),
      coordinatorPeakRssMb: round(Math.max(peakRssMb, peakAfterListing)),
      perCoordinator: window.perCoordinator,
      simulators: window.simulatorFigures,
      simulatorCpuPercent: round(window.simulatorFigures.reduce((n, s) => n + s.cpuPercent, 0)),
      simulatorRssMb: round(window.simulatorFigures.reduce((n, s) => n + s.rssMb, 0)),
      natsCpuPercent: window.natsCpuPercent,
      agentDroppedMessages: window.stats.reduce((n, s) => n + s.droppedMessages, 0),
      metricsScrapeMs: round(metricsScrapeMs),
      listMembersP50Ms: round(percentile(listing, 50), 2),
      listMembersP99Ms: round(percentile(listing, 99), 2),
      listClustersP50Ms: round(percentile(summaries, 50), 2),
      targets,
      met: missed.length === 0,
      missed,
    });
    if (options.coordinators > 1) await failover(coordinators, everyCluster.map((c) => c.name), agentCount, expectedPerSecond, options);
    failed = false;
  } finally {
    await Promise.all(simulators.map((s) => s.stop()));
    await receiver?.stop();
    for (const c of coordinators) await stopDaemon(c.daemon, "SIGTERM", 10_000);
    await nats.stop();
    process.off("exit", interrupted);
    if (failed || options.keep) process.stderr.write(`scale: logs kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Kills the coordinator that owns the most clusters (SIGKILL: its leases are
 * not handed back, they lapse) and times how long until the survivor owns
 * every cluster, watching the ownerless clusters meanwhile; then checks
 * that every cluster has an owner and the agents' heartbeats reach it.
 */
async function failover(coordinators: CoordinatorProcess[], clusterNames: string[], agents: number, expectedPerSecond: number, options: Options): Promise<void> {
  const listed = await coordinators[0]!.api<{ name: string; owns: string[] }[]>("/v1/coordinators");
  const owned = (c: CoordinatorProcess) => listed.find((x) => x.name === c.name)?.owns.length ?? 0;
  const victim = [...coordinators].sort((a, b) => owned(b) - owned(a))[0]!;
  const survivor = coordinators.find((c) => c !== victim && c.alive)!;
  const killedOwned = owned(victim);
  const killedAt = performance.now();
  process.kill(victim.daemon.pid, "SIGKILL");
  await victim.daemon.exited;
  let ownerlessAtMost = 0;
  await waitFor(
    `${survivor.name} to own every cluster`,
    async () => {
      const [live, summaries] = await Promise.all([survivor.api<{ name: string; owns: string[] }[]>("/v1/coordinators"), survivor.api<{ owner: string | null }[]>("/v1/clusters")]);
      ownerlessAtMost = Math.max(ownerlessAtMost, summaries.filter((c) => c.owner === null).length);
      const own = live.find((x) => x.name === survivor.name)?.owns ?? [];
      return clusterNames.every((n) => own.includes(n));
    },
    60_000,
    100,
  );
  const takeoverMs = performance.now() - killedAt;
  const summaries = await survivor.api<{ name: string; owner: string | null; phase: string }[]>("/v1/clusters");
  // The agents go on with the survivor without enrolling again: their heartbeats after the takeover show it.
  await sleep(3_000);
  const [before, cpuBefore] = [await survivor.scrape(), processUsage(survivor.daemon.pid)];
  const started = performance.now();
  await sleep(Math.min(options.windowMs, 5_000));
  const [after, cpuAfter] = [await survivor.scrape(), processUsage(survivor.daemon.pid)];
  const elapsedMs = performance.now() - started;
  const beatsPerSecond = ((heartbeatsProcessed(after) - heartbeatsProcessed(before)) * 1000) / elapsedMs;
  emit({
    bench: "scale-failover",
    agents,
    clusters: clusterNames.length,
    coordinators: coordinators.length,
    killed: victim.name,
    killedOwned,
    survivor: survivor.name,
    takeoverMs: round(takeoverMs),
    ownerlessAtMost,
    clustersWithoutOwner: summaries.filter((c) => c.owner === null).length,
    clustersOwnedByOthers: summaries.filter((c) => c.owner !== null && c.owner !== survivor.name).length,
    clustersNotReady: summaries.filter((c) => c.phase !== "ready").length,
    heartbeatsPerSecondAfterTakeover: round(beatsPerSecond),
    heartbeatsExpectedPerSecond: expectedPerSecond,
    survivorCpuPerHeartbeatUs: beatsPerSecond > 0 ? round(((cpuAfter.cpuSeconds - cpuBefore.cpuSeconds) / (elapsedMs / 1000) / beatsPerSecond) * 1e6) : null,
    survivorRssMb: round(cpuAfter.rssMb),
    survivorPeakRssMb: round(cpuAfter.peakRssMb),
  });
}

runBenchmark(async () => {
  const options: Options = {
    perCluster: Number(arg("per-cluster", "50")),
    windowMs: Number(arg("window-ms", "20000")),
    settleMs: Number(arg("settle-ms", "0")),
    heartbeatMs: Number(arg("heartbeat-ms", "1000")),
    coordinators: Number(arg("coordinators", "1")),
    agentsPerSimulator: Number(arg("agents-per-simulator", "1000")),
    quietMembers: Number(arg("quiet-members", "10")),
    quietPullMs: Number(arg("quiet-pull-ms", "300")),
    joinMs: Number(arg("join-ms", "5")),
    formationTimeoutMs: Number(arg("formation-timeout-ms", "600000")),
    agentLogLevel: arg("agent-log-level", "warn"),
    profile: arg("profile", ""),
    simulatorProfile: arg("simulator-profile", ""),
    simulatorNice: Number(arg("simulator-nice", "10")),
    heapDir: arg("heap-snapshot", ""),
    v8Flags: arg("v8-flags", COORDINATOR_NODE_FLAGS.join(" ")).split(" ").filter(Boolean),
    keep: process.argv.includes("--keep"),
  };
  if (options.coordinators < 1 || options.coordinators > 3) throw new Error("--coordinators: 1, 2 or 3");
  // An agent holds its NATS connection and a few keep-alive sockets to its simulated Incus, whose ends are in the same process.
  const openFiles = Number(/^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? Infinity);
  if (options.agentsPerSimulator * FILES_PER_AGENT > openFiles) {
    throw new Error(`--agents-per-simulator ${options.agentsPerSimulator} needs about ${options.agentsPerSimulator * FILES_PER_AGENT} open files per process, over the limit of ${openFiles}: lower it or raise the limit (ulimit -n)`);
  }
  for (const n of arg("agents", "1000,5000").split(",").map(Number)) await runSize(n, options);
});
