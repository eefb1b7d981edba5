/**
 * RAW RECEIVER process for the scale benchmark: the floor a coordinator's
 * CPU per heartbeat is compared with, measured in the same run. It connects
 * to nats-server as a coordinator does (a coordinator's credential, the same
 * client library), receives every heartbeat the agents send, and does the
 * least any receiver that trusts nothing must do with one: find the cluster
 * in the subject, check the frame's HMAC with the cluster key and parse its
 * JSON. Nothing is validated, recorded or answered. Driven by bench/scale.ts
 * over the IPC channel.
 */
import pino from "pino";
import type { NatsConnection } from "@nats-io/transport-node";
import { AgentMessage, connectNats, createLogger, deriveClusterKeysAsync, openMacFrame, parseAgentSubject, Subject, type ClusterKeys } from "../../shared/index.js";

export interface RawReceiverPlan {
  natsServers: string[];
  /** A coordinator's nkey seed file, as `incus-fleet setup` wrote it. */
  nkeyFile: string;
  clusters: { name: string; password: string }[];
}

export interface RawReceiverStats {
  type: "stats";
  opened: number;
}

type Request = { type: "start"; plan: RawReceiverPlan } | { type: "stats" } | { type: "stop" };

let nc: NatsConnection | null = null;
let opened = 0;
const send = (message: unknown) => process.send?.(message);

async function start(plan: RawReceiverPlan): Promise<void> {
  const keys = new Map<string, ClusterKeys>();
  for (const c of plan.clusters) keys.set(c.name, await deriveClusterKeysAsync(c.name, c.password));
  const log = createLogger({ name: "raw-receiver", level: "warn", destination: pino.destination(2) });
  nc = await connectNats({ servers: plan.natsServers, name: "raw-receiver", nkeyFile: plan.nkeyFile }, log);
  nc.subscribe(Subject.fromAgent("*", "*", AgentMessage.Heartbeat), {
    callback: (_err, msg) => {
      const key = keys.get(parseAgentSubject(msg.subject)?.cluster ?? "");
      if (!key) return;
      const frame = openMacFrame(key.mac, msg.subject, msg.data);
      if (!frame.ok) return;
      JSON.parse(frame.json);
      opened += 1;
    },
  });
  await nc.flush();
  send({ type: "started" });
}

process.on("message", (m: Request) => {
  if (m.type === "start") void start(m.plan).catch((err: unknown) => send({ type: "error", error: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
  else if (m.type === "stats") send({ type: "stats", opened } satisfies RawReceiverStats);
  else if (m.type === "stop") void (nc?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
// Without the benchmark the receiver has no reason to live.
process.on("disconnect", () => process.exit(1));
send({ type: "ready" });
