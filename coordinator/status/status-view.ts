import { clusterOf, ErrorCode, FleetError, type EventKind, type FleetEvent, type FleetSpec } from "../../shared/index.js";
import type { EventLog } from "../events/event-log.js";
import type { Operation } from "../operations/operation.js";
import type { ClaimStore } from "../store/claim-store.js";
import type { OperationStore } from "../store/operation-store.js";
import type { LeaseRecord } from "../store/records.js";
import type { StatusStore } from "../store/status-store.js";
import type { ClusterStatusRecord } from "./cluster-status.js";

/** Kinds of events that record something done to a cluster, as opposed to observations. */
const ACTION_KINDS: EventKind[] = [
  "spec.applied",
  "spec.kept",
  "bootstrap.claimed",
  "bootstrap.completed",
  "bootstrap.adopted",
  "join.started",
  "join.completed",
  "join.failed",
  "preflight.failed",
  "preflight.passed",
  "operation.started",
  "operation.resumed",
  "operation.succeeded",
  "operation.failed",
  "operation.cancelled",
  "member.removed",
  "member.evacuated",
  "member.restored",
  "member.updated",
  "action.refused",
  "action.forced",
  "settings.applied",
  "settings.failed",
  "drift.detected",
  "drift.corrected",
  "resource.converged",
  "resource.failed",
  "resource.deleted",
  "cluster.owner-changed",
];

export function operationSummary(op: Operation) {
  return { id: op.id, kind: op.kind, member: op.member, state: op.state, phase: op.phase, reason: op.reason, progress: op.progress, createdAt: op.createdAt, updatedAt: op.updatedAt };
}

/**
 * Reads the fleet into the shapes the API, the CLI and the page show, from
 * the store only: every coordinator answers the same, whichever owns a
 * cluster. Reading never changes anything.
 */
export class StatusView {
  constructor(
    private readonly spec: () => FleetSpec,
    private readonly statuses: StatusStore,
    private readonly claims: ClaimStore,
    private readonly ops: OperationStore,
    private readonly events: EventLog,
    private readonly ownerOf: (cluster: string) => LeaseRecord | null,
  ) {}

  private record(cluster: string): ClusterStatusRecord | undefined {
    return this.statuses.get(cluster);
  }

  private members(cluster: string, record: ClusterStatusRecord | undefined, now: number) {
    const spec = clusterOf(this.spec(), cluster);
    const names = new Set<string>([...(spec?.members.map((m) => m.name) ?? []), ...(record?.health.members?.map((m) => m.name) ?? []), ...(record?.hosts.map((h) => h.name) ?? [])]);
    const hosts = new Map(record?.hosts.map((h) => [h.name, h]));
    const views = new Map(record?.health.members?.map((m) => [m.name, m]));
    return [...names].map((name) => {
      const s = spec?.members.find((m) => m.name === name);
      const h = hosts.get(name);
      const v = views.get(name);
      const incus = h?.facts?.incus;
      return {
        name,
        address: s?.address ?? h?.facts?.address ?? "",
        present: s?.present ?? false,
        named: s?.named ?? true,
        state: h?.rejection ? "rejected" : (h?.assignment?.kind ?? (s ? "unknown" : "not-in-spec")),
        reason: h?.rejection?.message ?? h?.assignment?.reason ?? (s ? (s.named ? "no agent has enrolled for this member" : `waiting for the agent at ${s.address} to enroll and give its name`) : "not in the spec"),
        agent: { online: h?.agentOnline ?? false, heartbeatAgeMs: h?.lastHeartbeatAt ? now - h.lastHeartbeatAt : null },
        incus: { reachable: incus?.reachable ?? null, clustered: incus?.clustered ?? null, version: incus?.version ?? null, error: incus?.error ?? incus?.notReady ?? null },
        status: v?.effectiveStatus ?? null,
        message: v?.message ?? null,
        roles: v?.roles ?? [],
        failureDomain: v?.failureDomain ?? s?.failureDomain ?? null,
        groups: v?.groups ?? s?.groups ?? [],
        instances: h?.instances ?? null,
        clockOffsetMs: h?.clockOffsetMs ?? null,
        /** The slowest TCP connect round trip from this member to its peers' cluster addresses (every link is probed; only flagged ones are listed in links). */
        worstLinkMs: record?.health.worstLinkMs[name] ?? null,
        preflight: h?.preflight?.checks ?? null,
        failures: h?.failures ?? 0,
        lastFailure: h?.lastFailure ?? null,
        fingerprint: h?.fingerprint ?? null,
        capabilities: h?.facts?.capabilities ?? null,
      };
    });
  }

