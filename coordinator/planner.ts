import { createHash } from "node:crypto";
import {
  assessAction,
  bootstrapMemberOf,
  canonicalJson,
  type ClusterSpec,
  type MemberConfigEntry,
  type MemberSpec,
  type NodeFacts,
  type PreflightCheck,
  type PreflightReport,
  type QuorumMember,
  type Verdict,
} from "../shared/index.js";
import type { BootstrapClaim, ClusterMeta, MembershipOp } from "./store.js";

/**
 * The planner is a pure function: the spec, the store's claims and locks, and
 * what agents report go in; each node's assignment and the cluster's next
 * steps come out. It does no I/O, so its rules are tested exhaustively.
 */

export interface PlannerLimits {
  latencyMs: number;
  clockOffsetMs: number;
  /** A preflight older than this is run again before a join. */
  preflightFreshMs: number;
  /** First retry delay after a failed join; doubles per failure. */
  failureBackoffMs: number;
}

export const DEFAULT_LIMITS: PlannerLimits = { latencyMs: 50, clockOffsetMs: 500, preflightFreshMs: 5_000, failureBackoffMs: 1_000 };

export interface NodeSnapshot {
  node: string;
  enrolled: boolean;
  /** Heartbeat or request seen recently. */
  agentOnline: boolean;
  facts: NodeFacts | null;
  preflight: PreflightReport | null;
  preflightAt: number | null;
  failures: number;
  lastFailure: string | null;
  lastFailureAt: number | null;
}

export interface ClusterSnapshot {
  spec: ClusterSpec;
  claim: BootstrapClaim | null;
  op: MembershipOp | null;
  nodes: Record<string, NodeSnapshot>;
  /** The members as the cluster itself reports them, or null before any member reported a view. */
  members: (QuorumMember & { description?: string; failureDomain?: string; groups?: string[] })[] | null;
  /** Destructive actions are held (split views, partition, quorum lost). */
  hold: { held: boolean; reasons: string[] };
  clusterVersion: string | null;
  meta: ClusterMeta;
  now: number;
}

export type Decision =
  | { kind: "bootstrap"; reason: string }
  | { kind: "join"; sponsor: string; reason: string }
  | { kind: "prepare"; target: { node: string; address: string }; reason: string }
  | { kind: "wait"; reason: string; retryAfterMs: number }
  | { kind: "member"; reason: string }
  | { kind: "held"; reason: string; checks: PreflightCheck[]; retryAfterMs: number }
  | { kind: "retired"; reason: string };

export type PlanStep =
  | { action: "bootstrap"; node: string; detail: string }
  | { action: "join"; node: string; via: string; detail: string }
  | { action: "apply-settings"; detail: string; config: Record<string, string>; digest: string }
  | { action: "set-member"; node: string; detail: string }
  | { action: "ensure-pool"; name: string; detail: string; digest: string }
  | { action: "ensure-network"; name: string; detail: string; digest: string }
  | { action: "remove"; node: string; force: boolean; detail: string; verdict: Verdict }
  | { action: "refused"; node: string; detail: string; verdict: Verdict | null }
  | { action: "wait"; detail: string };

export type ClusterPhase = "pending" | "bootstrapping" | "forming" | "ready";

export interface ClusterPlan {
  cluster: string;
  phase: ClusterPhase;
  decisions: Record<string, Decision>;
  /** What the coordinator would do next, in order; the first actionable step runs first. */
  steps: PlanStep[];
  sponsor: string | null;
  nextJoiner: string | null;
}

export function digestOf(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16);
}

const WAIT_SHORT_MS = 1_000;
const WAIT_LONG_MS = 5_000;

/** Whether a node's Incus is clustered into this cluster (not into some other). */
const viewNames = new WeakMap<object, Set<string>>();
const specNames = new WeakMap<object, Set<string>>();
function namesOf<T extends { name: string }>(cache: WeakMap<object, Set<string>>, list: readonly T[]): Set<string> {
  let names = cache.get(list);
  if (!names) {
    names = new Set(list.map((m) => m.name));
    cache.set(list, names);
  }
  return names;
}

