/**
 * SIMULATOR process for the scale benchmark: runs the shipped agent
 * (agent/agent.ts) for many hosts, each with its own NATS connection and
 * host credential, its configuration loaded as agent/main.ts loads it, and a
 * simulated Incus member on its own unix socket. Driven by bench/scale.ts
 * over the IPC channel.
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import pino from "pino";
import type { NatsConnection } from "@nats-io/transport-node";
import { FleetAgent } from "../../agent/agent.js";
import { loadAgentConfig } from "../../agent/config.js";
import { connectNats, createLogger, deriveClusterKeysAsync, verifyingKeyFromPem, type ClusterKeys } from "../../shared/index.js";
import { IncusSimulator, type SimulatedMember } from "./incus-simulator.js";

export interface SimulatedHost {
  cluster: string;
  node: string;
  address: string;
  password: string;
  /** The host's own NATS credential and copy of the coordinators' public key, as `incus-fleet setup` wrote them. */
  nkeyFile: string;
  coordinatorKeyFile: string;
}

export interface SimulatorPlan {
  natsServers: string[];
  hosts: SimulatedHost[];
  heartbeatMs: number;
  /** How often an agent that is a member pulls its assignment (the agent's pull.intervalMs); the agent's default when left out. */
  pullIntervalMs?: number;
  joinMs: number;
  logLevel: string;
  logFile: string;
  /** NATS connections opened at once while the agents start. */
  connectConcurrency: number;
}

