import { clusterOf, ErrorCode, FleetError, type EventKind, type FleetEvent, type PreflightCheck, type Quorum } from "../shared/index.js";
import type { EventPublisher } from "./event-publisher.js";
import type { ClusterHealth, FleetObserver, Link } from "./fleet-observer.js";
import type { MetricsSource } from "./metrics.js";
import type { ClusterPhase } from "./planner.js";
import type { Reconciler } from "./reconciler.js";
import type { BootstrapClaim, MembershipOp } from "./store.js";

export type MemberStatus = {
  name: string;
  address: string;
  present: boolean;
  state: string;
  reason: string;
  since: string | null;
  agent: { online: boolean; heartbeatAgeMs: number | null };
  incus: { reachable: boolean | null; clustered: boolean | null; version: string | null; error: string | null };
  status: string | null;
  message: string | null;
  roles: string[];
  failureDomain: string | null;
  groups: string[];
  instances: { total: number; running: number } | null;
  clockOffsetMs: number | null;
  preflight: PreflightCheck[] | null;
  failures: number;
  lastFailure: string | null;
};

export type ClusterSummary = {
  name: string;
  phase: ClusterPhase;
  health: ClusterHealth["status"];
  held: boolean;
  members: number;
  online: number;
  voters: number | null;
  votersOnline: number | null;
  failuresTolerated: number | null;
};

export type ClusterStatus = ClusterSummary & {
  quorum: Quorum | null;
  reasons: ClusterHealth["reasons"];
  holdReasons: string[];
  guidance: string[];
  bootstrap: BootstrapClaim | null;
  operation: MembershipOp | null;
  memberList: MemberStatus[];
  links: Link[];
  versions: Record<string, string>;
  plan: { action: string; detail: string }[];
  warnings: string[];
  recentActions: FleetEvent[];
};

/** Status pages and metrics read health at most this old: the sweep evaluates changed clusters once a second. */
const STATUS_MAX_AGE_MS = 1_000;

const ACTION_KINDS: EventKind[] = [
  "bootstrap.claimed",
  "bootstrap.completed",
  "bootstrap.adopted",
  "join.started",
  "join.completed",
  "join.failed",
  "preflight.failed",
  "preflight.passed",
  "member.removing",
  "member.removed",
  "member.remove-failed",
  "member.evacuating",
  "member.evacuated",
  "member.restored",
  "member.maintenance-failed",
  "member.updated",
  "action.refused",
  "action.forced",
  "settings.applied",
  "settings.failed",
  "pool.created",
  "network.created",
  "resource.failed",
];

/** Reads the fleet's state into the shapes the HTTP API, the CLI and the web page show. */
export class StatusView implements MetricsSource {
  constructor(
    private readonly reconciler: Reconciler,
    private readonly observer: FleetObserver,
    private readonly events: EventPublisher,
  ) {}

  private members(cluster: string, health: ClusterHealth, now: number): MemberStatus[] {
    const spec = clusterOf(this.reconciler.spec(), cluster);
    const names = new Set<string>([...(spec?.members.map((m) => m.name) ?? []), ...(health.members?.map((m) => m.name) ?? [])]);
    const specByName = new Map(spec?.members.map((m) => [m.name, m]));
    const viewByName = new Map(health.members?.map((m) => [m.name, m]));
    return [...names].map((name) => {
      const s = specByName.get(name);
      const r = this.reconciler.record(cluster, name);
      const live = this.observer.nodeLive(cluster, name);
      const view = viewByName.get(name);
      const hb = live?.last;
      const incus = hb?.incus ?? r?.facts?.incus;
      return {
        name,
        address: s?.address ?? r?.facts?.address ?? "",
        present: s?.present ?? false,
        state: r?.state ?? "unknown",
        reason: r?.reason ?? (s ? "no agent has enrolled for this member" : "not in the spec"),
        since: r?.since ?? null,
        agent: { online: this.observer.isAgentOnline(cluster, name, now), heartbeatAgeMs: live?.lastHeartbeatAt ? now - live.lastHeartbeatAt : null },
        incus: { reachable: incus?.reachable ?? null, clustered: incus?.clustered ?? null, version: incus?.version ?? null, error: incus?.error ?? null },
        status: view?.effectiveStatus ?? null,
        message: view?.message ?? null,
        roles: view?.roles ?? [],
        failureDomain: view?.failureDomain ?? s?.failureDomain ?? null,
        groups: view?.groups ?? s?.groups ?? [],
        instances: hb ? hb.instances : null,
        clockOffsetMs: hb?.clockOffsetMs ?? null,
        preflight: r?.preflight?.checks ?? null,
        failures: r?.failures ?? 0,
        lastFailure: r?.lastFailure ?? null,
      };
    });
  }