export function isClusteredHere(snapshot: ClusterSnapshot, node: string): boolean {
  const facts = snapshot.nodes[node]?.facts;
  // A member whose join is still running is not a member yet, whatever else says so.
  if (!facts?.incus.clustered || facts.incus.busy) return false;
  if (snapshot.members && namesOf(viewNames, snapshot.members).has(node)) return true;
  const known = facts.incus.members;
  if (!known) return true;
  const names = namesOf(specNames, snapshot.spec.members);
  return known.some((m) => m !== node && names.has(m)) || snapshot.claim?.node === node;
}

function isReady(n: NodeSnapshot | undefined): n is NodeSnapshot {
  return !!n && n.enrolled && n.agentOnline && !!n.facts?.incus.reachable;
}

function memberOnline(snapshot: ClusterSnapshot, node: string): boolean {
  const view = snapshot.members?.find((m) => m.name === node);
  return !view || view.status === "Online";
}

/** The member whose agent mints join tokens: the bootstrap member if it can, else the first healthy member. */
export function pickSponsor(snapshot: ClusterSnapshot): MemberSpec | null {
  const candidates = snapshot.spec.members.filter(
    (m) => isReady(snapshot.nodes[m.name]) && isClusteredHere(snapshot, m.name) && memberOnline(snapshot, m.name),
  );
  return candidates.find((m) => m.name === snapshot.claim?.node) ?? candidates[0] ?? null;
}

function backoffLeft(limits: PlannerLimits, n: NodeSnapshot, now: number): number {
  if (n.failures === 0 || n.lastFailureAt === null) return 0;
  const delay = Math.min(limits.failureBackoffMs * 2 ** (n.failures - 1), 30_000);
  return Math.max(0, n.lastFailureAt + delay - now);
}

function preflightState(limits: PlannerLimits, n: NodeSnapshot, target: string, now: number, notBefore = 0): "missing" | "passed" | "failed" {
  if (!n.preflight || n.preflightAt === null || n.preflight.target !== target) return "missing";
  if (now - n.preflightAt > limits.preflightFreshMs) return "missing";
  if (n.preflight.checks.every((c) => c.ok)) return "passed";
  // A check that failed while the cluster was still being created proves nothing: run it again.
  return n.preflightAt < notBefore ? "missing" : "failed";
}

/** Member-specific keys a joiner must bring for the pools and networks the cluster already has. */
export function memberConfigFor(spec: ClusterSpec, meta: ClusterMeta, node: string): MemberConfigEntry[] {
  const out: MemberConfigEntry[] = [];
  for (const pool of spec.pools) {
    if (!meta.resourcesApplied.some((r) => r.startsWith(`pool:${pool.name}:`))) continue;
    for (const [key, value] of Object.entries(pool.memberConfig[node] ?? {})) out.push({ entity: "storage-pool", name: pool.name, key, value });
  }
  for (const network of spec.networks) {
    if (!meta.resourcesApplied.some((r) => r.startsWith(`network:${network.name}:`))) continue;
    for (const [key, value] of Object.entries(network.memberConfig[node] ?? {})) out.push({ entity: "network", name: network.name, key, value });
  }
  return out;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");
}

