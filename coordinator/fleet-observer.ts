import {
  isOnline,
  quorumOf,
  type ClusterView,
  type Heartbeat,
  type IncusFacts,
  type MemberView,
  type Quorum,
} from "../shared/index.js";
import type { EventSink } from "./event-publisher.js";
import { guidanceFor } from "./guidance.js";

export interface ObserverOptions {
  /** An agent is lost after this many missed heartbeats. */
  lostAfterIntervals: number;
  latencyThresholdMs: number;
  clockOffsetLimitMs: number;
  /** A split view must last this long before the cluster is held, and agree this long before it is released. */
  splitGraceMs: number;
  /** Heartbeat interval assumed before an agent has sent one. */
  defaultIntervalMs: number;
}

export const DEFAULT_OBSERVER_OPTIONS: ObserverOptions = {
  lostAfterIntervals: 3,
  latencyThresholdMs: 50,
  clockOffsetLimitMs: 500,
  splitGraceMs: 4_000,
  defaultIntervalMs: 1_000,
};

export interface NodeLive {
  cluster: string;
  node: string;
  lastSeenAt: number;
  lastHeartbeatAt: number | null;
  intervalMs: number;
  /**
   * The latest of what the agent reported, small and kept: the parsed
   * heartbeat itself is let go at once, so that thousands of them a second
   * die young instead of filling the old generation of the heap.
   */
  last: { incus: IncusFacts; clockOffsetMs: number | null; instances: { total: number; running: number } } | null;
  /** The last full view the agent sent; heartbeats only carry it when it changed. */
  view: ClusterView | null;
  /** Who is online with which roles in that view, as one string: agents that agree have equal signatures. */
  viewSignature: string;
  /** The last view it could read, and when: what the cluster looked like before its database stopped answering. */
  lastGood: { view: ClusterView; at: number } | null;
  lost: boolean;
}

export type LinkState = "ok" | "slow" | "down";

export interface Link {
  from: string;
  to: string;
  address: string;
  rttMs: number | null;
  state: LinkState;
  error?: string;
  at: number;
}

export interface HealthReason {
  code:
    | "quorum-lost"
    | "quorum-at-risk"
    | "database-unavailable"
    | "member-offline"
    | "agent-lost"
    | "incus-down"
    | "split-view"
    | "link-down"
    | "link-slow"
    | "clock-skew"
    | "version-mismatch";
  message: string;
}

export interface ClusterHealth {
  status: "unknown" | "healthy" | "degraded" | "quorum-lost";
  quorum: Quorum | null;
  /**
   * Members as the chosen view reports them. `effectiveStatus` overrides
   * Incus with what agents know sooner (a daemon that does not answer is
   * offline); `safetyStatus` also counts a member whose agent is silent as
   * offline, and is what refusals are decided on.
   */
  members: (MemberView & { effectiveStatus: string; safetyStatus: string })[] | null;
  reasons: HealthReason[];
  hold: { held: boolean; reasons: string[] };
  links: Link[];
  clockOffsets: Record<string, number>;
  versions: Record<string, string>;
  guidance: string[];
}

interface ClusterTrack {
  slow: Set<string>;
  down: Set<string>;
  skewed: Set<string>;
  mismatch: boolean;
  degradedSignature: string;
  rolesSignature: string;
  quorumLost: boolean;
  splitSince: number | null;
  agreeSince: number | null;
  held: boolean;
  heldReasons: string[];
}

const linkKey = (from: string, to: string) => `${from}>${to}`;
/** Every cluster is re-evaluated at least this often, even when no heartbeat changed anything. */
const FULL_SWEEP_MS = 5_000;
const MAX_VIEWS_PER_CLUSTER = 16;
const MIN_EVALUATION_GAP_MS = 1_000;

/**
 * Keeps what the agents last said and turns it into health: lost agents and
 * daemons, the latency matrix, clock offsets, versions, quorum, and whether
 * the agents' views of their cluster agree. Publishes an event on every
 * change of state, never on every heartbeat.
 */
