import { bootstrapMemberOf, type MemberSpec } from "../../shared/index.js";
import type { ClusterSituation, Decision, HostView, PlannerLimits } from "./types.js";

const WAIT_SHORT_MS = 1_000;
const WAIT_LONG_MS = 5_000;

/** The members as the cluster reports them, without those removed a moment ago that old views still list. */
export function viewMembers(s: ClusterSituation): { name: string; status: string; roles: string[] }[] | null {
  const members = s.health?.members;
  if (!members) return null;
  return members.filter((m) => !s.recentlyRemoved.has(m.name)).map((m) => ({ name: m.name, status: m.safetyStatus, roles: m.roles }));
}

/** Whether a host's Incus is clustered into this cluster (not into some other). */
export function isClusteredHere(s: ClusterSituation, node: string): boolean {
  const facts = s.hosts[node]?.facts;
  // A member whose join is still running is not a member yet, whatever else says so.
  if (facts?.incus.busy) return false;
  // The cluster listing it is the authority: a member whose own daemon is down is still a member, not a joiner.
  if (s.health?.members?.some((m) => m.name === node) && !s.recentlyRemoved.has(node)) return true;
  if (!facts?.incus.clustered) return false;
  const known = facts.incus.members;
  if (!known) return true;
  return known.some((m) => m !== node && s.spec.members.some((x) => x.name === m)) || s.claim?.node === node;
}

export function isReady(h: HostView | undefined): h is HostView {
  return !!h && h.enrolled && h.agentOnline && !!h.facts?.incus.reachable;
}

function memberOnline(s: ClusterSituation, node: string): boolean {
  const view = s.health?.members?.find((m) => m.name === node);
  return !view || view.effectiveStatus === "Online";
}

/** The member whose agent mints join tokens and runs cluster-wide calls: the bootstrap member if it can, else the first healthy one. */
export function pickSponsor(s: ClusterSituation, exclude?: string): MemberSpec | null {
  const candidates = s.spec.members.filter((m) => m.name !== exclude && isReady(s.hosts[m.name]) && isClusteredHere(s, m.name) && memberOnline(s, m.name));
  const leader = s.health?.members?.find((m) => m.roles.includes("database-leader"))?.name;
  return candidates.find((m) => m.name === s.claim?.node) ?? candidates.find((m) => m.name === leader) ?? candidates[0] ?? null;
}

export function backoffLeft(limits: PlannerLimits, h: HostView, now: number): number {
  if (h.failures === 0 || h.lastFailureAt === null) return 0;
  const delay = Math.min(limits.failureBackoffMs * 2 ** (h.failures - 1), 30_000);
  return Math.max(0, h.lastFailureAt + delay - now);
}

export type PreflightState = "missing" | "reverse-missing" | "passed" | "failed";

/** Where a host's preflight towards `target` stands. A check that failed before `notBefore` (the cluster was still being created) proves nothing. */
export function preflightState(limits: PlannerLimits, h: HostView, target: string, now: number, notBefore = 0): PreflightState {
  const pf = h.preflight;
  if (!pf || pf.report.target !== target || now - pf.at > limits.preflightFreshMs) return "missing";
  if (pf.report.checks.some((c) => !c.ok)) return pf.at < notBefore ? "missing" : "failed";
  return pf.report.checks.some((c) => c.name === "reverse-port") ? "passed" : "reverse-missing";
}

export interface FormationPlan {
  decisions: Record<string, Decision>;
  /** The member that bootstraps or joins next. */
  next:
    | { kind: "claim-bootstrap"; node: string }
    | { kind: "adopt-cluster"; node: string }
    | { kind: "complete-bootstrap"; node: string }
    | { kind: "bootstrap"; node: string } | { kind: "join"; node: string; sponsor: string } | { kind: "probe-reverse"; node: string; via: string } | null;
  /** The member whose turn comes next, through its preflight both ways: its token can be minted ahead. */
  ahead: { node: string; sponsor: string } | null;
  waiting: { node: string; reason: string }[];
  sponsor: MemberSpec | null;
  pending: MemberSpec[];
  recheckMs: number;
}

/**
 * Formation: exactly one member bootstraps, ever (the claim in the store
 * decides), then the others join one at a time, each after a preflight both
 * ways, with backoff after a failure.
 */
