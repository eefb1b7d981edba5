import { clusterOf, type Assignment, type ClusterSpec, type FleetSpec, type Logger } from "../../shared/index.js";
import type { EventSink } from "../events/event-log.js";
import type { AgentFacts } from "../gateway/agent-facts.js";
import type { HealthMonitor } from "../health/health-monitor.js";
import type { Operation } from "../operations/operation.js";
import { removedMember } from "../operations/remove.js";
import { planCluster } from "../planner/plan-cluster.js";
import type { ClusterSituation, PlannerLimits } from "../planner/types.js";
import type { ClaimStore } from "../store/claim-store.js";
import type { OperationStore } from "../store/operation-store.js";
import { assignmentFor, assignmentSignature, isIdleSignature } from "./assignments.js";
import type { Clock } from "./clock.js";
import { ClusterRuntime } from "./cluster-runtime.js";
import type { StepExecutor } from "./step-executor.js";
import { WorkQueue, type WorkResult } from "./work-queue.js";

export interface ControllerOptions {
  limits: PlannerLimits;
  /** An agent is silent after this long without a message. */
  lostAfterMs: number;
  /** Clusters reconciled at the same time. */
  concurrency: number;
}

export interface ControllerPorts {
  spec(): FleetSpec;
  claims: ClaimStore;
  ops: OperationStore;
  facts: AgentFacts;
  health: Pick<HealthMonitor, "snapshot">;
  executor: StepExecutor;
  events: EventSink;
  /** Tells the status store what the owner now knows of a cluster. */
  published(cluster: string, runtime: ClusterRuntime, situation: ClusterSituation): void;
  /** Asks the cluster's agents to pull now. */
  nudge(cluster: string, reason: string): void;
}

/** Only an operation the cluster's owner drives makes the health of its member "expected". */
export function expectedDisruptions(active: Operation | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!active || !active.member) return out;
  switch (active.kind) {
    case "join":
      if (active.phase === "handed") out.set(active.member, "joining the cluster");
      break;
    case "remove":
      out.set(active.member, `being removed (${active.phase})`);
      break;
    case "evacuate":
      out.set(active.member, "being evacuated");
      break;
    case "restore":
      out.set(active.member, "being restored");
      break;
    case "rollout":
      if (active.state === "running" && active.data.memberPhase !== "gate") out.set(active.member, `rollout: ${active.data.memberPhase}`);
      for (const waiting of active.data.deferred) out.set(waiting, "upgraded; waiting for the other members to be upgraded");
      break;
  }
  return out;
}

/**
 * The clusters this coordinator owns, each reconciled by one level-triggered
 * entry: `reconcile(cluster)` compares the spec with the cluster as it is and
 * takes the next safe step. Agents' messages, store watches and timers only
 * add the cluster to a deduplicating work queue; the reconcile reads the
 * state as it is then, never what woke it.
 */
export class ClusterController {
  private readonly runtimes = new Map<string, ClusterRuntime>();
  private readonly queue: WorkQueue;

  constructor(
    private readonly ports: ControllerPorts,
    private readonly options: ControllerOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.queue = new WorkQueue((cluster) => this.reconcile(cluster), {
      concurrency: options.concurrency,
      baseBackoffMs: 500,
      maxBackoffMs: 30_000,
      onError: (cluster, err, retryInMs) => this.log.warn({ cluster, err: String(err), retryInMs }, "reconcile failed; trying again"),
    }, clock);
  }

  // ---------------------------------------------------------------- ownership

  /** This coordinator took the cluster's lease: it plans, steps and answers for it from now on. */
  own(cluster: string, epoch: number): ClusterRuntime {
    const runtime = new ClusterRuntime(cluster, epoch, this.clock.now());
    this.runtimes.set(cluster, runtime);
    // The last owner may have removed a member just before it died: views read before that removal must not undo it.
    for (const op of this.ports.ops.list(cluster)) {
      const gone = removedMember(op);
      if (gone && op.finishedAt) runtime.removedAt(gone, Date.parse(op.finishedAt));
    }
    // The last owner may have stored a change and died before its events went out: those come before the word it is resumed.
    this.ports.executor.replayAnnounced(cluster);
    const active = this.ports.ops.active(cluster)?.op;
    if (active) {
      this.ports.events.publish(cluster, {
        kind: "operation.resumed",
        id: `${active.id}:resumed:${epoch}`,
        node: active.member ?? undefined,
        message: `${active.kind} of ${active.member} picked up at phase ${active.phase}`,
        data: { operation: active.id, kind: active.kind, phase: active.phase },
      });
    }
    this.queue.add(cluster);
    return runtime;
  }

  disown(cluster: string): void {
    this.runtimes.get(cluster)?.release();
    this.runtimes.delete(cluster);
    this.queue.remove(cluster);
  }

  owns(cluster: string): boolean {
    return this.runtimes.has(cluster);
  }

  runtime(cluster: string): ClusterRuntime | undefined {
    return this.runtimes.get(cluster);
  }