export class FleetObserver {
  private readonly nodes = new Map<string, NodeLive>();
  private readonly tracks = new Map<string, ClusterTrack>();
  private readonly links = new Map<string, Map<string, Link>>();
  private readonly cached = new Map<string, { at: number; health: ClusterHealth }>();
  private readonly evaluationCount = new Map<string, number>();
  /** One object per distinct view per cluster: fifty members reporting the same view share it. */
  private readonly views = new Map<string, Map<string, ClusterView>>();
  /** Clusters where a heartbeat changed something since the last sweep; only they are evaluated at once. */
  private readonly dirty = new Set<string>();
  private lastFullSweep = 0;
  private sweeping = false;
  /** Which agents speak for a cluster; a retired host that still heartbeats does not. */
  private relevant: (cluster: string, node: string, live: NodeLive) => boolean = () => true;

  constructor(
    private readonly events: EventSink,
    readonly options: ObserverOptions = DEFAULT_OBSERVER_OPTIONS,
  ) {}

  private key(cluster: string, node: string): string {
    return `${cluster}/${node}`;
  }

  private live(cluster: string, node: string, now: number): NodeLive {
    const k = this.key(cluster, node);
    let n = this.nodes.get(k);
    if (!n) {
      n = { cluster, node, lastSeenAt: now, lastHeartbeatAt: null, intervalMs: this.options.defaultIntervalMs, last: null, view: null, viewSignature: "", lastGood: null, lost: false };
      this.nodes.set(k, n);
    }
    return n;
  }

  private track(cluster: string): ClusterTrack {
    let t = this.tracks.get(cluster);
    if (!t) {
      t = { slow: new Set(), down: new Set(), skewed: new Set(), mismatch: false, degradedSignature: "", rolesSignature: "", quorumLost: false, splitSince: null, agreeSince: null, held: false, heldReasons: [] };
      this.tracks.set(cluster, t);
    }
    return t;
  }

  setRelevance(fn: (cluster: string, node: string, live: NodeLive) => boolean): void {
    this.relevant = fn;
  }

  nodeLive(cluster: string, node: string): NodeLive | undefined {
    return this.nodes.get(this.key(cluster, node));
  }

  isAgentOnline(cluster: string, node: string, now = Date.now()): boolean {
    const n = this.nodes.get(this.key(cluster, node));
    return !!n && !n.lost && now - n.lastSeenAt <= n.intervalMs * this.options.lostAfterIntervals + 250;
  }

  /** Any authenticated message proves the agent is alive. */
  touch(cluster: string, node: string, now = Date.now()): void {
    const n = this.live(cluster, node, now);
    // A queued heartbeat can be older than a pull already seen.
    n.lastSeenAt = Math.max(n.lastSeenAt, now);
    if (n.lost) {
      n.lost = false;
      this.dirty.add(cluster);
      this.events.publish(cluster, "agent.returned", `agent of ${node} is back`, { node });
    }
  }

  forget(cluster: string, node: string): void {
    this.nodes.delete(this.key(cluster, node));
    this.links.get(cluster)?.forEach((l, k) => {
      if (l.from === node || l.to === node) this.links.get(cluster)?.delete(k);
    });
  }

  ingest(hb: Heartbeat, now = Date.now()): void {
    const n = this.live(hb.cluster, hb.node, now);
    const previous = n.last;
    const signatureBefore = n.viewSignature;
    this.touch(hb.cluster, hb.node, now);
    n.lastHeartbeatAt = now;
    n.intervalMs = hb.intervalMs > 0 ? hb.intervalMs : this.options.defaultIntervalMs;
    const { members: _members, ...incus } = hb.incus;
    n.last = { incus, clockOffsetMs: hb.clock.offsetMs, instances: { total: hb.instances.total, running: hb.instances.running } };
    if (hb.view) {
      const view = this.intern(hb.cluster, hb.view);
      // The heartbeat itself is kept for its other fields; its copy of the view goes.
      delete hb.view;
      n.view = view;
      n.viewSignature = view.ok ? view.members.map((m) => `${m.name}:${isOnline(m.status)}:${m.roles.join("+")}`).sort().join("|") : "";
    }
    if (n.view?.ok) n.lastGood = { view: n.view, at: now };
    // An unreachable daemon says nothing about membership; only one that answers "not clustered" does.
    if (hb.incus.reachable && !hb.incus.clustered) {
      n.view = null;
      n.lastGood = null;
    }

    const wasReachable = previous ? previous.incus.reachable : true;
    if (wasReachable && !hb.incus.reachable) {
      this.events.publish(hb.cluster, "incus.lost", `Incus on ${hb.node} is unreachable: ${hb.incus.error ?? "no answer"}`, { node: hb.node, data: { error: hb.incus.error ?? null } });
    } else if (!wasReachable && hb.incus.reachable) {
      this.events.publish(hb.cluster, "incus.returned", `Incus on ${hb.node} answers again`, { node: hb.node });
    }

    let links = this.links.get(hb.cluster);
    if (!links) {
      links = new Map();
      this.links.set(hb.cluster, links);
    }
    let changed =
      !previous ||
      previous.incus.reachable !== hb.incus.reachable ||
      previous.incus.clustered !== hb.incus.clustered ||
      previous.incus.version !== hb.incus.version ||
      signatureBefore !== n.viewSignature ||
      (previous.clockOffsetMs !== null && hb.clock.offsetMs !== null && Math.abs(previous.clockOffsetMs) > this.options.clockOffsetLimitMs !== Math.abs(hb.clock.offsetMs) > this.options.clockOffsetLimitMs);
    for (const p of hb.latency.peers) {
      const key = linkKey(hb.node, p.node);
      const state: LinkState = p.rttMs === null ? "down" : p.rttMs > this.options.latencyThresholdMs ? "slow" : "ok";
      const link = links.get(key);
      if (link?.state !== state) changed = true;
      if (link) {
        // Updated in place: one long-lived object per link rather than eight new ones per heartbeat.
        link.address = p.address;
        link.rttMs = p.rttMs;
        link.state = state;
        link.at = now;
        if (p.error) link.error = p.error;
        else delete link.error;
      } else {
        links.set(key, { from: hb.node, to: p.node, address: p.address, rttMs: p.rttMs, state, ...(p.error ? { error: p.error } : {}), at: now });
      }
    }
    if (changed) this.dirty.add(hb.cluster);
  }

