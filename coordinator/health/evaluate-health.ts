import { isOnline, quorumOf, type ClusterView, type EventKind, type Quorum } from "../../shared/index.js";
import { guidanceFor } from "./guidance.js";
import type { NodeLive } from "./heartbeat-ledger.js";
import type { HealthOptions, HealthReason, HealthSnapshot, HealthStatus, HealthTrack, Link, LinkState, MemberHealth } from "./health-types.js";

export interface HealthInput {
  cluster: string;
  /** The agents that speak for this cluster: its members, and hosts the spec wants in it. */
  nodes: readonly NodeLive[];
  /** Members incus-fleet is changing right now, and how: their disruptions are expected, not alarms. */
  expected: ReadonlyMap<string, string>;
  /** Members are still joining: no redundancy is expected yet. */
  forming: boolean;
  /** A rollout is upgrading Incus: members on different versions, or waiting for the others, are expected. */
  upgrading: boolean;
  now: number;
}

export interface HealthEvent {
  kind: EventKind;
  message: string;
  node?: string;
  data: Record<string, unknown>;
}

export interface HealthResult {
  snapshot: HealthSnapshot;
  track: HealthTrack;
  events: HealthEvent[];
}

const ALARM_STATUSES: ReadonlySet<HealthStatus> = new Set(["degraded", "quorum-lost"]);

function agentOnline(n: NodeLive, now: number, options: HealthOptions): boolean {
  return now - n.lastSeenAt <= n.intervalMs * options.lostAfterIntervals;
}

/** An agent whose word counts: alive, with its Incus answering. */
function usable(n: NodeLive, now: number, options: HealthOptions): boolean {
  return agentOnline(n, now, options) && !!n.incus?.reachable;
}

/** The view most usable agents share (the leader's on a tie), so one confused member cannot speak for the cluster. */
function chosenView(nodes: readonly NodeLive[], now: number, options: HealthOptions): ClusterView | null {
  const counts = new Map<string, { view: ClusterView; count: number; leader: boolean }>();
  for (const n of nodes) {
    if (!usable(n, now, options) || !n.view?.ok) continue;
    const entry = counts.get(n.viewSignature) ?? { view: n.view, count: 0, leader: false };
    entry.count += 1;
    entry.leader ||= n.viewSignature.includes(`${n.node}:true:database-leader`);
    counts.set(n.viewSignature, entry);
  }
  let best: { view: ClusterView; count: number; leader: boolean } | null = null;
  for (const e of counts.values()) {
    if (!best || e.count > best.count || (e.count === best.count && e.leader && !best.leader)) best = e;
  }
  return best?.view ?? null;
}

class ConditionBook {
  readonly events: HealthEvent[] = [];
  readonly track: HealthTrack;

  constructor(
    private readonly previous: HealthTrack,
    private readonly now: number,
  ) {
    this.track = { raised: {}, pending: {}, status: previous.status, held: previous.held, roles: previous.roles };
  }

  wasRaised(key: string): boolean {
    return key in this.previous.raised;
  }

  /**
   * Decides whether a condition is raised now. It is raised once its raw
   * form has held for `raiseAfterMs`, and cleared once it has been gone for
   * `clearAfterMs`; `suppress` keeps a condition incus-fleet expects from
   * being raised (one already raised still clears as usual).
   */
  decide(key: string, raw: boolean, options: { raiseAfterMs?: number; clearAfterMs?: number; suppress?: boolean; raise?: () => HealthEvent; clear?: () => HealthEvent }): boolean {
    const { now, previous, track } = this;
    const was = key in previous.raised;
    const since = previous.pending[key];
    if (!was) {
      if (!raw || options.suppress) return false;
      const start = since ?? now;
      if (now - start >= (options.raiseAfterMs ?? 0)) {
        track.raised[key] = now;
        if (options.raise) this.events.push(options.raise());
        return true;
      }
      track.pending[key] = start;
      return false;
    }
    if (raw) {
      track.raised[key] = previous.raised[key]!;
      return true;
    }
    const start = since ?? now;
    if (now - start >= (options.clearAfterMs ?? 0)) {
      if (options.clear) this.events.push(options.clear());
      return false;
    }
    track.raised[key] = previous.raised[key]!;
    track.pending[key] = start;
    return true;
  }
}

