import type { Logger } from "../../shared/index.js";
import type { Clock } from "../controller/clock.js";
import type { ClusterRuntime } from "../controller/cluster-runtime.js";
import type { HealthMonitor } from "../health/health-monitor.js";
import type { HeartbeatLedger } from "../health/heartbeat-ledger.js";
import type { ClusterSituation } from "../planner/types.js";
import type { NodeStore } from "../store/node-store.js";
import type { StatusStore } from "../store/status-store.js";
import type { ClusterStatusRecord, HostStatus, ObservedSummary } from "./cluster-status.js";

/** A status that did not change is written again this often, so that readers see how fresh it is. */
const REFRESH_MS = 10_000;
/** At most one look at (and one write of) a cluster's status this often. */
const MIN_GAP_MS = 1_000;

function summarize(rt: ClusterRuntime): ObservedSummary | null {
  const o = rt.observed;
  if (!o) return null;
  const instances: ObservedSummary["instances"] = {};
  for (const i of o.observation.instances) {
    const c = (instances[i.location] ??= { total: 0, running: 0 });
    c.total += 1;
    if (i.status === "Running") c.running += 1;
  }
  return { at: o.at, via: o.via, config: o.observation.config, members: o.observation.members, pools: o.observation.pools, networks: o.observation.networks, instances };
}

/**
 * Writes each owned cluster's status to the store when its meaning changes
 * (and now and then anyway). A cluster is reconciled far more often than
 * once a second (every pull whose facts changed wakes it): its status is
 * built from the latest reconcile at most once a second, or when someone
 * reads it.
 */
export class StatusPublisher {
  private readonly written = new Map<string, { at: number; signature: string }>();
  private readonly scheduled = new Map<string, unknown>();
  private readonly latest = new Map<string, ClusterStatusRecord>();
  /** The latest reconcile of each cluster not built into a record yet. */
  private readonly pending = new Map<string, { rt: ClusterRuntime; s: ClusterSituation }>();
  private readonly builtAt = new Map<string, number>();

  constructor(
    private readonly store: StatusStore,
    private readonly nodes: NodeStore,
    private readonly ledger: HeartbeatLedger,
    private readonly health: HealthMonitor,
    private readonly owner: { id: string; name: string },
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  build(rt: ClusterRuntime, s: ClusterSituation): ClusterStatusRecord | null {
    const plan = rt.plan;
    const health = this.health.snapshot(rt.cluster);
    if (!plan || !health) return null;
    const names = new Set([...s.spec.members.map((m) => m.name), ...Object.keys(s.hosts), ...(health.members?.map((m) => m.name) ?? [])]);
    const hosts: HostStatus[] = [...names].map((name) => {
      const h = s.hosts[name];
      const live = this.ledger.nodeLive(rt.cluster, name);
      const record = this.nodes.get(rt.cluster, name);
      const d = plan.decisions[name];
      return {
        name,
        assignment: d ? { kind: d.kind, reason: d.reason } : null,
        rejection: record?.rejection && (!record.session || record.rejection.at > record.session.startedAt) ? record.rejection : null,
        enrolled: h?.enrolled ?? false,
        agentOnline: h?.agentOnline ?? false,
        lastSeenAt: live?.lastSeenAt ?? null,
        lastHeartbeatAt: live?.lastHeartbeatAt ?? null,
        facts: h?.facts ?? null,
        instances: live?.instances ?? null,
        clockOffsetMs: live?.clockOffsetMs ?? null,
        preflight: h?.preflight ? { target: h.preflight.report.target, checks: h.preflight.report.checks, at: h.preflight.at } : null,
        failures: h?.failures ?? 0,
        lastFailure: h?.lastFailure ?? null,
        lastFailureAt: h?.lastFailureAt ?? null,
        fingerprint: record?.identity?.fingerprint ?? null,
      };
    });
    return {
      cluster: rt.cluster,
      at: this.clock.now(),
      owner: { ...this.owner, epoch: rt.epoch },
      phase: plan.phase,
      convergence: plan.convergence,
      drifted: [...rt.drifted],
      health,
      track: this.health.track(rt.cluster),
      changes: plan.changes,
      next: plan.next?.kind ?? null,
      hosts,
      observed: summarize(rt),
      failures: [...rt.failures].map(([object, f]) => ({ object, ...f })),
    };
  }

  /** The owner's freshest record of a cluster, before it reaches the store. */
  latestOf(cluster: string): ClusterStatusRecord | undefined {
    const p = this.pending.get(cluster);
    if (p) {
      this.pending.delete(cluster);
      this.builtAt.set(cluster, this.clock.now());
      const record = this.build(p.rt, p.s);
      if (record) this.latest.set(cluster, record);
    }
    return this.latest.get(cluster);
  }

  publish(rt: ClusterRuntime, s: ClusterSituation): void {
    this.pending.set(rt.cluster, { rt, s });
    if (this.scheduled.has(rt.cluster)) return;
    const delay = Math.max(0, (this.builtAt.get(rt.cluster) ?? -Infinity) + MIN_GAP_MS - this.clock.now());
    this.scheduled.set(
      rt.cluster,
      this.clock.setTimeout(() => {
        this.scheduled.delete(rt.cluster);
        this.write(rt.cluster);
      }, delay),
    );
  }

  private write(cluster: string): void {
    const record = this.latestOf(cluster);
    if (!record) return;
    const { at: _at, track: _track, hosts, health, ...rest } = record;
    // Everything here is built in a fixed order, so plain JSON tells a change: keys in another order would cost one
    // write too many, never one missed. Sorting every key of fifty hosts each second cost more than the write.
    const signature = JSON.stringify([rest, health.status, health.reasons, health.hold, health.members, hosts.map((h) => [h.name, h.assignment, h.rejection?.code, h.agentOnline, h.facts?.incus.reachable, h.facts?.incus.clustered, h.preflight?.checks, h.failures])]);
    const last = this.written.get(cluster);
    const now = this.clock.now();
    if (last && last.signature === signature && now - last.at < REFRESH_MS) return;
    this.written.set(cluster, { at: now, signature });
    this.store.put({ ...record, at: now }).catch((err: unknown) => this.log.warn({ cluster, err: String(err) }, "could not store a cluster's status"));
  }

  forget(cluster: string): void {
    const timer = this.scheduled.get(cluster);
    if (timer) this.clock.clearTimeout(timer);
    this.scheduled.delete(cluster);
    this.latest.delete(cluster);
    this.written.delete(cluster);
    this.pending.delete(cluster);
    this.builtAt.delete(cluster);
  }
}
