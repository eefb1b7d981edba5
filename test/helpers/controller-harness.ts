import { Writable } from "node:stream";
import { createLogger, parseSpec, type CommandBody, type CommandResult, type FleetSpec, type NodeFacts } from "../../shared/index.js";
import type { CommandRunner } from "../../coordinator/controller/agent-commander.js";
import { ClusterController } from "../../coordinator/controller/cluster-controller.js";
import { StepExecutor } from "../../coordinator/controller/step-executor.js";
import type { EventSpec } from "../../coordinator/events/event-log.js";
import { AgentFacts } from "../../coordinator/gateway/agent-facts.js";
import { HeartbeatLedger } from "../../coordinator/health/heartbeat-ledger.js";
import type { HealthSnapshot } from "../../coordinator/health/health-types.js";
import type { Operation } from "../../coordinator/operations/operation.js";
import { DEFAULT_LIMITS } from "../../coordinator/planner/types.js";
import { ClaimStore } from "../../coordinator/store/claim-store.js";
import { KvCache } from "../../coordinator/store/kv-cache.js";
import { NodeStore } from "../../coordinator/store/node-store.js";
import { OperationStore } from "../../coordinator/store/operation-store.js";
import { FakeClock, settle } from "./fake-clock.js";
import { MemoryKv } from "./memory-kv.js";

export const quiet = createLogger({ name: "test", level: "silent", destination: new Writable({ write: (_c, _e, d) => d() }) });

export type Responder = (node: string, body: CommandBody) => CommandResult | Error | Promise<CommandResult | Error>;

/** The stores a controller works on, in memory: several controllers (coordinators) can share them. */
export class SharedStore {
  readonly claimsKv = new MemoryKv();
  readonly nodesKv = new MemoryKv();
  readonly opsKv = new MemoryKv();
}

/**
 * A cluster controller driven through its ports: stores in memory, a
 * scripted agent for commands, health snapshots the test sets, and a fake
 * clock. Nothing runs in real time.
 */
export class ControllerHarness {
  readonly clock = new FakeClock();
  readonly ledger = new HeartbeatLedger(1_000);
  readonly events: EventSpec[] = [];
  readonly commands: { node: string; body: CommandBody }[] = [];
  /** Clusters whose agents were nudged, in order. */
  readonly nudges: string[] = [];
  readonly health = new Map<string, HealthSnapshot>();
  spec: FleetSpec;
  controller!: ClusterController;
  claims!: ClaimStore;
  nodes!: NodeStore;
  ops!: OperationStore;
  facts!: AgentFacts;
  /** What agents answer; the default fails every command. */
  respond: Responder = (_node, body) => new Error(`no answer scripted for ${body.kind}`);
  private caches: { stop(): void }[] = [];

  private constructor(specYaml: object, readonly store: SharedStore) {
    this.spec = parseSpec(specYaml).spec;
  }

  static async create(spec: object, store = new SharedStore()): Promise<ControllerHarness> {
    const h = new ControllerHarness(spec, store);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const open = (kv: MemoryKv, name: string) => KvCache.open<any>(kv.asKv(), name, quiet);
    const [claimCache, nodeCache, opCache] = await Promise.all([open(store.claimsKv, "claims"), open(store.nodesKv, "nodes"), open(store.opsKv, "ops")]);
    h.caches = [claimCache, nodeCache, opCache];
    h.claims = new ClaimStore(claimCache);
    h.nodes = new NodeStore(nodeCache);
    h.ops = new OperationStore(opCache);
    const sink = { publish: (_cluster: string, e: EventSpec) => void h.events.push(e), known: (id: string) => h.events.some((e) => e.id === id) };
    h.facts = new AgentFacts(h.ledger, h.nodes, () => h.spec, sink, (c) => h.controller.enqueue(c), h.clock);
    const runner: CommandRunner = {
      run: async (_cluster, node, body) => {
        h.commands.push({ node, body });
        const r = await h.respond(node, body);
        if (r instanceof Error) throw r;
        return r as never;
      },
    };
    const executor = new StepExecutor({ claims: h.claims, ops: h.ops, facts: h.facts, commander: runner, events: sink, enqueue: (c) => h.controller.enqueue(c), coordinatorId: "test", joinTimeoutMs: 120_000 }, h.clock, quiet);
    h.controller = new ClusterController(
      { spec: () => h.spec, claims: h.claims, ops: h.ops, facts: h.facts, health: { snapshot: (c) => h.health.get(c) ?? null }, executor, events: sink, published: () => undefined, nudge: (c) => void h.nudges.push(c) },
      { limits: DEFAULT_LIMITS, lostAfterMs: 3_000, concurrency: 1 },
      h.clock,
      quiet,
    );
    h.ops.onChange((c) => h.controller.enqueue(c));
    h.claims.onChange((c) => h.controller.enqueue(c));
    return h;
  }

  /** An agent's verified hello, then its heartbeat every second while the test moves time. */
  async enroll(node: string, facts: NodeFacts, cluster = "c"): Promise<void> {
    await this.facts.enroll(cluster, node, `${node}-instance-0000`, facts);
    await settle();
  }

  async pulled(node: string, facts: NodeFacts, cluster = "c"): Promise<void> {
    await this.facts.pulled(cluster, node, facts, undefined);
    await settle();
  }

  /** Keeps every enrolled agent alive, as heartbeats would. */
  touchAll(cluster = "c"): void {
    for (const n of this.ledger.ofCluster(cluster)) this.ledger.touch(cluster, n.node, this.clock.now());
  }

  async advance(ms: number): Promise<void> {
    const step = 250;
    for (let done = 0; done < ms; done += step) {
      this.touchAll();
      await this.clock.advance(Math.min(step, ms - done));
    }
    await settle();
  }

  active(cluster = "c"): Operation | null {
    return this.ops.active(cluster)?.op ?? null;
  }

  kinds(): string[] {
    return this.events.map((e) => `${e.kind}${e.node ? `:${e.node}` : ""}`);
  }

  stop(): void {
    for (const c of this.caches) c.stop();
  }
}