  /** Whether a cluster can change hands now without cutting a command short. */
  idle(cluster: string): boolean {
    const rt = this.runtimes.get(cluster);
    return !rt || (rt.inflight.size === 0 && !this.queue.isBusy(cluster));
  }

  enqueue(cluster: string): void {
    if (this.runtimes.has(cluster)) this.queue.add(cluster);
  }

  enqueueAll(): void {
    for (const cluster of this.runtimes.keys()) this.queue.add(cluster);
  }

  async stop(): Promise<void> {
    this.queue.stop();
    for (const rt of this.runtimes.values()) rt.release();
    await this.queue.idle();
  }

  // ---------------------------------------------------------------- answers for the gateway

  reconciled(cluster: string, timeoutMs: number): Promise<void> {
    const rt = this.runtimes.get(cluster);
    if (!rt) return Promise.resolve();
    const waiting = rt.waitReconciled(timeoutMs);
    this.queue.add(cluster);
    return waiting;
  }

  assignmentChanged(cluster: string, node: string, timeoutMs: number): Promise<void> {
    return this.runtimes.get(cluster)?.waitAssignment(node, timeoutMs) ?? Promise.resolve();
  }

  assignmentFor(cluster: string, node: string): Assignment {
    const spec = clusterOf(this.ports.spec(), cluster);
    const rt = this.runtimes.get(cluster);
    if (!spec || !rt) return { kind: "wait", reason: "this coordinator does not serve the cluster now", retryAfterMs: 1_000 };
    const inView = this.ports.health.snapshot(cluster)?.members?.some((m) => m.name === node) ?? false;
    return assignmentFor(node, { ...this.assignmentContext(spec, rt), inView });
  }

  private assignmentContext(spec: ClusterSpec, rt: ClusterRuntime) {
    const health = this.ports.health.snapshot(spec.name);
    const versions = Object.values(health?.versions ?? {});
    return {
      spec,
      plan: rt.plan,
      active: this.ports.ops.active(spec.name)?.op ?? null,
      observed: rt.observed,
      clusterVersion: versions[0] ?? null,
      inView: false,
      limits: this.options.limits,
    };
  }

  // ---------------------------------------------------------------- reconcile

  /** The cluster as it is now, from the store, the agents' facts and the latest health evaluation. */
  situation(cluster: string, spec: ClusterSpec, rt: ClusterRuntime): ClusterSituation {
    const now = this.clock.now();
    return {
      spec,
      claim: this.ports.claims.claimOf(cluster),
      active: this.ports.ops.active(cluster)?.op ?? null,
      hosts: this.ports.facts.hostViews(cluster, this.options.lostAfterMs),
      health: this.ports.health.snapshot(cluster),
      observed: rt.observed,
      observationDue: !rt.observed || rt.observeNow || now - rt.observed.at > this.options.limits.observeEveryMs,
      recentlyRemoved: rt.recentlyRemovedNames(now),
      tokensAhead: new Set(rt.tokensAhead.keys()),
      now,
    };
  }

  private async reconcile(cluster: string): Promise<WorkResult> {
    const rt = this.runtimes.get(cluster);
    const spec = clusterOf(this.ports.spec(), cluster);
    if (!rt || !spec) return {};
    const stale = this.ports.ops.staleLock(cluster);
    if (stale && (stale.ended || this.clock.now() - stale.at > 10_000)) await this.ports.ops.releaseStale(cluster, stale.revision);
    this.ports.executor.replayAnnounced(cluster);

    const s = this.situation(cluster, spec, rt);
    const plan = planCluster(s, this.options.limits, rt.failures);
    rt.plan = plan;
    this.wakePulls(spec, rt, s);
    rt.reconciled();
    this.ports.published(cluster, rt, s);

    if (!plan.next) return { requeueAfterMs: plan.recheckMs };
    const progressed = await this.ports.executor.execute(rt, s, plan.next);
    // A step taken changes what the next plan says: look again at once.
    return { requeueAfterMs: progressed ? 0 : plan.recheckMs };
  }

  /**
   * Answers the held pulls whose answer changed with this plan. A member's
   * agent does not hold a pull: it asks again only every so often, so when a
   * member's answer changes (it is retired, say) the cluster is nudged.
   */
  private wakePulls(spec: ClusterSpec, rt: ClusterRuntime, s: ClusterSituation): void {
    const ctx = { ...this.assignmentContext(spec, rt), active: s.active };
    const inView = new Set(this.ports.health.snapshot(spec.name)?.members?.map((m) => m.name) ?? []);
    let idleChanged = false;
    for (const node of new Set([...Object.keys(rt.plan?.decisions ?? {}), ...rt.lastAssignments.keys()])) {
      const sig = assignmentSignature(assignmentFor(node, { ...ctx, inView: inView.has(node) }));
      const before = rt.lastAssignments.get(node);
      if (before === sig) continue;
      rt.lastAssignments.set(node, sig);
      rt.assignmentChanged(node);
      if (before !== undefined && isIdleSignature(before)) idleChanged = true;
    }
    if (idleChanged) this.ports.nudge(spec.name, "a member's assignment changed");
  }
}
