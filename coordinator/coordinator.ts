import type { FastifyInstance } from "fastify";
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { clusterOf, connectNats, memberOf, readSigningKey, type Logger } from "../shared/index.js";
import type { CoordinatorConfig } from "./config.js";
import { AgentCommander } from "./controller/agent-commander.js";
import { systemClock, type Clock } from "./controller/clock.js";
import { ClusterController, expectedDisruptions } from "./controller/cluster-controller.js";
import { StepExecutor } from "./controller/step-executor.js";
import { EventLog } from "./events/event-log.js";
import { AgentFacts } from "./gateway/agent-facts.js";
import { AgentGateway } from "./gateway/agent-gateway.js";
import { Challenges } from "./gateway/challenges.js";
import { SessionTable } from "./gateway/sessions.js";
import { HealthMonitor } from "./health/health-monitor.js";
import { HeartbeatLedger } from "./health/heartbeat-ledger.js";
import { DEFAULT_HEALTH_OPTIONS } from "./health/health-types.js";
import { buildApp } from "./http/app.js";
import { LeaseManager } from "./leases/lease-manager.js";
import { Metrics } from "./metrics.js";
import { OperationService } from "./operations/operation-service.js";
import { DEFAULT_LIMITS } from "./planner/types.js";
import { SpecService } from "./spec/spec-service.js";
import { StatusPublisher } from "./status/status-publisher.js";
import { StatusView } from "./status/status-view.js";
import { DEFAULT_LAYOUT, eventStreamName, openBuckets } from "./store/buckets.js";
import { ClaimStore } from "./store/claim-store.js";
import { KvCache } from "./store/kv-cache.js";
import { NodeStore } from "./store/node-store.js";
import { OperationStore } from "./store/operation-store.js";
import { SecretStore } from "./store/secret-store.js";
import { SpecStore } from "./store/spec-store.js";
import { StatusStore } from "./store/status-store.js";

type Stoppable = { stop(): unknown };

/** How often health is looked at: silence and lost daemons are noticed within this. */
const HEALTH_SWEEP_MS = 250;
const LEASE_TICK_MS = 500;

/**
 * Wires the coordinator's parts together; `main.ts` runs it as a process,
 * tests run it in theirs. Every coordinator serves the whole HTTP API from
 * the shared store; each owns some clusters through leases and reconciles
 * and answers the agents of those only.
 */
export class Coordinator {
  private constructor(
    readonly nc: NatsConnection,
    readonly leases: LeaseManager,
    readonly controller: ClusterController,
    readonly health: HealthMonitor,
    readonly gateway: AgentGateway,
    readonly events: EventLog,
    readonly specs: SpecService,
    readonly operations: OperationService,
    readonly status: StatusView,
    readonly metrics: Metrics,
    readonly app: FastifyInstance,
    private readonly caches: { stop(): void }[],
    private readonly log: Logger,
  ) {}

  static async start(config: CoordinatorConfig, log: Logger, clock: Clock = systemClock): Promise<Coordinator> {
    const signing = readSigningKey(config.signingKeyFile);
    const nc = await connectNats(config.nats, log.child({ part: "nats" }));
    const opened: Stoppable[] = [];
    let failed = false;
    // A part that finishes opening after the start failed (a cache still reading when another's open threw) is stopped at once.
    const register = (part: Stoppable) => (failed ? void part.stop() : void opened.push(part));
    try {
      return await Coordinator.assemble(config, log, clock, signing, nc, register);
    } catch (err) {
      // What a failed start opened is let go: a process that carries on (a supervisor's retry, a test) is not held by watches and a connection retrying for ever.
      failed = true;
      for (const part of opened) await part.stop();
      await nc.close().catch(() => undefined);
      throw err;
    }
  }

