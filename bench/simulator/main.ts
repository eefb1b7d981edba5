/**
 * SIMULATOR process for the scale benchmark: hosts many simulated agents,
 * each backed by a simulated Incus member on its own unix socket. Driven by
 * bench/scale.ts over the IPC channel.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { deriveClusterKeysAsync } from "../../shared/index.js";
import { maxOf, percentile } from "../results.js";
import { IncusSimulator } from "./incus-simulator.js";
import { SimulatedAgent } from "./simulated-agent.js";

export interface SimulatorPlan {
  nats: string;
  clusters: { name: string; password: string; members: { name: string; address: string }[] }[];
  heartbeatMs: number;
  pullIntervalMs: number;
  joinMs: number;
  connections: number;
}

type Request = { type: "start"; plan: SimulatorPlan } | { type: "reset-stats" } | { type: "stats" } | { type: "stop" };

const dir = mkdtempSync(join(tmpdir(), "fleet-sim-"));
const simulator = new IncusSimulator({ dir, joinMs: 5 });
const agents: SimulatedAgent[] = [];
const connections: NatsConnection[] = [];
const send = (message: unknown) => process.send?.(message);
// The simulator's own event loop delay bounds how precisely it can time the coordinator's answers.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

async function start(plan: SimulatorPlan): Promise<void> {
  Object.assign(simulator, { options: { dir, joinMs: plan.joinMs } });
  for (let i = 0; i < plan.connections; i++) connections.push(await connect({ servers: plan.nats, name: `simulator ${i}`, maxReconnectAttempts: -1 }));
  const keys = await Promise.all(plan.clusters.map((c) => deriveClusterKeysAsync(c.name, c.password)));
  let n = 0;
  for (const [ci, c] of plan.clusters.entries()) {
    for (const m of c.members) {
      const member = await simulator.addMember(c.name, m.name, m.address);
      agents.push(new SimulatedAgent(connections[n++ % connections.length]!, keys[ci]!, c.name, member, { heartbeatMs: plan.heartbeatMs, pullIntervalMs: plan.pullIntervalMs, peersPerRound: 8, requestTimeoutMs: 10_000 }));
    }
  }
  for (const a of agents) a.start();
  send({ type: "started", agents: agents.length });
}

function stats() {
  const rtts = agents.flatMap((a) => a.pullRtts);
  return {
    type: "stats",
    agents: agents.length,
    clustered: simulator.members.filter((m) => m.clustered).length,
    enrolled: agents.filter((a) => a.link.isEnrolled).length,
    pulls: rtts.length,
    pullP50Ms: percentile(rtts, 50),
    pullP99Ms: percentile(rtts, 99),
    pullMaxMs: rtts.length ? maxOf(rtts) : null,
    restRequests: simulator.requests,
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loopDelayMaxMs: loopDelay.max / 1e6,
  };
}

process.on("message", (m: Request) => {
  if (m.type === "start") void start(m.plan).catch((err: unknown) => send({ type: "error", error: String(err) }));
  else if (m.type === "reset-stats") {
    for (const a of agents) a.pullRtts.length = 0;
    loopDelay.reset();
  }
  else if (m.type === "stats") send(stats());
  else if (m.type === "stop") {
    for (const a of agents) a.stop();
    void Promise.all(connections.map((c) => c.close()))
      .then(() => simulator.close())
      .finally(() => {
        rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      });
  }
});
send({ type: "ready" });