  /** Counts only: a list of every cluster must stay cheap when there are a hundred of them. */
  private summaryOf(cluster: string, health: ClusterHealth): ClusterSummary {
    const spec = clusterOf(this.reconciler.spec(), cluster);
    const inView = new Set(health.members?.map((m) => m.name));
    const present = spec?.members.filter((m) => m.present && !inView.has(m.name)).length ?? 0;
    return {
      name: cluster,
      phase: this.reconciler.phase(cluster),
      health: health.status,
      held: health.hold.held,
      members: inView.size + present,
      online: health.members?.filter((m) => m.effectiveStatus === "Online" || m.effectiveStatus === "Evacuated").length ?? 0,
      voters: health.quorum?.voters ?? null,
      votersOnline: health.quorum?.onlineVoters ?? null,
      failuresTolerated: health.quorum?.failuresTolerated ?? null,
    };
  }

  /** Clusters without quorum, from the last evaluations only: cheap enough for a health check polled every second. */
  quorumLost(): string[] {
    const now = Date.now();
    return this.reconciler.spec().clusters.filter((c) => this.observer.health(c.name, now, STATUS_MAX_AGE_MS).status === "quorum-lost").map((c) => c.name);
  }

  summaries(): ClusterSummary[] {
    const now = Date.now();
    return this.reconciler.spec().clusters.map((c) => {
      return this.summaryOf(c.name, this.observer.health(c.name, now, STATUS_MAX_AGE_MS));
    });
  }

  cluster(name: string): ClusterStatus {
    if (!clusterOf(this.reconciler.spec(), name)) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${name}' is not in the spec`);
    const now = Date.now();
    const health = this.observer.health(name, now);
    const memberList = this.members(name, health, now);
    const snap = this.reconciler.snapshot(name, health);
    const plan = this.reconciler.plan(name);
    const spec = this.reconciler.specState();
    return {
      ...this.summaryOf(name, health),
      quorum: health.quorum,
      reasons: health.reasons,
      holdReasons: health.hold.reasons,
      guidance: health.guidance,
      bootstrap: snap?.claim ?? null,
      operation: snap?.op ?? null,
      memberList,
      links: health.links,
      versions: health.versions,
      plan: plan?.steps.map((s) => ({ action: s.action, detail: s.detail })) ?? [],
      warnings: spec.warnings.filter((w) => w.path.startsWith(`clusters.${name}`) || w.path.startsWith("incus")).map((w) => `${w.path}: ${w.message}`),
      recentActions: this.events.recent({ cluster: name, kinds: ACTION_KINDS, limit: 50 }),
    };
  }

  private metricsCache: { at: number; value: ReturnType<MetricsSource["clusters"]> } | null = null;

  /** Every gauge asks during one scrape: the figures are worked out once per scrape, not once per gauge. */
  clusters(): ReturnType<MetricsSource["clusters"]> {
    const now = Date.now();
    if (this.metricsCache && now - this.metricsCache.at < 1_000) return this.metricsCache.value;
    const value = this.computeClusters(now);
    this.metricsCache = { at: now, value };
    return value;
  }

  private computeClusters(now: number): ReturnType<MetricsSource["clusters"]> {
    return this.reconciler.spec().clusters.map((c) => {
      const health = this.observer.health(c.name, now, STATUS_MAX_AGE_MS);
      const members = this.members(c.name, health, now);
      const worst = new Map<string, number>();
      for (const l of health.links) if (l.rttMs !== null) worst.set(l.from, Math.max(worst.get(l.from) ?? 0, l.rttMs));
      const membersByState: Record<string, number> = {};
      for (const m of members) membersByState[m.state] = (membersByState[m.state] ?? 0) + 1;
      return {
        name: c.name,
        membersByState,
        voters: health.quorum?.voters ?? null,
        votersOnline: health.quorum?.onlineVoters ?? null,
        failuresTolerated: health.quorum?.failuresTolerated ?? null,
        nodes: members.map((m) => ({
          node: m.name,
          heartbeatAgeSeconds: m.agent.heartbeatAgeMs === null ? null : m.agent.heartbeatAgeMs / 1000,
          clockOffsetMs: m.clockOffsetMs,
          worstLinkMs: worst.get(m.name) ?? null,
        })),
        flaggedLinks: health.links.filter((l) => l.state !== "ok").map((l) => ({ from: l.from, to: l.to, rttMs: l.rttMs, state: l.state })),
        slowLinks: health.links.filter((l) => l.state === "slow").length,
        downLinks: health.links.filter((l) => l.state === "down").length,
      };
    });
  }
}