export function planCluster(snapshot: ClusterSnapshot, limits: PlannerLimits = DEFAULT_LIMITS): ClusterPlan {
  const { spec, claim, op, now } = snapshot;
  const decisions: Record<string, Decision> = {};
  const steps: PlanStep[] = [];
  const present = spec.members.filter((m) => m.present);
  const clustered = new Set(spec.members.filter((m) => isClusteredHere(snapshot, m.name)).map((m) => m.name));

  // Members of the running cluster that the spec no longer wants.
  const leaving = (snapshot.members ?? [])
    .filter((m) => !present.some((p) => p.name === m.name))
    .map((m) => ({ name: m.name, force: spec.members.find((s) => s.name === m.name)?.force ?? false }));
  for (const m of spec.members.filter((s) => !s.present)) {
    decisions[m.name] = clustered.has(m.name) || leaving.some((l) => l.name === m.name)
      ? { kind: "member", reason: "marked absent in the spec; its removal is pending" }
      : { kind: "retired", reason: "marked absent in the spec and not part of the cluster" };
  }

  // ---------------------------------------------------------------- bootstrap
  if (!claim || !claim.completedAt) {
    const chosen = claim ? present.find((m) => m.name === claim.node) ?? bootstrapMemberOf(spec) : bootstrapMemberOf(spec);
    const b = snapshot.nodes[chosen.name];
    const bReady = isReady(b);
    // While the bootstrap runs, the first joiner already checks it can reach the bootstrap member.
    const firstJoiner = claim ? present.find((m) => m.name !== chosen.name && isReady(snapshot.nodes[m.name]))?.name : undefined;
    for (const m of present) {
      if (m.name === chosen.name) {
        decisions[m.name] = bReady
          ? { kind: "bootstrap", reason: claim ? "finishing the bootstrap it was given" : "chosen to bootstrap the cluster" }
          : { kind: "wait", reason: `Incus on ${m.name} is not reachable; it cannot bootstrap yet`, retryAfterMs: WAIT_SHORT_MS };
      } else if (m.name === firstJoiner && bReady && preflightState(limits, snapshot.nodes[m.name]!, chosen.address, now) === "missing") {
        decisions[m.name] = { kind: "prepare", target: { node: chosen.name, address: chosen.address }, reason: `first to join once ${chosen.name} has bootstrapped` };
      } else {
        const why = !b?.enrolled ? `its agent has not enrolled yet` : !bReady ? `it is not ready` : claim ? `bootstrapping` : `about to bootstrap`;
        decisions[m.name] = { kind: "wait", reason: `waiting for ${chosen.name} to bootstrap the cluster (${why})`, retryAfterMs: WAIT_LONG_MS };
      }
    }
    steps.push(
      bReady
        ? { action: "bootstrap", node: chosen.name, detail: `${chosen.name} enables clustering at ${chosen.address}` }
        : { action: "wait", detail: `waiting for the agent of ${chosen.name} (bootstrap member) to enroll with Incus reachable` },
    );
    return { cluster: spec.name, phase: claim ? "bootstrapping" : "pending", decisions, steps, sponsor: null, nextJoiner: null };
  }

  // ---------------------------------------------------------------- joins
  const sponsor = pickSponsor(snapshot);
  const formedAt = Date.parse(claim.completedAt) || 0;
  const pending = present.filter((m) => !clustered.has(m.name));
  const joinOp = op?.kind === "join" ? op : null;
  const eligible = pending.filter((m) => {
    const n = snapshot.nodes[m.name];
    if (!isReady(n) || n.facts?.incus.busy) return false;
    if (joinOp && joinOp.node === m.name) return true;
    if (backoffLeft(limits, n, now) > 0) return false;
    return !(sponsor && preflightState(limits, n, sponsor.address, now, formedAt) === "failed");
  });
  const nextJoiner = joinOp && pending.some((m) => m.name === joinOp.node) ? joinOp.node : (eligible.find((m) => m.name !== op?.node)?.name ?? null);
  const afterNext = eligible.find((m) => m.name !== nextJoiner && m.name !== op?.node)?.name ?? null;

  for (const m of present) {
    const n = snapshot.nodes[m.name];
    if (clustered.has(m.name)) {
      decisions[m.name] = { kind: "member", reason: "a member of the cluster" };
      continue;
    }
    if (!isReady(n)) {
      decisions[m.name] = { kind: "wait", reason: `Incus on ${m.name} is not reachable`, retryAfterMs: WAIT_SHORT_MS };
      continue;
    }
    if (!sponsor) {
      decisions[m.name] = { kind: "wait", reason: "no healthy member can mint a join token right now", retryAfterMs: WAIT_SHORT_MS };
      continue;
    }
    const pf = preflightState(limits, n, sponsor.address, now, formedAt);
    if (pf === "failed") {
      const checks = n.preflight!.checks;
      const failed = checks.filter((c) => !c.ok);
      const retryAfterMs = Math.max(500, (n.preflightAt ?? now) + limits.preflightFreshMs - now);
      decisions[m.name] = { kind: "held", reason: `preflight failed: ${failed.map((c) => c.detail).join("; ")}`, checks, retryAfterMs };
      continue;
    }
    const backoff = backoffLeft(limits, n, now);
    if (backoff > 0 && joinOp?.node !== m.name) {
      decisions[m.name] = { kind: "wait", reason: `last join failed (${n.lastFailure ?? "unknown error"}); retrying`, retryAfterMs: backoff };
      continue;
    }
    const target = { node: sponsor.name, address: sponsor.address };
    if (m.name !== nextJoiner) {
      // Queued members run their preflight while they wait, so their join starts at once when it is their turn.
      decisions[m.name] =
        pf === "missing" && afterNext === m.name
          ? { kind: "prepare", target, reason: `next in line after ${nextJoiner ?? "the current change"}` }
          : { kind: "wait", reason: `queued to join after ${nextJoiner ?? op?.node ?? "the current change"}`, retryAfterMs: WAIT_LONG_MS };
      continue;
    }
    if (op && op.node !== m.name) {
      decisions[m.name] =
        pf === "missing"
          ? { kind: "prepare", target, reason: `next to join once the ${op.kind} of ${op.node} finishes` }
          : { kind: "wait", reason: `waiting for the ${op.kind} of ${op.node} to finish`, retryAfterMs: WAIT_LONG_MS };
      continue;
    }
    decisions[m.name] =
      pf === "missing"
        ? { kind: "prepare", target, reason: `preflight before joining through ${sponsor.name}` }
        : { kind: "join", sponsor: sponsor.name, reason: `joining through ${sponsor.name}` };
  }
  if (nextJoiner && sponsor) {
    steps.push({ action: "join", node: nextJoiner, via: sponsor.name, detail: `${nextJoiner} joins through ${sponsor.name}` });
  }
  for (const m of pending) {
    const d = decisions[m.name];
    if (m.name !== nextJoiner && d && (d.kind === "wait" || d.kind === "held")) steps.push({ action: "wait", detail: `${m.name}: ${d.reason}` });
  }

  // ---------------------------------------------------------------- configuration
  if (sponsor) {
    const digest = digestOf(spec.config);
    if (Object.keys(spec.config).length > 0 && snapshot.meta.settingsApplied !== digest) {
      steps.push({ action: "apply-settings", config: spec.config, digest, detail: `apply ${Object.keys(spec.config).join(", ")}` });
    }
    for (const m of present) {
      const view = snapshot.members?.find((v) => v.name === m.name);
      if (!view || view.description === undefined) continue;
      if (view.description !== m.description || view.failureDomain !== m.failureDomain || !sameSet(view.groups ?? [], m.groups)) {
        steps.push({ action: "set-member", node: m.name, detail: `set description, failure domain ${m.failureDomain} and groups ${m.groups.join(",")} of ${m.name}` });
      }
    }
    if (pending.length === 0) {
      for (const pool of spec.pools) {
        const digest = digestOf(pool);
        if (!snapshot.meta.resourcesApplied.includes(`pool:${pool.name}:${digest}`)) steps.push({ action: "ensure-pool", name: pool.name, digest, detail: `create storage pool ${pool.name} (${pool.driver}) on every member` });
      }
      for (const network of spec.networks) {
        const digest = digestOf(network);
        if (!snapshot.meta.resourcesApplied.includes(`network:${network.name}:${digest}`)) steps.push({ action: "ensure-network", name: network.name, digest, detail: `create network ${network.name} (${network.type}) on every member` });
      }
    }
  }

  // ---------------------------------------------------------------- removals
  for (const l of leaving) {
    if (op?.kind === "remove" && op.node === l.name) continue;
    const verdict = assessAction(snapshot.members ?? [], { kind: "remove", member: l.name, force: l.force });
    if (!verdict.allowed) {
      steps.push({ action: "refused", node: l.name, detail: `not removing ${l.name}: ${verdict.reasons.join("; ")}`, verdict });
    } else if (snapshot.hold.held && !l.force) {
      steps.push({ action: "refused", node: l.name, detail: `not removing ${l.name} while the cluster is held: ${snapshot.hold.reasons.join("; ")}`, verdict });
    } else {
      steps.push({ action: "remove", node: l.name, force: l.force, verdict, detail: `remove ${l.name}${l.force ? " (forced)" : ""}` });
    }
  }

  const phase: ClusterPhase = pending.length === 0 ? "ready" : "forming";
  return { cluster: spec.name, phase, decisions, steps, sponsor: sponsor?.name ?? null, nextJoiner };
}
