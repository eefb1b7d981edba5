import { guardAction } from "../planner/guard.js";
import { isReady } from "../planner/formation.js";
import { cancel, fail, movedAway, movedBack, opEvent, progress, succeed, type OpAction, type OperationContext, type OperationLogic } from "./logic.js";
import { withPhase, type RolloutOperation, type RolloutPhase } from "./operation.js";

/** How long one member may take in a phase that waits on Incus (a host that reboots takes a while). */
export const ROLLOUT_PHASE_TIMEOUT_MS = 15 * 60_000;

function atPhase(op: RolloutOperation, phase: RolloutPhase, note: string, now: number, data: Partial<RolloutOperation["data"]> = {}): RolloutOperation {
  const next = withPhase({ ...op, data: { ...op.data, ...data, memberPhase: phase, phaseSince: now } }, `${op.member}: ${phase}`, note, now);
  return { ...next, progress: { done: op.data.index, total: op.params.members.length } };
}

function moveTo(op: RolloutOperation, phase: RolloutPhase, note: string, ctx: OperationContext, data: Partial<RolloutOperation["data"]> = {}) {
  const next = atPhase(op, phase, note, ctx.now, data);
  return {
    op: next,
    events: [
      opEvent(next, {
        kind: "operation.progress",
        node: op.member ?? undefined,
        message: `rollout, member ${op.data.index + 1} of ${op.params.members.length} (${op.member}): ${note}`,
        data: { operation: op.id, kind: "rollout", phase, member: op.member, progress: next.progress },
      }),
    ],
  };
}

/** Upgraded members waiting for the others are out of service by design: the gate looks past them, nothing else. */
function withoutDeferred(op: RolloutOperation, health: NonNullable<OperationContext["s"]["health"]>): typeof health {
  if (op.data.deferred.length === 0) return health;
  const deferred = new Set(op.data.deferred);
  return {
    ...health,
    members: health.members?.map((m) => (deferred.has(m.name) ? { ...m, effectiveStatus: "Online", safetyStatus: "Online" } : m)) ?? null,
    reasons: health.reasons.filter((r) => !r.member || !deferred.has(r.member)),
  };
}

/** Why the next member cannot be taken out of service now, or null when it can. */
export function gateProblem(op: RolloutOperation, ctx: OperationContext): string | null {
  const member = op.member!;
  const health = ctx.s.health ? withoutDeferred(op, ctx.s.health) : null;
  if (!health?.members) return "the state of the cluster is not known yet";
  const alarms = health.reasons.filter((r) => !r.expected || r.code === "member-evacuated" || r.code === "maintenance");
  if (health.status === "quorum-lost" || alarms.length > 0) return `the cluster is not healthy: ${alarms.map((r) => r.message).join("; ") || health.status}`;
  if (ctx.convergence && ctx.convergence.state !== "converged") return `the cluster is ${ctx.convergence.state}: ${ctx.convergence.reason}`;
  const verdict = guardAction({ kind: "stop", member, force: false }, health);
  if (!verdict.allowed) return verdict.reasons.join("; ");
  if (!isReady(ctx.s.hosts[member])) return `the agent of ${member} is not ready`;
  if (op.params.action === "upgrade-incus" && op.params.targetVersion && op.data.index === 0) {
    const missing = op.params.members.filter((m) => {
      const f = ctx.s.hosts[m]?.facts;
      return f?.incus.version !== op.params.targetVersion && f?.candidateVersion !== op.params.targetVersion;
    });
    if (missing.length > 0) return `Incus ${op.params.targetVersion} is not available on ${missing.join(", ")}: check their package sources`;
  }
  return null;
}

/**
 * Whether the cluster is healthy again but for the rollout itself: the
 * member it works on counts as in maintenance until it moves on, and that is
 * no reason to wait.
 */