export function planFormation(s: ClusterSituation, limits: PlannerLimits): FormationPlan {
  const { spec, claim, active, now } = s;
  const decisions: Record<string, Decision> = {};
  const waiting: { node: string; reason: string }[] = [];
  const present = spec.members.filter((m) => m.present);
  const clustered = new Set(spec.members.filter((m) => isClusteredHere(s, m.name)).map((m) => m.name));
  let recheckMs = WAIT_LONG_MS;

  const settled = (name: string) => {
    const f = s.hosts[name]?.facts;
    return isReady(s.hosts[name]) && !!f?.incus.clustered && !f.incus.busy;
  };
  if (!claim) {
    // Incus already runs a cluster (formed by hand, or before incus-fleet): adopted, never bootstrapped a second time.
    const existing = present.find((m) => settled(m.name));
    if (existing) {
      for (const m of present) decisions[m.name] = { kind: "wait", reason: `adopting the cluster ${existing.name} is already part of`, retryAfterMs: WAIT_SHORT_MS };
      return { decisions, next: { kind: "adopt-cluster", node: existing.name }, ahead: null, waiting, sponsor: null, pending: present.filter((m) => !clustered.has(m.name)), recheckMs: WAIT_SHORT_MS };
    }
  }
  if (claim && !claim.completedAt && settled(claim.node)) {
    for (const m of present) decisions[m.name] = { kind: "wait", reason: `${claim.node} has bootstrapped; recording it`, retryAfterMs: WAIT_SHORT_MS };
    return { decisions, next: { kind: "complete-bootstrap", node: claim.node }, ahead: null, waiting, sponsor: null, pending: present.filter((m) => !clustered.has(m.name)), recheckMs: WAIT_SHORT_MS };
  }
  if (!claim || !claim.completedAt) {
    const chosen = claim ? (present.find((m) => m.name === claim.node) ?? bootstrapMemberOf(spec)) : bootstrapMemberOf(spec);
    const b = s.hosts[chosen.name];
    const ready = isReady(b);
    for (const m of present) {
      if (m.name === chosen.name) {
        const backoff = b ? backoffLeft(limits, b, now) : 0;
        // Nobody is told to bootstrap before the choice is in the store: that is what makes it once, ever.
        decisions[m.name] = !ready
          ? { kind: "wait", reason: `Incus on ${m.name} is not reachable; it cannot bootstrap yet`, retryAfterMs: WAIT_SHORT_MS }
          : !claim
            ? { kind: "wait", reason: "chosen to bootstrap; the choice is being recorded", retryAfterMs: WAIT_SHORT_MS }
            : backoff > 0
              ? { kind: "wait", reason: `the last bootstrap failed (${b!.lastFailure ?? "unknown error"}); retrying`, retryAfterMs: backoff }
              : { kind: "bootstrap", reason: "chosen to bootstrap the cluster" };
      } else {
        const why = !b?.enrolled ? "its agent has not enrolled yet" : !ready ? "it is not ready" : claim ? "bootstrapping" : "about to bootstrap";
        decisions[m.name] = { kind: "wait", reason: `waiting for ${chosen.name} to bootstrap the cluster (${why})`, retryAfterMs: WAIT_LONG_MS };
      }
    }
    if (!ready) waiting.push({ node: chosen.name, reason: `waiting for the agent of ${chosen.name} (bootstrap member) to enroll with Incus reachable` });
    const next = ready ? (claim ? { kind: "bootstrap" as const, node: chosen.name } : { kind: "claim-bootstrap" as const, node: chosen.name }) : null;
    return { decisions, next, ahead: null, waiting, sponsor: null, pending: present.filter((m) => !clustered.has(m.name)), recheckMs: WAIT_SHORT_MS };
  }

  const sponsor = pickSponsor(s);
  const formedAt = Date.parse(claim.completedAt) || 0;
  const pending = present.filter((m) => !clustered.has(m.name));
  const joinOp = active?.kind === "join" ? active : null;
  const otherOp = active && active.kind !== "join" ? active : null;
  const target = sponsor ? { node: sponsor.name, address: sponsor.address } : null;

  const eligible = pending.filter((m) => {
    const h = s.hosts[m.name];
    if (!isReady(h) || h.facts?.incus.busy) return false;
    if (joinOp?.member === m.name) return true;
    if (backoffLeft(limits, h, now) > 0) return false;
    return !(target && preflightState(limits, h, target.address, now, formedAt) === "failed");
  });
  const nextJoiner = joinOp && pending.some((m) => m.name === joinOp.member) ? joinOp.member! : (eligible[0]?.name ?? null);
  const afterNext = eligible.find((m) => m.name !== nextJoiner)?.name ?? null;
  let next: FormationPlan["next"] = null;
  let ahead: FormationPlan["ahead"] = null;

  for (const m of spec.members.filter((x) => !x.present)) {
    decisions[m.name] = clustered.has(m.name) || s.health?.members?.some((v) => v.name === m.name)
      ? { kind: "member", reason: "marked absent in the spec; its removal is pending" }
      : { kind: "retired", reason: "marked absent in the spec and not part of the cluster" };
  }
  for (const m of present) {
    const h = s.hosts[m.name];
    if (clustered.has(m.name)) {
      decisions[m.name] = { kind: "member", reason: "a member of the cluster" };
      continue;
    }
    if (!isReady(h)) {
      const why = !m.named ? `waiting for the agent at ${m.address} to enroll and give its name` : s.hosts[m.name]?.enrolled ? `Incus on ${m.name} is not reachable` : `waiting for the agent of ${m.name} to enroll`;
      decisions[m.name] = { kind: "wait", reason: why, retryAfterMs: WAIT_SHORT_MS };
      waiting.push({ node: m.name, reason: (decisions[m.name] as { reason: string }).reason });
      continue;
    }
    if (!target) {
      decisions[m.name] = { kind: "wait", reason: "no healthy member can mint a join token right now", retryAfterMs: WAIT_SHORT_MS };
      waiting.push({ node: m.name, reason: "no healthy member can mint a join token right now" });
      continue;
    }
    const pf = preflightState(limits, h, target.address, now, formedAt);
    if (pf === "failed" && joinOp?.member !== m.name) {
      const checks = h.preflight!.report.checks;
      const failed = checks.filter((c) => !c.ok).map((c) => `${c.detail}${c.fix ? ` (fix: ${c.fix})` : ""}`).join("; ");
      const retryAfterMs = Math.max(500, h.preflight!.at + limits.preflightFreshMs - now);
      decisions[m.name] = { kind: "held", reason: `preflight failed: ${failed}`, checks, retryAfterMs };
      waiting.push({ node: m.name, reason: `held at preflight: ${failed}` });
      recheckMs = Math.min(recheckMs, retryAfterMs);
      continue;
    }
    const backoff = backoffLeft(limits, h, now);
    if (backoff > 0 && joinOp?.member !== m.name) {
      decisions[m.name] = { kind: "wait", reason: `last join failed (${h.lastFailure ?? "unknown error"}); retrying`, retryAfterMs: backoff };
      waiting.push({ node: m.name, reason: `retrying a failed join in ${Math.ceil(backoff / 1000)} s: ${h.lastFailure ?? "unknown error"}` });
      recheckMs = Math.min(recheckMs, backoff);
      continue;
    }
    if (joinOp?.member === m.name) {
      decisions[m.name] = joinOp.data.token
        ? { kind: "join", sponsor: joinOp.params.sponsor, reason: `joining through ${joinOp.params.sponsor}` }
        : { kind: "wait", reason: `a join token is being minted by ${joinOp.params.sponsor}`, retryAfterMs: WAIT_SHORT_MS };
      continue;
    }
    if (m.name !== nextJoiner || joinOp || otherOp) {
      const behind = joinOp?.member ?? otherOp?.member ?? nextJoiner;
      const blocking = otherOp ? `the ${otherOp.kind} of ${otherOp.member}` : behind ?? "the current change";
      // The member next in line runs its preflight while it waits, so its join starts at once when its turn comes.
      decisions[m.name] =
        pf === "missing" && (m.name === nextJoiner || m.name === afterNext)
          ? { kind: "prepare", target, reason: `next in line after ${blocking}` }
          : { kind: "wait", reason: `queued to join after ${blocking}`, retryAfterMs: WAIT_LONG_MS };
      if (pf === "reverse-missing" && !next) next = { kind: "probe-reverse", node: m.name, via: target.node };
      if (pf === "passed" && joinOp && m.name === afterNext) ahead = { node: m.name, sponsor: target.node };
      continue;
    }
    if (pf === "missing") {
      decisions[m.name] = { kind: "prepare", target, reason: `preflight before joining through ${target.node}` };
      continue;
    }
    if (pf === "reverse-missing") {
      decisions[m.name] = { kind: "wait", reason: `${target.node} checks that it can reach ${m.name} back`, retryAfterMs: WAIT_SHORT_MS };
      next = { kind: "probe-reverse", node: m.name, via: target.node };
      continue;
    }
    decisions[m.name] = { kind: "wait", reason: `about to join through ${target.node}`, retryAfterMs: WAIT_SHORT_MS };
    next = { kind: "join", node: m.name, sponsor: target.node };
    ahead = { node: m.name, sponsor: target.node };
  }
  if (pending.length > 0) recheckMs = Math.min(recheckMs, WAIT_SHORT_MS);
  return { decisions, next, ahead, waiting, sponsor, pending, recheckMs };
}