export interface SimulatorStats {
  type: "stats";
  agents: number;
  enrolled: number;
  clustered: number;
  /** What each agent was told last, by kind. */
  assignments: Record<string, number>;
  droppedMessages: number;
  /** Round trips of assignment pulls the coordinator answered at once (milliseconds), since the last reset. */
  pullRttsMs: number[];
  heartbeatsSent: number;
  sinceResetMs: number;
  restRequests: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

type Request = { type: "start"; plan: SimulatorPlan } | { type: "reset-stats" } | { type: "stats" } | { type: "stop" };

// The benchmark makes this directory (for the simulated sockets) and removes it when this process has exited, however it ended.
const dir = process.argv[2]!;
let simulator: IncusSimulator | null = null;
const agents: FleetAgent[] = [];
const connections: NatsConnection[] = [];
let pullRtts: number[] = [];
let heartbeatsSent = 0;
let resetAt = performance.now();
const send = (message: unknown) => process.send?.(message);
// The simulator's own event loop delay bounds how precisely its agents time the coordinator's answers.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

/**
 * Times the agent's pulls and counts its heartbeats from outside: the
 * agent's own methods are wrapped on the instance, its code is untouched.
 * Pulls the coordinator may hold (a waiting agent's long poll) and
 * enrollments are not timed.
 */
function observe(agent: FleetAgent): void {
  const link = agent.link;
  const pull = link.pull.bind(link);
  link.pull = async (facts, preflight, waitMs = 0) => {
    const timed = link.isEnrolled && waitMs === 0;
    const started = performance.now();
    const assignment = await pull(facts, preflight, waitMs);
    if (timed) pullRtts.push(performance.now() - started);
    return assignment;
  };
  const publish = link.publishHeartbeat.bind(link);
  link.publishHeartbeat = (heartbeat) => {
    if (link.isEnrolled) heartbeatsSent += 1;
    publish(heartbeat);
  };
}

async function start(plan: SimulatorPlan): Promise<void> {
  const incus = new IncusSimulator({ dir, joinMs: plan.joinMs });
  simulator = incus;
  const log = createLogger({ name: "incus-fleet-agent", level: plan.logLevel, destination: pino.destination({ dest: plan.logFile, sync: false, mkdir: true }) });
  // Every host has its own copy of the key; they are all the same key.
  const coordinatorKey = verifyingKeyFromPem(readFileSync(plan.hosts[0]!.coordinatorKeyFile, "utf8"));
  // The cluster key is a deliberately slow derivation: once per cluster, not per host.
  const keys = new Map<string, Promise<ClusterKeys>>();
  const keysOf = (h: SimulatedHost) => {
    if (!keys.has(h.cluster)) keys.set(h.cluster, deriveClusterKeysAsync(h.cluster, h.password));
    return keys.get(h.cluster)!;
  };
  const members: SimulatedMember[] = [];
  for (const h of plan.hosts) members.push(await incus.addMember(h.node, h.address));
  let next = 0;
  const startOne = async (i: number) => {
    const h = plan.hosts[i]!;
    const config = loadAgentConfig([], {
      FLEET_NATS_SERVERS: plan.natsServers.join(","),
      FLEET_NATS_NKEY_FILE: h.nkeyFile,
      FLEET_COORDINATOR_KEY_FILE: h.coordinatorKeyFile,
      FLEET_CLUSTER: h.cluster,
      FLEET_CLUSTER_PASSWORD: h.password,
      FLEET_NODE_NAME: h.node,
      FLEET_NODE_ADDRESS: h.address,
      FLEET_INCUS_SOCKET: members[i]!.socketPath,
      FLEET_HEARTBEAT_INTERVAL_MS: String(plan.heartbeatMs),
      ...(plan.pullIntervalMs !== undefined ? { FLEET_PULL_INTERVAL_MS: String(plan.pullIntervalMs) } : {}),
      FLEET_LOG_LEVEL: plan.logLevel,
      // No package manager to ask and no host actions to run on a simulated host.
      FLEET_CANDIDATE_VERSION_COMMAND: "",
      FLEET_ACTION_RESTART_INCUS: "",
      FLEET_ACTION_UPGRADE_INCUS: "",
      FLEET_ACTION_REBOOT: "",
    });
    const agentLog = log.child({ cluster: h.cluster, node: h.node });
    const nc = await connectNats(config.nats, agentLog.child({ part: "nats" }));
    connections.push(nc);
    const agent = new FleetAgent(nc, config, coordinatorKey, agentLog, await keysOf(h), incus.network);
    observe(agent);
    agents.push(agent);
    agent.start();
  };
  await Promise.all(
    Array.from({ length: Math.min(plan.connectConcurrency, plan.hosts.length) }, async () => {
      while (next < plan.hosts.length) await startOne(next++);
    }),
  );
  send({ type: "started", agents: agents.length });
}

function stats(): SimulatorStats {
  const assignments: Record<string, number> = {};
  let enrolled = 0;
  let dropped = 0;
  for (const a of agents) {
    const s = a.status();
    const kind = s.lastAssignment?.kind ?? "none";
    assignments[kind] = (assignments[kind] ?? 0) + 1;
    if (s.enrolled) enrolled += 1;
    dropped += s.droppedMessages;
  }
  return {
    type: "stats",
    agents: agents.length,
    enrolled,
    clustered: simulator?.members.filter((m) => m.clustered).length ?? 0,
    assignments,
    droppedMessages: dropped,
    pullRttsMs: pullRtts,
    heartbeatsSent,
    sinceResetMs: performance.now() - resetAt,
    restRequests: simulator?.requests ?? 0,
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loopDelayMaxMs: loopDelay.max / 1e6,
  };
}

async function stop(): Promise<void> {
  const stopped = Promise.allSettled(agents.map((a) => a.stop()));
  // Closed connections end the requests still waiting for an answer, so the agents' loops end at once.
  await Promise.allSettled(connections.map((c) => c.close()));
  await Promise.race([stopped, new Promise((r) => setTimeout(r, 5_000))]);
  await simulator?.close();
}

process.on("message", (m: Request) => {
  if (m.type === "start") void start(m.plan).catch((err: unknown) => send({ type: "error", error: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
  else if (m.type === "reset-stats") {
    pullRtts = [];
    heartbeatsSent = 0;
    resetAt = performance.now();
    loopDelay.reset();
  } else if (m.type === "stats") send(stats());
  else if (m.type === "stop") {
    void stop().finally(() => process.exit(0));
  }
});
// Without the benchmark the simulator has no reason to live.
process.on("disconnect", () => process.exit(1));
send({ type: "ready" });