  private static async assemble(config: CoordinatorConfig, log: Logger, clock: Clock, signing: ReturnType<typeof readSigningKey>, nc: NatsConnection, register: (part: Stoppable) => void): Promise<Coordinator> {
    const layout = { ...DEFAULT_LAYOUT, prefix: config.storePrefix, replicas: config.storeReplicas, leaseTtlMs: config.leaseTtlMs };
    const buckets = await openBuckets(nc, layout, log.child({ part: "store" }));
    // Each step of the start is logged: a start that hangs says where.
    log.debug("the store's buckets are open");
    // Each bucket's values are of one record type; the stores below read them as such.
    const open = async (kv: KV, name: string) => {
      const cache = await KvCache.open<any>(kv, name, log.child({ part: "store" })); // eslint-disable-line @typescript-eslint/no-explicit-any
      register(cache);
      return cache;
    };
    const [specCache, secretCache, claimCache, nodeCache, opCache, statusCache, leaseCache] = await Promise.all([
      open(buckets.spec, "spec"),
      open(buckets.secrets, "secrets"),
      open(buckets.clusters, "clusters"),
      open(buckets.nodes, "nodes"),
      open(buckets.ops, "ops"),
      open(buckets.status, "status"),
      open(buckets.leases, "leases"),
    ]);
    const specStore = new SpecStore(specCache);
    const secrets = new SecretStore(secretCache);
    const claims = new ClaimStore(claimCache);
    const nodes = new NodeStore(nodeCache);
    const ops = new OperationStore(opCache);
    const statuses = new StatusStore(statusCache);
    log.debug("the store's values are read");

    const events = new EventLog(nc, eventStreamName(config.storePrefix), log.child({ part: "events" }));
    register(events);
    await events.start();
    log.debug("the recent events are read");
    const metrics = new Metrics();
    events.onPublish((e) => metrics.events.inc({ kind: e.kind }));

    const limits = { ...DEFAULT_LIMITS, latencyMs: config.latencyThresholdMs, clockOffsetMs: config.clockOffsetLimitMs, observeEveryMs: config.observeEveryMs };
    const healthOptions = { ...DEFAULT_HEALTH_OPTIONS, lostAfterIntervals: config.lostAfterIntervals, latencyThresholdMs: config.latencyThresholdMs, clockOffsetLimitMs: config.clockOffsetLimitMs, splitGraceMs: config.splitGraceMs };
    const specs = new SpecService(specStore, statuses, claims, ops, events, limits, clock, log.child({ part: "spec" }));
    const spec = () => specs.spec();
    const ledger = new HeartbeatLedger(config.heartbeatIntervalMs);

    // The controller is made last; the parts before it wake it through this.
    const wake = { enqueue: (_cluster: string) => undefined as void };
    const facts = new AgentFacts(ledger, nodes, spec, events, (c) => wake.enqueue(c), clock);
    const health = new HealthMonitor(
      ledger,
      healthOptions,
      {
        relevant: (cluster, n) => {
          const c = clusterOf(spec(), cluster);
          const member = c && memberOf(c, n.node);
          return !!member?.present || !!n.incus?.clustered;
        },
        expected: (cluster) => {
          const out = expectedDisruptions(ops.active(cluster)?.op ?? null);
          for (const name of controller.runtime(cluster)?.recentlyRemovedNames(clock.now()) ?? []) out.set(name, "removed a moment ago");
          return out;
        },
        forming: (cluster) => ["pending", "bootstrapping", "forming"].includes(controller.runtime(cluster)?.plan?.phase ?? "pending"),
        upgrading: (cluster) => {
          const op = ops.active(cluster)?.op;
          return op?.kind === "rollout" && op.params.action === "upgrade-incus";
        },
      },
      events,
      (c) => wake.enqueue(c),
      clock,
    );
    const sessions = new SessionTable();
    let leases: LeaseManager;
    const commander = new AgentCommander(
      nc,
      signing,
      { keysOf: (c) => specStore.keysOf(c), instanceOf: (c, n) => sessions.instanceOf(c, n) ?? nodes.get(c, n)?.session?.instance ?? null, epochOf: (c) => leases.epochOf(c) },
      (reason) => {
        metrics.natsMessages.inc({ endpoint: "command-reply", result: "invalid" });
        log.warn({ reason }, "dropped an invalid command reply");
      },
    );
    const lostAfterMs = config.heartbeatIntervalMs * config.lostAfterIntervals;
    const publisherOwner = { id: "", name: "" };
    const statusPublisher = new StatusPublisher(statuses, nodes, ledger, health, publisherOwner, clock, log.child({ part: "status" }));
    let executor: StepExecutor;
    const controller: ClusterController = new ClusterController(
      {
        spec,
        claims,
        ops,
        facts,
        health,
        get executor() {
          return executor;
        },
        events,
        published: (_cluster, rt, situation) => statusPublisher.publish(rt, situation),
        nudge: (cluster, reason) => gateway.nudge(cluster, reason),
      },
      { limits, lostAfterMs, concurrency: 8 },
      clock,
      log.child({ part: "controller" }),
    );
    wake.enqueue = (c) => controller.enqueue(c);

    const gateway = new AgentGateway(
      nc,
      signing,
      new Challenges(await secrets.challengeKey()),
      sessions,
      facts,
      {
        keysOf: (c) => specStore.keysOf(c),
        knows: (c, n) => {
          const cluster = clusterOf(spec(), c);
          return (!!cluster && !!memberOf(cluster, n)) || !!ledger.nodeLive(c, n) || !!nodes.get(c, n);
        },
        assignmentFor: (c, n) => controller.assignmentFor(c, n),
        reconciled: (c, t) => controller.reconciled(c, t),
        assignmentChanged: (c, n, t) => controller.assignmentChanged(c, n, t),
        epochOf: (c) => leases.epochOf(c),
        ownedSince: (c) => controller.runtime(c)?.ownedSince ?? clock.now(),
        bindName: (c, address, n) => specs.bindName(c, address, n),
      },
      metrics,
      clock,
      log.child({ part: "gateway" }),
    );

    leases = new LeaseManager(
      leaseCache,
      () => spec().clusters.map((c) => c.name),
      {
        acquired: (cluster, epoch) => {
          const now = clock.now();
          for (const r of nodes.ofCluster(cluster)) if (r.session) ledger.seed(cluster, r.node, r.facts, now);
          health.own(cluster, statuses.get(cluster)?.track ?? null, statuses.get(cluster)?.health ?? null);
          controller.own(cluster, epoch);
          gateway.serve(cluster);
          events.publish(cluster, { kind: "cluster.owner-changed", id: `${cluster}:owner:${epoch}`, message: `${leases.name} owns cluster ${cluster} now`, data: { owner: leases.name, epoch } });
        },
        lost: (cluster) => {
          gateway.release(cluster);
          controller.disown(cluster);
          health.release(cluster);
          statusPublisher.forget(cluster);
          ledger.forget(cluster);
        },
        canRelease: (cluster) => controller.idle(cluster),
      },
      { ttlMs: config.leaseTtlMs, tickMs: LEASE_TICK_MS },
      clock,
      log.child({ part: "leases" }),
    );
    publisherOwner.id = leases.id;
    publisherOwner.name = leases.name;
    executor = new StepExecutor(
      { claims, ops, facts, commander, events, enqueue: (c) => controller.enqueue(c), coordinatorId: leases.id, joinTimeoutMs: config.joinTimeoutMs },
      clock,
      log.child({ part: "executor" }),
    );

    specStore.onChange(() => {
      leases.kick();
      controller.enqueueAll();
    });
    ops.onChange((c) => controller.enqueue(c));
    claims.onChange((c) => controller.enqueue(c));
    nodes.onChange((c) => controller.enqueue(c));

    if (config.specFile) await specs.applyFile(config.specFile);
    const operations = new OperationService(ops, statuses, spec, events, clock);
    const status = new StatusView(spec, statuses, claims, ops, events, (c) => leases.ownerOf(c));
    metrics.attach({
      clusters: () =>
        leases.ownedClusters().flatMap((c) => {
          const r = statusPublisher.latestOf(c);
          return r ? [r] : [];
        }),
    });
    const app = await buildApp({ specs, operations, status, events, metrics, leases, facts, nc, apiToken: config.apiToken, allowedOrigins: config.allowedOrigins, log });
    await app.listen({ host: config.httpHost, port: config.httpPort });
    health.start(HEALTH_SWEEP_MS);
    leases.start();
    const coordinator = new Coordinator(nc, leases, controller, health, gateway, events, specs, operations, status, metrics, app, [specCache, secretCache, claimCache, nodeCache, opCache, statusCache, leaseCache], log);
    log.info({ http: coordinator.url, nats: config.nats.servers, id: leases.id, clusters: spec().clusters.map((c) => c.name) }, "coordinator started");
    return coordinator;
  }

  get url(): string {
    const address = this.app.server.address();
    if (!address || typeof address === "string") return String(address);
    return `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  }

  /** Hands every cluster back first, so that another coordinator takes over at once. */
  async stop(): Promise<void> {
    // Each step is logged: a stop that hangs says where.
    const step = async (what: string, work: () => unknown) => {
      this.log.debug({ step: what }, "stopping");
      await work();
    };
    await step("giving the leases back", () => this.leases.stop());
    await step("leaving the agents' subjects", () => this.gateway.stop());
    await step("waiting for running reconciles", () => this.controller.stop());
    await step("stopping the health sweeps", () => this.health.stop());
    await step("closing the HTTP API", () => this.app.close());
    await step("storing the last events", () => this.events.stop());
    await step("closing the store's watches", () => this.caches.forEach((c) => c.stop()));
    await step("draining the NATS connection", () => this.nc.drain().catch(() => undefined));
    this.log.info("coordinator stopped");
  }
}
