import { bootstrapMemberOf } from "../../shared/index.js";
import { inBackoff, planConvergence, type StepFailure } from "./convergence.js";
import { planFormation } from "./formation.js";
import { planRemovals } from "./membership.js";
import type { ClusterPhase, ClusterPlan, ClusterSituation, Convergence, PlanChange, PlannerLimits, Step } from "./types.js";

/**
 * The planner: the spec and the cluster as it is now go in; what each host
 * is told, every change with its value now and the value wanted, and the
 * one step to take next come out. Pure, so every rule is a table entry in
 * its tests. The order of steps is the order an operator would choose:
 * bootstrap; settings that shape membership and the pools and networks
 * joiners must bring their config for; joins one at a time; removals one at
 * a time; then the rest.
 */
export function planCluster(s: ClusterSituation, limits: PlannerLimits, failures: ReadonlyMap<string, StepFailure> = new Map()): ClusterPlan {
  const formation = planFormation(s, limits);
  const removals = planRemovals(s);
  const via = formation.sponsor?.name ?? null;
  const convergence = planConvergence(s, failures, via);
  const changes: PlanChange[] = [];
  const formed = !!s.claim?.completedAt;

  const fn = formation.next;
  const bootstrapper = formed ? undefined : (s.claim?.node ?? bootstrapMemberOf(s.spec).name);
  for (const m of formation.pending) {
    const d = formation.decisions[m.name];
    const isNext = fn?.node === m.name;
    const blocked = d?.kind === "held";
    changes.push({
      object: `member ${m.name}`,
      action: m.name === bootstrapper ? "bootstrap" : "join",
      now: s.hosts[m.name]?.facts?.incus.clustered ? "joining" : "not a member",
      wanted: "member",
      status: blocked ? "blocked" : isNext ? "next" : "pending",
      reason: d && "reason" in d ? d.reason : "waiting",
    });
  }
  changes.push(...removals.changes, ...convergence.changes);

  let next: Step | null = null;
  const pick = (step: Step | null) => {
    next ??= step;
  };
  // Settings, pools and networks that joiners must find in place: they come before any join.
  const firstChanges = convergence.settingsFirst || convergence.resourcesFirst;
  // A due look at the cluster comes first: operations wait on what it shows (instances back on their member, roles).
  // Joins do not, once the cluster has been read with the settings, pools and networks they bring in: the look
  // waits until they are done, rather than slow the sponsor's Incus while it mints the next token.
  const joining = s.active ? s.active.kind === "join" : fn?.kind === "join";
  const lookAfterJoins = joining && !!s.observed && !firstChanges;
  if (formed && via && s.observationDue && !lookAfterJoins && !inBackoff(failures.get("observe"), s.now)) pick({ kind: "observe", via });
  // The next in line is probed back ahead of its turn (while a joiner takes its token, or before the first changes), so
  // that its token can be minted meanwhile and its join start at once. A probe that failed waits for its ordinary turn.
  const probeBack: Extract<Step, { kind: "probe-reverse" }> | null = fn?.kind === "probe-reverse" ? { kind: "probe-reverse", node: fn.node, via: fn.via, address: s.hosts[fn.node]?.facts?.address ?? "" } : null;
  const probeEarly = probeBack && !failures.has(`member ${probeBack.node} preflight`) ? probeBack : null;
  const joinHanded = s.active?.kind === "join" && s.active.phase === "handed";
  if (formed && via && joinHanded) pick(probeEarly);
  // The next joiner's token is minted in the background while the current join runs, or while the first changes are
  // made, so that its join starts the moment its turn comes.
  const ahead = formation.ahead;
  const aheadWhile = s.active ? joinHanded : firstChanges;
  if (formed && via && ahead && aheadWhile && !s.tokensAhead.has(ahead.node)) pick({ kind: "mint-ahead", node: ahead.node, via: ahead.sponsor });
  if (s.active) pick({ kind: "drive-operation" });
  if (fn?.kind === "claim-bootstrap" || fn?.kind === "adopt-cluster" || fn?.kind === "complete-bootstrap") pick({ kind: fn.kind, node: fn.node });
  if (formed && via) {
    if (firstChanges) {
      pick(probeEarly);
      pick(convergence.next);
    }
    pick(probeBack);
    if (fn?.kind === "join") pick({ kind: "begin-join", node: fn.node, sponsor: fn.sponsor });
    if (removals.next && formation.pending.length === 0) pick({ kind: "begin-remove", node: removals.next.node, force: removals.next.force, verdict: removals.next.verdict });
    pick(convergence.next);
  }
  // A step that has been refused for now waits; what would run next is marked as such in the plan.
  const nextStep = next as Step | null;
  if (nextStep && nextStep.kind !== "drive-operation") {
    const objectOf = (st: Step): string | null =>
      st.kind === "apply-settings" ? "setting " : st.kind === "converge-pool" || st.kind === "delete-pool" ? `pool ${st.name}` : st.kind === "converge-network" || st.kind === "delete-network" ? `network ${st.name}` : st.kind === "set-member" ? `member ${st.node} ` : st.kind === "begin-remove" ? `member ${st.node}` : null;
    const object = objectOf(nextStep);
    if (object) for (const c of changes) if (c.status === "pending" && c.object.startsWith(object)) c.status = "next";
  }

  const state = convergenceOf(changes, failures, s, formed);
  const phase: ClusterPhase = !s.claim ? "pending" : !formed ? "bootstrapping" : formation.pending.length > 0 ? "forming" : state.state === "converged" ? "ready" : "converging";
  return {
    cluster: s.spec.name,
    phase,
    decisions: formation.decisions,
    changes,
    next,
    convergence: state,
    sponsor: via,
    recheckMs: Math.min(formation.recheckMs, limits.observeEveryMs),
  };
}

function convergenceOf(changes: PlanChange[], failures: ReadonlyMap<string, StepFailure>, s: ClusterSituation, formed: boolean): { state: Convergence; reason: string } {
  const blocked = changes.find((c) => c.status === "blocked");
  if (blocked) return { state: "failed", reason: `${blocked.object}: ${blocked.reason}` };
  for (const [object, f] of failures) if (s.now - f.at < 120_000) return { state: "failed", reason: `${object}: ${f.error}` };
  const moving = changes.find((c) => c.status === "next" || c.status === "pending");
  if (moving) return { state: "converging", reason: `${moving.object}: ${moving.reason}` };
  if (formed && !s.observed) return { state: "converging", reason: "the cluster's settings, pools and networks have not been read yet" };
  if (!formed) return { state: "converging", reason: "the cluster is being formed" };
  const off = changes.find((c) => c.status === "refused" || c.status === "report-only");
  if (off) return { state: "drifted", reason: `${off.object}: ${off.reason}` };
  return { state: "converged", reason: "the cluster matches the spec" };
}