  /**
   * Marks agents that stopped heartbeating and re-evaluates the clusters
   * where something changed, those waiting out a split view's grace period,
   * and every cluster every few seconds (for links that went quiet).
   */
  async sweep(now = Date.now()): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      this.markLost(now);
      const full = now - this.lastFullSweep >= FULL_SWEEP_MS;
      if (full) this.lastFullSweep = now;
      for (const [cluster, track] of this.tracks) if (track.splitSince !== null || track.held || (track.agreeSince !== null && now - track.agreeSince < this.options.splitGraceMs * 2)) this.dirty.add(cluster);
      // A dirty cluster is evaluated at most once a second: lost agents and daemons are caught elsewhere, at once.
      const recent = (c: string) => now - (this.cached.get(c)?.at ?? 0) < MIN_EVALUATION_GAP_MS;
      const clusters = [...(full ? new Set([...this.nodes.values()].map((n) => n.cluster)) : this.dirty)].filter((c) => full || !recent(c));
      for (const c of clusters) this.dirty.delete(c);
      for (const cluster of clusters) {
        this.health(cluster, now);
        // Heartbeats and requests get their turn between clusters.
        if (clusters.length > 1) await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.sweeping = false;
    }
  }

  private markLost(now: number): void {
    for (const n of this.nodes.values()) {
      const silentFor = now - n.lastSeenAt;
      if (!n.lost && this.relevant(n.cluster, n.node, n) && silentFor > n.intervalMs * this.options.lostAfterIntervals) {
        n.lost = true;
        this.dirty.add(n.cluster);
        this.events.publish(n.cluster, "agent.lost", `no heartbeat from the agent of ${n.node} for ${(silentFor / 1000).toFixed(1)} s`, {
          node: n.node,
          data: { silentMs: silentFor, intervalMs: n.intervalMs },
        });
      }
    }
  }

  private clusterNodes(cluster: string): NodeLive[] {
    return [...this.nodes.values()].filter((n) => n.cluster === cluster && this.relevant(cluster, n.node, n));
  }

  /** An agent whose word counts: alive, with its Incus answering. */
  private usable(n: NodeLive, now: number): boolean {
    return this.isAgentOnline(n.cluster, n.node, now) && !!n.last?.incus.reachable;
  }

  /** The view most usable agents share (the leader's on a tie), so one confused member cannot speak for the cluster. */
  private chosenView(nodes: NodeLive[], now: number): ClusterView | null {
    const counts = new Map<string, { view: ClusterView; count: number; leader: boolean }>();
    for (const n of nodes) {
      if (!this.usable(n, now) || !n.view?.ok) continue;
      const sig = n.viewSignature;
      const leader = sig.includes(`${n.node}:true:database-leader`);
      const entry = counts.get(sig) ?? { view: n.view, count: 0, leader: false };
      entry.count += 1;
      entry.leader ||= leader;
      counts.set(sig, entry);
    }
    let best: { view: ClusterView; count: number; leader: boolean } | null = null;
    for (const e of counts.values()) {
      if (!best || e.count > best.count || (e.count === best.count && e.leader && !best.leader)) best = e;
    }
    return best?.view ?? null;
  }

  /**
   * The cluster's health. Readers that can live with a result a little old
   * pass `maxAgeMs`: at thousands of agents, working it out for every
   * request would cost more than everything else the coordinator does.
   */
  health(cluster: string, now = Date.now(), maxAgeMs = 0): ClusterHealth {
    const hit = this.cached.get(cluster);
    // Nothing has changed in a cluster the sweep did not mark: its last evaluation still stands, up to the next full sweep.
    if (hit && maxAgeMs > 0 && (now - hit.at <= maxAgeMs || (!this.dirty.has(cluster) && now - hit.at < FULL_SWEEP_MS))) return hit.health;
    const health = this.evaluate(cluster, now);
    this.cached.set(cluster, { at: now, health });
    return health;
  }

  /** How many times a cluster's health has been worked out: a reader notices a re-evaluation by a change here. */
  evaluations(cluster: string): number {
    return this.evaluationCount.get(cluster) ?? 0;
  }

  private intern(cluster: string, view: ClusterView): ClusterView {
    let known = this.views.get(cluster);
    if (!known) {
      known = new Map();
      this.views.set(cluster, known);
    }
    const key = JSON.stringify(view);
    const shared = known.get(key);
    if (shared) return shared;
    if (known.size >= MAX_VIEWS_PER_CLUSTER) known.delete(known.keys().next().value!);
    known.set(key, view);
    return view;
  }

  private evaluate(cluster: string, now: number): ClusterHealth {
    this.evaluationCount.set(cluster, this.evaluations(cluster) + 1);
    const nodes = this.clusterNodes(cluster);
    const track = this.track(cluster);
    const byName = new Map(nodes.map((n) => [n.node, n]));
    const fresh = this.chosenView(nodes, now);
    // When no member can read the database (quorum lost), decisions rest on the last view any could read.
    const view = fresh ?? nodes.reduce<{ view: ClusterView; at: number } | null>((best, n) => (n.lastGood && (!best || n.lastGood.at > best.at) ? n.lastGood : best), null)?.view ?? null;
    const reasons: HealthReason[] = [];

    // What Incus says, made stricter by what the agents know sooner.
    const members = view
      ? view.members.map((m) => {
          const n = byName.get(m.name);
          const agentSilent = !!n && !this.isAgentOnline(cluster, m.name, now);
          const effectiveStatus = n?.last && !n.last.incus.reachable && !agentSilent ? "Offline" : m.status;
          return { ...m, effectiveStatus, safetyStatus: agentSilent ? "Offline" : effectiveStatus };
        })
      : null;
    const quorum = members ? quorumOf(members.map((m) => ({ name: m.name, status: m.effectiveStatus, roles: m.roles }))) : null;

    const explained = new Set<string>();
    for (const n of nodes) {
      if (!this.isAgentOnline(cluster, n.node, now)) reasons.push({ code: "agent-lost", message: `agent of ${n.node} is silent` });
      else if (n.last && !n.last.incus.reachable) reasons.push({ code: "incus-down", message: `Incus on ${n.node} is unreachable: ${n.last.incus.error ?? "no answer"}` });
      else continue;
      explained.add(n.node);
    }
    for (const m of members ?? []) {
      if (!isOnline(m.effectiveStatus) && !explained.has(m.name)) reasons.push({ code: "member-offline", message: `${m.name} is offline: ${m.message || m.status}` });
    }
    const readers = nodes.filter((n) => this.usable(n, now) && n.last?.incus.clustered && n.view);
    if (!fresh && readers.length > 0) {
      reasons.push({
        code: "database-unavailable",
        message: `no member can read the cluster database (${readers.map((n) => `${n.node}: ${n.view?.error ?? "no answer"}`).join("; ")})`,
      });
    }
    if (quorum && !quorum.hasQuorum) {
      reasons.unshift({ code: "quorum-lost", message: `quorum lost: ${quorum.onlineVoters} of ${quorum.voters} voters online, ${quorum.majority} needed` });
    } else if (quorum && quorum.voters >= 3 && quorum.failuresTolerated === 0) {
      reasons.unshift({ code: "quorum-at-risk", message: `no failure tolerated: ${quorum.onlineVoters} of ${quorum.voters} voters online` });
    }

    // Links: only between members whose agents and daemons are up does a failed probe mean a cut.
    const links = [...(this.links.get(cluster)?.values() ?? [])].filter((l) => now - l.at < 30_000 && byName.has(l.from));
    const slow = new Set<string>();
    const down = new Set<string>();
    for (const l of links) {
      const ends = [byName.get(l.from), byName.get(l.to)];
      const endsUp = ends.every((n) => n && this.usable(n, now));
      if (l.state === "slow") slow.add(linkKey(l.from, l.to));
      // A refused connection means the peer's host answered: its daemon is down, the network is not cut.
      if (l.state === "down" && endsUp && l.error !== "ECONNREFUSED") down.add(linkKey(l.from, l.to));
    }
    for (const k of slow) {
      const l = links.find((x) => linkKey(x.from, x.to) === k)!;
      reasons.push({ code: "link-slow", message: `link ${l.from} → ${l.to} takes ${l.rttMs?.toFixed(1)} ms, over ${this.options.latencyThresholdMs} ms` });
    }
    for (const k of down) {
      const l = links.find((x) => linkKey(x.from, x.to) === k)!;
      reasons.push({ code: "link-down", message: `${l.from} cannot reach ${l.to} at ${l.address}: ${l.error ?? "no answer"}` });
    }
    this.diffSet(cluster, track.slow, slow, "link.slow", (k) => {
      const l = links.find((x) => linkKey(x.from, x.to) === k)!;
      return { message: `link ${l.from} → ${l.to} is slow: ${l.rttMs?.toFixed(1)} ms`, data: { from: l.from, to: l.to, rttMs: l.rttMs, thresholdMs: this.options.latencyThresholdMs } };
    });
    this.diffSet(cluster, track.down, down, "link.down", (k) => {
      const l = links.find((x) => linkKey(x.from, x.to) === k)!;
      return { message: `${l.from} cannot reach ${l.to} at ${l.address}`, data: { from: l.from, to: l.to, error: l.error ?? null } };
    });

    // Clocks and versions.
    const clockOffsets: Record<string, number> = {};
    const versions: Record<string, string> = {};
    const skewed = new Set<string>();
    for (const n of nodes) {
      if (!this.isAgentOnline(cluster, n.node, now) || !n.last) continue;
      const offset = n.last.clockOffsetMs;
      if (offset !== null) {
        clockOffsets[n.node] = offset;
        if (Math.abs(offset) > this.options.clockOffsetLimitMs) skewed.add(n.node);
      }
      if (n.last.incus.version && n.last.incus.clustered) versions[n.node] = n.last.incus.version;
    }
    for (const node of skewed) reasons.push({ code: "clock-skew", message: `clock of ${node} is ${clockOffsets[node]!.toFixed(0)} ms off` });
    this.diffSet(cluster, track.skewed, skewed, "clock.skewed", (node) => ({
      message: `clock of ${node} is ${clockOffsets[node]?.toFixed(0)} ms off the coordinator`,
      data: { node, offsetMs: clockOffsets[node] ?? null, limitMs: this.options.clockOffsetLimitMs },
    }));
    const distinct = new Set(Object.values(versions));
    const mismatch = distinct.size > 1;
    if (mismatch) reasons.push({ code: "version-mismatch", message: `members run different Incus versions: ${[...distinct].join(", ")}` });
    if (mismatch !== track.mismatch) {
      track.mismatch = mismatch;
      this.events.publish(cluster, mismatch ? "version.mismatch" : "version.matched", mismatch ? `members run different Incus versions: ${[...distinct].join(", ")}` : "all members run the same Incus version", { data: { versions } });
    }

    // Split views: a member that cannot read the database while others can, members that disagree on who is online, or a cut link.
    const splits: string[] = [];
    const usable = nodes.filter((n) => this.usable(n, now) && n.last?.incus.clustered);
    const okViews = usable.filter((n) => n.view?.ok);
    for (const n of usable) {
      if (n.view && !n.view.ok && okViews.length > 0) splits.push(`${n.node} cannot read the cluster database (${n.view.error ?? "no answer"}) while ${okViews.map((o) => o.node).join(", ")} can`);
    }
    const statusBy = new Map<string, Map<boolean, string[]>>();
    for (const n of okViews) {
      for (const m of n.view!.members) {
        const seen = statusBy.get(m.name) ?? new Map<boolean, string[]>();
        const up = isOnline(m.status);
        seen.set(up, [...(seen.get(up) ?? []), n.node]);
        statusBy.set(m.name, seen);
      }
    }
    for (const [member, seen] of statusBy) {
      if (seen.size > 1) splits.push(`agents disagree whether ${member} is online (online for ${seen.get(true)!.join(", ")}, offline for ${seen.get(false)!.join(", ")})`);
    }
    for (const k of down) {
      const [from, to] = k.split(">");
      splits.push(`${from} cannot reach ${to} though both are up`);
    }
    if (splits.length > 0) {
      track.agreeSince = null;
      track.splitSince ??= now;
    } else {
      track.splitSince = null;
      track.agreeSince ??= now;
    }
    const splitLasting = track.splitSince !== null && now - track.splitSince >= this.options.splitGraceMs;
    const agreeLasting = track.agreeSince !== null && now - track.agreeSince >= this.options.splitGraceMs;
    for (const s of splits) reasons.push({ code: "split-view", message: s });

    const quorumLost = !!quorum && !quorum.hasQuorum;
    const holdReasons: string[] = [];
    if (quorumLost) holdReasons.push(reasons[0]!.message);
    if (splitLasting || (track.held && track.heldReasons.some((r) => !r.startsWith("quorum")) && !agreeLasting)) {
      holdReasons.push(...(splits.length > 0 ? splits : track.heldReasons.filter((r) => !r.startsWith("quorum"))));
    }
    const held = holdReasons.length > 0;
    track.held = held;
    track.heldReasons = holdReasons;

    let status: ClusterHealth["status"] = "unknown";
    if (quorum) status = quorumLost ? "quorum-lost" : reasons.length > 0 || held ? "degraded" : "healthy";

    const degradedSignature = status === "healthy" || status === "unknown" ? "" : `${status}|${reasons.map((r) => r.code).sort().join(",")}|${held}`;
    if (degradedSignature !== track.degradedSignature) {
      if (degradedSignature && (status === "quorum-lost" || held || !track.degradedSignature)) {
        this.events.publish(cluster, "cluster.degraded", `cluster ${cluster} is ${status}${held ? "; destructive actions are held" : ""}: ${reasons.map((r) => r.message).join("; ")}`, {
          data: { status, held, reasons },
        });
      } else if (!degradedSignature && track.degradedSignature) {
        this.events.publish(cluster, "cluster.recovered", `cluster ${cluster} is healthy again`, { data: {} });
      }
      track.degradedSignature = degradedSignature;
    }
    const rolesSignature = members ? members.map((m) => `${m.name}=${m.roles.join("+")}`).sort().join(",") : "";
    if (rolesSignature && rolesSignature !== track.rolesSignature) {
      if (track.rolesSignature) {
        this.events.publish(cluster, "roles.changed", `database roles changed: ${rolesSignature}`, { data: { roles: Object.fromEntries(members!.map((m) => [m.name, m.roles])) } });
      }
      track.rolesSignature = rolesSignature;
    }
    track.quorumLost = quorumLost;

    const guidance = guidanceFor({ cluster, quorum, members, held, splits: track.held ? holdReasons : [] });
    return { status, quorum, members, reasons, hold: { held, reasons: holdReasons }, links, clockOffsets, versions, guidance };
  }

  private diffSet(
    cluster: string,
    previous: Set<string>,
    current: Set<string>,
    kind: "link.slow" | "link.down" | "clock.skewed",
    describe: (key: string) => { message: string; data: Record<string, unknown> },
  ): void {
    for (const k of current) {
      if (previous.has(k)) continue;
      const d = describe(k);
      this.events.publish(cluster, kind, d.message, { data: d.data });
      previous.add(k);
    }
    for (const k of [...previous]) {
      if (current.has(k)) continue;
      previous.delete(k);
      if (kind === "clock.skewed") this.events.publish(cluster, "clock.recovered", `clock of ${k} is back in step`, { node: k, data: { node: k } });
      else {
        const [from, to] = k.split(">");
        this.events.publish(cluster, "link.recovered", `link ${from} → ${to} is back to normal`, { data: { from, to } });
      }
    }
  }

  allNodes(): NodeLive[] {
    return [...this.nodes.values()];
  }
}