function unhealthy(op: RolloutOperation, ctx: OperationContext): string | null {
  if (!ctx.s.health) return "waiting for the cluster's health";
  const health = withoutDeferred(op, ctx.s.health);
  const others = health.reasons.filter((r) => !(r.code === "maintenance" && r.member === op.member));
  if (health.status === "quorum-lost" || others.length > 0) return `waiting for the cluster to be healthy: ${others.map((r) => r.message).join("; ") || health.status}`;
  return null;
}

/** The member's daemon is back: reachable by its agent, listed by the cluster, restarted, on the target version. */
function backOnline(op: RolloutOperation, ctx: OperationContext): string | null {
  const member = op.member!;
  const host = ctx.s.hosts[member];
  const view = ctx.s.health?.members?.find((m) => m.name === member);
  if (!host?.agentOnline) return `waiting for the agent of ${member}`;
  if (!host.facts?.incus.reachable) return `waiting for Incus on ${member} to answer`;
  if (op.data.pidBefore !== undefined && host.facts.incus.pid === op.data.pidBefore) return `waiting for Incus on ${member} to restart`;
  if (op.params.action === "upgrade-incus" && op.params.targetVersion && host.facts.incus.version !== op.params.targetVersion) return `${member} runs Incus ${host.facts.incus.version}, waiting for ${op.params.targetVersion}`;
  if (!view || (view.effectiveStatus !== "Evacuated" && view.effectiveStatus !== "Online")) return `waiting for the cluster to list ${member} online (${view?.effectiveStatus ?? "not listed"})`;
  return null;
}

/** The instances moved away from the member are back on it and running. */
function instancesBack(op: RolloutOperation, ctx: OperationContext): string | null {
  const placements = ctx.s.observed?.observation.instances;
  if (!placements || !ctx.s.observed || ctx.s.observed.at < op.data.phaseSince) return "waiting for a fresh look at the instances";
  const missing = (op.data.instances[op.member!] ?? []).filter((i) => {
    const now = placements.find((p) => p.name === i.name && p.project === i.project);
    return !now || now.location !== op.member || (i.running && now.status !== "Running");
  });
  return missing.length > 0 ? `waiting for ${missing.map((i) => i.name).join(", ")} to run on ${op.member} again` : null;
}

function timedOut(op: RolloutOperation, ctx: OperationContext, what: string): ReturnType<typeof fail<RolloutOperation>> | null {
  return ctx.now - op.data.phaseSince > ROLLOUT_PHASE_TIMEOUT_MS ? fail(op, `${op.member}: ${what} for more than ${ROLLOUT_PHASE_TIMEOUT_MS / 60_000} minutes`, ctx.now) : null;
}

/** Records what it waits for, once, so that the API and the page say why the rollout does not move. */
function waiting(op: RolloutOperation, reason: string, ctx: OperationContext): OpAction<RolloutOperation> {
  if (op.reason === reason) return { kind: "wait", reason, recheckMs: 1_000 };
  return { kind: "update", op: { ...op, reason, updatedAt: new Date(ctx.now).toISOString() } };
}

/**
 * A rolling maintenance of chosen members, one at a time: for each, a gate
 * (healthy and converged, quorum headroom, nobody else out of service,
 * stable for the settling time), evacuate, the host action by the member's
 * own agent (restart Incus, upgrade it, reboot), wait until it is back,
 * restore, wait until its instances run on it again, then the next. It can
 * be paused and cancelled between members, and resumes from its phase after
 * a coordinator dies.
 */