/**
 * Works out a cluster's health from what its agents last said. Pure: the
 * same input and track give the same snapshot and events, so it is tested
 * in tables, in no real time.
 */
export function evaluateHealth(input: HealthInput, options: HealthOptions, previous: HealthTrack): HealthResult {
  const { cluster, nodes, expected, now } = input;
  const book = new ConditionBook(previous, now);
  const byName = new Map(nodes.map((n) => [n.node, n]));
  const fresh = chosenView(nodes, now, options);
  // When no member can read the database (quorum lost), decisions rest on the last view any could read.
  const view = fresh ?? nodes.reduce<{ view: ClusterView; at: number } | null>((best, n) => (n.lastGood && (!best || n.lastGood.at > best.at) ? n.lastGood : best), null)?.view ?? null;
  const reasons: HealthReason[] = [];
  const isExpected = (member: string) => expected.has(member);

  // ---------------------------------------------------------------- agents and daemons
  const explained = new Set<string>();
  for (const n of nodes) {
    const silentMs = now - n.lastSeenAt;
    const lost = book.decide(`agent-lost:${n.node}`, !agentOnline(n, now, options), {
      suppress: isExpected(n.node),
      raise: () => ({ kind: "agent.lost", node: n.node, message: `no heartbeat from the agent of ${n.node} for ${(silentMs / 1000).toFixed(1)} s`, data: { silentMs, intervalMs: n.intervalMs } }),
      clear: () => ({ kind: "agent.returned", node: n.node, message: `agent of ${n.node} is back`, data: {} }),
    });
    const down = book.decide(`incus-down:${n.node}`, agentOnline(n, now, options) && n.incus !== null && !n.incus.reachable, {
      suppress: isExpected(n.node),
      raise: () => ({ kind: "incus.lost", node: n.node, message: `Incus on ${n.node} is unreachable: ${n.incus?.error ?? "no answer"}`, data: { error: n.incus?.error ?? null } }),
      clear: () => ({ kind: "incus.returned", node: n.node, message: `Incus on ${n.node} answers again`, data: {} }),
    });
    if (!agentOnline(n, now, options)) {
      reasons.push({ code: "agent-lost", member: n.node, message: `agent of ${n.node} is silent`, ...(lost ? {} : { expected: true }) });
      explained.add(n.node);
    } else if (n.incus && !n.incus.reachable) {
      reasons.push({ code: "incus-down", member: n.node, message: `Incus on ${n.node} is unreachable: ${n.incus.error ?? "no answer"}`, ...(down ? {} : { expected: true }) });
      explained.add(n.node);
    }
  }

  // ---------------------------------------------------------------- members and quorum
  const members: MemberHealth[] | null = view
    ? view.members.map((m) => {
        const n = byName.get(m.name);
        const silent = !!n && !agentOnline(n, now, options);
        const effectiveStatus = n?.incus && !n.incus.reachable && !silent ? "Offline" : m.status;
        // Spelled out rather than spread: fifty of these at every evaluation, and a spread copies field by field through a slow path.
        const { name, status, message, roles, url, failureDomain, groups, description } = m;
        return { name, status, message, roles, url, failureDomain, groups, description, effectiveStatus, safetyStatus: silent ? "Offline" : effectiveStatus };
      })
    : null;
  const quorum: Quorum | null = members ? quorumOf(members.map((m) => ({ name: m.name, status: m.effectiveStatus, roles: m.roles }))) : null;
  for (const m of members ?? []) {
    if (m.effectiveStatus === "Evacuated") reasons.push({ code: "member-evacuated", member: m.name, message: `${m.name} is evacuated: its instances run elsewhere until it is restored`, expected: true });
    else if (m.effectiveStatus === "Blocked") {
      reasons.push({ code: "member-blocked", member: m.name, message: `${m.name} runs newer Incus and waits for every member to be upgraded`, ...(input.upgrading ? { expected: true } : {}) });
    } else if (!isOnline(m.effectiveStatus) && !explained.has(m.name)) {
      reasons.push({ code: "member-offline", member: m.name, message: `${m.name} is offline: ${m.message || m.status}`, ...(isExpected(m.name) ? { expected: true } : {}) });
    }
  }
  const readers = nodes.filter((n) => usable(n, now, options) && n.incus?.clustered && n.view);
  if (!fresh && readers.length > 0) {
    reasons.push({ code: "database-unavailable", message: `no member can read the cluster database (${readers.map((n) => `${n.node}: ${n.view?.error ?? "no answer"}`).join("; ")})` });
  }
  if (quorum && !quorum.hasQuorum) {
    reasons.unshift({ code: "quorum-lost", message: `quorum lost: ${quorum.onlineVoters} of ${quorum.voters} voters online, ${quorum.majority} needed` });
  } else if (quorum && members && !input.forming && quorum.failuresTolerated === 0) {
    // Counting the members incus-fleet itself took down as online tells whether the lost redundancy is its own doing.
    const withExpected = quorumOf(members.map((m) => ({ name: m.name, status: isExpected(m.name) ? "Online" : m.effectiveStatus, roles: m.roles })));
    reasons.unshift({
      code: "no-redundancy",
      message: `${cluster} would not survive one more failure: ${quorum.onlineVoters} of ${quorum.voters} voters online, ${quorum.majority} needed`,
      ...(withExpected.failuresTolerated > 0 ? { expected: true } : {}),
    });
  }
  for (const [member, what] of expected) reasons.push({ code: "maintenance", member, message: `${member}: ${what}`, expected: true });

  // ---------------------------------------------------------------- links
  const links: Link[] = [];
  const worstLinkMs: Record<string, number> = {};
  // A cluster of n members has n(n-1) links, nearly all fine and never flagged: they are passed over without a
  // condition key built for each, which is what evaluating a large cluster would otherwise spend its time on.
  const flaggedFrom = new Set<string>();
  for (const key of [...Object.keys(previous.raised), ...Object.keys(previous.pending)]) {
    if (key.startsWith("link-")) flaggedFrom.add(key.slice(key.indexOf(":") + 1, key.indexOf(">")));
  }
  for (const n of nodes) {
    const fromUsable = usable(n, now, options);
    const flagged = flaggedFrom.has(n.node);
    let worst = -1;
    for (const l of n.links.values()) {
      if (now - l.at > 30_000) continue;
      const rttMs = l.rttMs;
      if (rttMs !== null && rttMs > worst) worst = rttMs;
      // A link never flagged whose last probe was fine cannot have turned slow or down: nearly every link, passed over here.
      if (!flagged && (l.latestState(options.latencyThresholdMs) === "ok" || l.state(options.linkSamples, options.latencyThresholdMs, "ok") === "ok")) continue;
      const peer = byName.get(l.to);
      // Only between members whose agents and daemons are up does a failed probe mean a cut.
      const endsUp = fromUsable && !!peer && usable(peer, now, options);
      const involved = isExpected(n.node) || isExpected(l.to);
      const key = `${n.node}>${l.to}`;
      const slowKey = `link-slow:${key}`;
      const downKey = `link-down:${key}`;
      const before: LinkState = book.wasRaised(downKey) ? "down" : book.wasRaised(slowKey) ? "slow" : "ok";
      const state = l.state(options.linkSamples, options.latencyThresholdMs, before);
      const slow = book.decide(slowKey, state === "slow", {
        suppress: involved,
        raise: () => ({ kind: "link.slow", message: `link ${n.node} → ${l.to} is slow: ${rttMs?.toFixed(1)} ms`, data: { from: n.node, to: l.to, rttMs, thresholdMs: options.latencyThresholdMs } }),
        clear: () => ({ kind: "link.recovered", message: `link ${n.node} → ${l.to} is back to normal`, data: { from: n.node, to: l.to } }),
      });
      const down = book.decide(downKey, state === "down" && endsUp, {
        suppress: involved,
        raise: () => ({ kind: "link.down", message: `${n.node} cannot reach ${l.to} at ${l.address}`, data: { from: n.node, to: l.to, error: l.error ?? null } }),
        clear: () => ({ kind: "link.recovered", message: `link ${n.node} → ${l.to} is back to normal`, data: { from: n.node, to: l.to } }),
      });
      if (!slow && !down) continue;
      const link: Link = { from: n.node, to: l.to, address: l.address, rttMs, state: down ? "down" : "slow", ...(l.error ? { error: l.error } : {}), at: l.at };
      links.push(link);
      reasons.push(
        down
          ? { code: "link-down", member: n.node, message: `${n.node} cannot reach ${l.to} at ${l.address}: ${link.error ?? "no answer"}` }
          : { code: "link-slow", member: n.node, message: `link ${n.node} → ${l.to} takes ${link.rttMs?.toFixed(1)} ms, over ${options.latencyThresholdMs} ms` },
      );
    }
    if (worst >= 0) worstLinkMs[n.node] = worst;
  }

  // ---------------------------------------------------------------- clocks and versions
  const clockOffsets: Record<string, number> = {};
  const versions: Record<string, string> = {};
  for (const n of nodes) {
    if (!agentOnline(n, now, options)) continue;
    const offset = n.clockOffsetMs;
    if (offset !== null) clockOffsets[n.node] = offset;
    const skewed = book.decide(`clock-skew:${n.node}`, offset !== null && Math.abs(offset) > options.clockOffsetLimitMs, {
      raiseAfterMs: options.clockSustainMs,
      raise: () => ({ kind: "clock.skewed", node: n.node, message: `clock of ${n.node} is ${offset?.toFixed(0)} ms off the coordinator`, data: { node: n.node, offsetMs: offset, limitMs: options.clockOffsetLimitMs } }),
      clear: () => ({ kind: "clock.recovered", node: n.node, message: `clock of ${n.node} is back in step`, data: { node: n.node } }),
    });
    if (skewed) reasons.push({ code: "clock-skew", member: n.node, message: `clock of ${n.node} is ${offset?.toFixed(0)} ms off` });
    if (n.incus?.version && n.incus.clustered) versions[n.node] = n.incus.version;
  }
  const distinct = [...new Set(Object.values(versions))];
  const mixed = book.decide("version-mismatch", distinct.length > 1, {
    raise: () => ({ kind: "version.mismatch", message: `members run different Incus versions: ${distinct.join(", ")}`, data: { versions } }),
    clear: () => ({ kind: "version.matched", message: "all members run the same Incus version", data: { versions } }),
  });
  if (mixed) reasons.push({ code: "version-mismatch", message: `members run different Incus versions: ${distinct.join(", ")}`, ...(input.upgrading ? { expected: true } : {}) });

  // ---------------------------------------------------------------- split views
  // A member that cannot read the database while others can, members that disagree on who is online, or a cut link.
  const splits: string[] = [];
  const voters = nodes.filter((n) => usable(n, now, options) && n.incus?.clustered && !isExpected(n.node));
  const okViews = voters.filter((n) => n.view?.ok);
  for (const n of voters) {
    if (n.view && !n.view.ok && okViews.length > 0) splits.push(`${n.node} cannot read the cluster database (${n.view.error ?? "no answer"}) while ${okViews.map((o) => o.node).join(", ")} can`);
  }
  // Agents that see the same thing share one view object (the ledger interns them): each distinct view is read once,
  // not once per agent, which for fifty agents would be 2,500 members looked at every evaluation.
  const observersOf = new Map<ClusterView, NodeLive[]>();
  for (const n of okViews) {
    const list = observersOf.get(n.view!);
    if (list) list.push(n);
    else observersOf.set(n.view!, [n]);
  }
  const statusBy = new Map<string, Map<boolean, Set<NodeLive>>>();
  for (const [v, observers] of observersOf) {
    for (const m of v.members) {
      if (isExpected(m.name)) continue;
      let seen = statusBy.get(m.name);
      if (!seen) {
        seen = new Map();
        statusBy.set(m.name, seen);
      }
      const up = isOnline(m.status);
      const side = seen.get(up);
      if (side) for (const o of observers) side.add(o);
      else seen.set(up, new Set(observers));
    }
  }
  const listed = (agents: Set<NodeLive>) => okViews.filter((n) => agents.has(n)).map((n) => n.node).join(", ");
  for (const [member, seen] of statusBy) {
    if (seen.size > 1) splits.push(`agents disagree whether ${member} is online (online for ${listed(seen.get(true)!)}, offline for ${listed(seen.get(false)!)})`);
  }
  for (const l of links) if (l.state === "down") splits.push(`${l.from} cannot reach ${l.to} though both are up`);
  const split = book.decide("split-view", splits.length > 0, { raiseAfterMs: options.splitGraceMs, clearAfterMs: options.splitGraceMs });
  for (const s of splits) reasons.push({ code: "split-view", message: s, ...(split ? {} : { expected: true }) });

  // ---------------------------------------------------------------- verdict
  const quorumLost = !!quorum && !quorum.hasQuorum;
  const holdReasons: string[] = [];
  if (quorumLost) holdReasons.push(reasons[0]!.message);
  if (split) holdReasons.push(...(splits.length > 0 ? splits : ["the members' views of the cluster only just agreed again"]));
  const held = holdReasons.length > 0;
  const alarms = reasons.filter((r) => !r.expected);
  let status: HealthStatus;
  if (!quorum) status = input.forming ? "forming" : "unknown";
  else if (quorumLost) status = "quorum-lost";
  else if (alarms.length > 0 || held) status = "degraded";
  else if (input.forming) status = "forming";
  else status = reasons.length > 0 ? "maintenance" : "healthy";

  const track = book.track;
  const events = book.events;
  if ((ALARM_STATUSES.has(status) && !ALARM_STATUSES.has(previous.status)) || (held && !previous.held)) {
    events.push({
      kind: "cluster.degraded",
      message: `cluster ${cluster} is ${status}${held ? "; destructive actions are held" : ""}: ${alarms.map((r) => r.message).join("; ")}`,
      data: { status, held, reasons: alarms },
    });
  } else if (!ALARM_STATUSES.has(status) && ALARM_STATUSES.has(previous.status)) {
    events.push({ kind: "cluster.recovered", message: `cluster ${cluster} is ${status} again`, data: { status } });
  }
  const roles = members ? members.map((m) => `${m.name}=${m.roles.join("+")}`).sort().join(",") : previous.roles;
  if (roles && previous.roles && roles !== previous.roles) {
    events.push({ kind: "roles.changed", message: `database roles changed: ${roles}`, data: { roles: Object.fromEntries(members!.map((m) => [m.name, m.roles])) } });
  }
  track.status = status;
  track.held = held;
  track.roles = roles;

  const guidance = guidanceFor({ cluster, quorum, members, held, splits: split ? holdReasons : [] });
  return {
    snapshot: { status, quorum, members, reasons, hold: { held, reasons: holdReasons }, links, worstLinkMs, clockOffsets, versions, guidance, evaluatedAt: now },
    track,
    events,
  };
}