  private summary(cluster: string, record: ClusterStatusRecord | undefined) {
    const spec = clusterOf(this.spec(), cluster);
    const active = this.ops.active(cluster)?.op;
    const owner = this.ownerOf(cluster);
    const views = record?.health.members ?? [];
    const inView = new Set(views.map((m) => m.name));
    return {
      name: cluster,
      phase: record?.phase ?? (this.claims.claimOf(cluster) ? "bootstrapping" : "pending"),
      convergence: record?.convergence ?? { state: "converging", reason: "no coordinator has looked at the cluster yet" },
      health: record?.health.status ?? "unknown",
      held: record?.health.hold.held ?? false,
      members: inView.size + (spec?.members.filter((m) => m.present && !inView.has(m.name)).length ?? 0),
      online: views.filter((m) => m.effectiveStatus === "Online" || m.effectiveStatus === "Evacuated").length,
      voters: record?.health.quorum?.voters ?? null,
      votersOnline: record?.health.quorum?.onlineVoters ?? null,
      failuresTolerated: record?.health.quorum?.failuresTolerated ?? null,
      drifted: record?.drifted.length ?? 0,
      owner: owner ? owner.ownerName : null,
      operation: active ? operationSummary(active) : null,
      statusAt: record ? new Date(record.at).toISOString() : null,
    };
  }

  summaries() {
    return this.spec().clusters.map((c) => this.summary(c.name, this.record(c.name)));
  }

  cluster(name: string) {
    const spec = clusterOf(this.spec(), name);
    if (!spec) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${name}' is not in the spec`);
    const record = this.record(name);
    const now = Date.now();
    const health = record?.health;
    return {
      ...this.summary(name, record),
      quorum: health?.quorum ?? null,
      reasons: health?.reasons ?? [],
      holdReasons: health?.hold.reasons ?? [],
      guidance: health?.guidance ?? [],
      bootstrap: this.claims.claimOf(name),
      memberList: this.members(name, record, now),
      links: health?.links ?? [],
      versions: health?.versions ?? {},
      plan: record?.changes ?? [],
      next: record?.next ?? null,
      driftItems: record?.drifted ?? [],
      failures: record?.failures ?? [],
      observed: record?.observed ? { at: new Date(record.observed.at).toISOString(), via: record.observed.via, config: record.observed.config, pools: record.observed.pools, networks: record.observed.networks } : null,
      policy: spec.policy,
      pools: spec.pools,
      networks: spec.networks,
      recentActions: this.events.recent({ cluster: name, kinds: ACTION_KINDS, limit: 50 }),
    };
  }

  /** Clusters without quorum, for the health check. */
  quorumLost(): string[] {
    return this.spec().clusters.filter((c) => this.record(c.name)?.health.status === "quorum-lost").map((c) => c.name);
  }

  nodes() {
    const now = Date.now();
    return this.spec().clusters.flatMap((c) => this.members(c.name, this.record(c.name), now).map((m) => ({ cluster: c.name, ...m })));
  }

  recentEvents(filter: { cluster?: string; limit?: number; afterSeq?: number; sinceTime?: number }): FleetEvent[] {
    return this.events.recent(filter);
  }
}