export const rolloutLogic: OperationLogic<RolloutOperation> = {
  next(op, ctx) {
    const member = op.member!;
    switch (op.data.memberPhase) {
      case "gate": {
        if (op.cancelRequested) return { kind: "update", ...cancel(op, `cancelled after ${op.data.completed.length} of ${op.params.members.length} members`, ctx.now) };
        if (op.pauseRequested) {
          if (op.state === "paused") return { kind: "wait", reason: "paused", recheckMs: 5_000 };
          return { kind: "update", op: { ...withPhase(op, `${member}: gate`, `paused before ${member}`, ctx.now), state: "paused" } };
        }
        if (op.state === "paused") return { kind: "update", op: { ...withPhase(op, `${member}: gate`, "resumed", ctx.now), state: "running" } };
        const problem = gateProblem(op, ctx);
        if (problem) {
          const timeout = ctx.now - op.data.phaseSince > ROLLOUT_PHASE_TIMEOUT_MS ? fail(op, `held at the gate before ${member} for too long: ${problem}`, ctx.now) : null;
          if (timeout) return { kind: "update", ...timeout };
          return waiting({ ...op, data: { ...op.data, gateSince: undefined } }, `held at the gate before ${member}: ${problem}`, ctx);
        }
        if (op.data.gateSince === undefined) return { kind: "update", op: { ...op, reason: `settling before ${member}`, data: { ...op.data, gateSince: ctx.now } } };
        if (ctx.now - op.data.gateSince < op.params.settleMs) return { kind: "wait", reason: `settling before ${member}`, recheckMs: Math.max(100, op.params.settleMs - (ctx.now - op.data.gateSince)) };
        const via = ctx.executor(member);
        if (!via) return waiting(op, `no healthy member other than ${member} to act through`, ctx);
        const next = moveTo(op, "evacuating", `evacuating ${member}`, ctx);
        return { kind: "command", via, body: { kind: "evacuate", member, mode: op.params.mode }, op: next.op, events: next.events };
      }
      case "evacuating": {
        const via = ctx.executor(member);
        if (!via) return waiting(op, `no healthy member other than ${member} to act through`, ctx);
        return { kind: "command", via, body: { kind: "evacuate", member, mode: op.params.mode }, op };
      }
      case "host-action": {
        if (op.data.actionSentAt !== undefined) {
          // Sent before this coordinator took over: it ran or is running; what the host reports tells which.
          const next = moveTo(op, "waiting-online", `waiting for ${member} to come back`, ctx);
          return { kind: "update", ...next };
        }
        const pidBefore = ctx.s.hosts[member]?.facts?.incus.pid;
        const sent = { ...op, data: { ...op.data, actionSentAt: ctx.now, ...(pidBefore !== undefined ? { pidBefore } : {}) } };
        return { kind: "command", via: member, body: { kind: "host-action", action: op.params.action, ...(op.params.targetVersion ? { targetVersion: op.params.targetVersion } : {}) }, op: sent };
      }
      case "waiting-online": {
        const host = ctx.s.hosts[member];
        const others = op.params.members.filter((m) => m !== member && !op.data.completed.includes(m) && !op.data.deferred.includes(m));
        // Newer Incus waits, its API closed, until every member runs it: take the next member and come back for this one.
        if (op.params.action === "upgrade-incus" && host?.agentOnline && host.facts?.incus.notReady && others.length > 0 && op.data.index + 1 < op.params.members.length && ctx.now - op.data.phaseSince > 10_000) {
          const nextMember = op.params.members[op.data.index + 1]!;
          const moved = moveTo({ ...op, member: nextMember, data: { ...op.data, index: op.data.index + 1, deferred: [...op.data.deferred, member] } }, "gate", `${member} waits for the other members to be upgraded (${host.facts.incus.notReady}); next ${nextMember}`, ctx, {
            gateSince: undefined,
            actionSentAt: undefined,
            pidBefore: undefined,
          });
          return { kind: "update", ...moved };
        }
        const wait = backOnline(op, ctx);
        if (wait) return timedOut(op, ctx, wait) ? { kind: "update", ...timedOut(op, ctx, wait)! } : waiting(op, wait, ctx);
        const via = ctx.executor(member) ?? member;
        const next = moveTo(op, "restoring", `${member} is back; restoring it`, ctx);
        return { kind: "command", via, body: { kind: "restore", member }, op: next.op, events: next.events };
      }
      case "restoring": {
        const via = ctx.executor(member) ?? member;
        return { kind: "command", via, body: { kind: "restore", member }, op };
      }
      case "waiting-healthy": {
        const wait = instancesBack(op, ctx) ?? unhealthy(op, ctx);
        if (wait) return timedOut(op, ctx, wait) ? { kind: "update", ...timedOut(op, ctx, wait)! } : waiting(op, wait, ctx);
        const completed = [...op.data.completed, member];
        const index = Math.min(op.data.index + 1, op.params.members.length);
        if (index >= op.params.members.length) {
          const [deferred, ...rest] = op.data.deferred;
          if (deferred) {
            const back = moveTo({ ...op, member: deferred, data: { ...op.data, completed, index, deferred: rest } }, "waiting-online", `every member is upgraded; bringing ${deferred} back`, ctx, { actionSentAt: undefined, pidBefore: undefined });
            return { kind: "update", ...back };
          }
          const done = succeed({ ...op, data: { ...op.data, completed, index }, progress: { done: index, total: op.params.members.length } }, `${completed.length} member(s) done`, ctx.now, { members: completed });
          return { kind: "update", ...done };
        }
        const nextMember = op.params.members[index]!;
        const moved = moveTo({ ...op, member: nextMember, data: { ...op.data, index, completed } }, "gate", `${member} done; next ${nextMember}`, ctx, {
          gateSince: undefined,
          actionSentAt: undefined,
          pidBefore: undefined,
        });
        return { kind: "update", ...moved };
      }
    }
  },

  settle(op, outcome, ctx) {
    const member = op.member!;
    switch (op.data.memberPhase) {
      case "evacuating": {
        if (!outcome.ok || outcome.result.kind !== "evacuate") return fail(op, `evacuating ${member} failed: ${outcome.ok ? outcome.result.kind : outcome.error.message}`, ctx.now);
        const moved = movedAway(member, outcome.result.after);
        // Its instances: those it had, and those elsewhere that name it as their origin (a resumed evacuation finds them moved already).
        const mine = new Map<string, { name: string; project: string; running: boolean }>();
        for (const i of outcome.result.after.filter((x) => x.origin === member)) mine.set(`${i.project}/${i.name}`, { name: i.name, project: i.project, running: i.status === "Running" });
        for (const i of outcome.result.before.filter((x) => x.location === member)) mine.set(`${i.project}/${i.name}`, { name: i.name, project: i.project, running: i.status === "Running" });
        const instances = { ...op.data.instances, [member]: [...mine.values()] };
        return moveTo(op, "host-action", `${moved.length} instance(s) moved away; ${op.params.action} on ${member}`, ctx, { instances });
      }
      case "host-action": {
        // A reboot takes the agent with it: no answer is the expected answer.
        if (!outcome.ok && !(op.params.action === "reboot" && outcome.error.code === "FLEET_AGENT_UNREACHABLE")) {
          const back = moveTo(op, "waiting-online", `${op.params.action} failed on ${member} (${outcome.error.message}); bringing it back before stopping`, ctx, { failure: `${op.params.action} on ${member} failed: ${outcome.error.message}` });
          return back;
        }
        return moveTo(op, "waiting-online", `${op.params.action} done on ${member}; waiting for it to come back`, ctx);
      }
      case "restoring": {
        if (!outcome.ok || outcome.result.kind !== "restore") return fail(op, `restoring ${member} failed: ${outcome.ok ? outcome.result.kind : outcome.error.message}`, ctx.now);
        if (op.data.failure) return fail(op, op.data.failure, ctx.now);
        const moved = movedBack(member, outcome.result.before, outcome.result.after);
        return moveTo(op, "waiting-healthy", `${moved.length} instance(s) moved back to ${member}; waiting for them and for the cluster`, ctx);
      }
      default:
        return { op };
    }
  },
};
