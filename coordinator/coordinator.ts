import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import type { NatsConnection } from "@nats-io/transport-node";
import { clusterOf, connectNats, deriveClusterKeys, parseSpecText, type Logger } from "../shared/index.js";
import { AgentCommander } from "./agent-commander.js";
import type { CoordinatorConfig } from "./config.js";
import { EventPublisher } from "./event-publisher.js";
import { FleetObserver } from "./fleet-observer.js";
import { buildApp } from "./http/app.js";
import { Metrics } from "./metrics.js";
import { NatsEndpoints } from "./nats-endpoints.js";
import { digestOf } from "./planner.js";
import { DEFAULT_RECONCILER_OPTIONS, Reconciler } from "./reconciler.js";
import { SessionRegistry } from "./sessions.js";
import { StatusView } from "./status.js";
import { FleetStore } from "./store.js";

const SWEEP_MS = 250;

/** Wires the coordinator's parts together; `main.ts` runs it as a process, tests run it in theirs. */
export class Coordinator {
  private sweepTimer: NodeJS.Timeout | null = null;

  private constructor(
    readonly nc: NatsConnection,
    readonly reconciler: Reconciler,
    readonly observer: FleetObserver,
    readonly events: EventPublisher,
    readonly metrics: Metrics,
    readonly status: StatusView,
    private readonly endpoints: NatsEndpoints,
    readonly app: FastifyInstance,
    private readonly log: Logger,
  ) {}

  static async start(config: CoordinatorConfig, log: Logger): Promise<Coordinator> {
    const nc = await connectNats({ servers: config.natsServers, token: config.natsToken, credsFile: config.natsCredsFile, name: "incus-fleet coordinator" });
    const store = await FleetStore.open(nc, { prefix: config.storePrefix, replicas: config.storeReplicas });
    const metrics = new Metrics();
    const events = new EventPublisher(nc, log.child({ part: "events" }));
    events.onEvent((e) => metrics.events.inc({ kind: e.kind }));
    const observer = new FleetObserver(events, {
      lostAfterIntervals: config.lostAfterIntervals,
      latencyThresholdMs: config.latencyThresholdMs,
      clockOffsetLimitMs: config.clockOffsetLimitMs,
      splitGraceMs: config.splitGraceMs,
      defaultIntervalMs: config.heartbeatIntervalMs,
    });
    const sessions = new SessionRegistry();
    let reconciler: Reconciler | null = null;
    const commander = new AgentCommander(
      nc,
      (cluster) => reconciler?.keysOf(cluster) ?? null,
      (cluster, node) => sessions.instanceOf(cluster, node) ?? reconciler?.nodes().find((r) => r.cluster === cluster && r.node === node)?.instance ?? null,
      (reason) => {
        metrics.natsMessages.inc({ endpoint: "command-reply", result: "invalid" });
        log.warn({ reason }, "dropped an invalid command reply");
      },
    );
    reconciler = new Reconciler(nc, store, sessions, observer, commander, events, log.child({ part: "reconciler" }), {
      ...DEFAULT_RECONCILER_OPTIONS,
      limits: { ...DEFAULT_RECONCILER_OPTIONS.limits, latencyMs: config.latencyThresholdMs, clockOffsetMs: config.clockOffsetLimitMs },
      joinTimeoutMs: config.joinTimeoutMs,
    });
    const r = reconciler;
    observer.setRelevance((cluster, node, live) => {
      if (live.last?.incus.clustered) return true;
      const spec = clusterOf(r.spec(), cluster);
      return !!spec?.members.some((m) => m.name === node && m.present);
    });
    await reconciler.start();
    if (config.specFile) await applySpecFile(reconciler, config.specFile, log);

    const endpoints = new NatsEndpoints(nc, reconciler, metrics, log.child({ part: "nats" }));
    await endpoints.start();
    const status = new StatusView(reconciler, observer, events);
    metrics.attach(status);
    const app = await buildApp({ reconciler, status, events, metrics, nc, apiToken: config.apiToken, log });
    await app.listen({ host: config.httpHost, port: config.httpPort });
    const coordinator = new Coordinator(nc, reconciler, observer, events, metrics, status, endpoints, app, log);
    coordinator.sweepTimer = setInterval(() => void observer.sweep(), SWEEP_MS);
    log.info({ http: coordinator.url, nats: config.natsServers, clusters: reconciler.spec().clusters.map((c) => c.name) }, "coordinator started");
    return coordinator;
  }

  get url(): string {
    const address = this.app.server.address();
    if (!address || typeof address === "string") return String(address);
    return `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.app.close();
    await this.endpoints.stop();
    await this.reconciler.stop();
    await this.nc.drain().catch(() => undefined);
    this.log.info("coordinator stopped");
  }
}

/** Applies the spec file given at start, unless the store already holds the same spec and passwords. */
async function applySpecFile(reconciler: Reconciler, file: string, log: Logger): Promise<void> {
  const parsed = parseSpecText(readFileSync(file, "utf8"));
  const current = reconciler.specState();
  const same =
    digestOf(parsed.spec) === digestOf(current.spec) &&
    parsed.spec.clusters.every((c) => {
      const stored = reconciler.keysOf(c.name);
      return !!stored && stored.mac.equals(deriveClusterKeys(c.name, parsed.passwords[c.name] ?? "").mac);
    });
  if (same) {
    log.info({ file, revision: current.revision }, "stored spec matches the spec file");
    return;
  }
  const { revision, warnings } = await reconciler.applySpec(parsed);
  log.info({ file, revision, warnings }, "applied the spec file");
}
