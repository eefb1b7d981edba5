import { cancel, fail, movedBack, progress, succeed, type OperationLogic } from "./logic.js";
import type { RestoreOperation } from "./operation.js";

/**
 * A restore: wait until the member's Incus answers again (right after a
 * restart it refuses with "Server isn't ready yet"), then restore it; the
 * agent waits for the instances it moves back to run again.
 */
export const restoreLogic: OperationLogic<RestoreOperation> = {
  next(op, ctx) {
    const member = op.member!;
    if (op.cancelRequested && op.phase !== "restoring") return { kind: "update", ...cancel(op, "cancelled before it began", ctx.now) };
    const host = ctx.s.hosts[member];
    const view = ctx.s.health?.members?.find((m) => m.name === member);
    if (!host?.agentOnline || !host.facts?.incus.reachable || !view || (view.effectiveStatus !== "Evacuated" && view.effectiveStatus !== "Online")) {
      if (op.phase !== "waiting-ready") return { kind: "update", ...progress(op, "waiting-ready", `waiting for Incus on ${member} to be ready`, ctx.now) };
      return { kind: "wait", reason: `waiting for Incus on ${member} to be ready`, recheckMs: 1_000 };
    }
    const via = ctx.executor(member) ?? member;
    const body = { kind: "restore" as const, member };
    if (op.phase === "restoring") return { kind: "command", via, body, op };
    const started = progress({ ...op, data: { ...op.data, startedAt: op.data.startedAt ?? ctx.now } }, "restoring", `restoring ${member}`, ctx.now);
    return { kind: "command", via, body, op: started.op, events: started.events };
  },

  settle(op, outcome, ctx) {
    const member = op.member!;
    if (!outcome.ok) return fail(op, `Incus could not restore ${member}: ${outcome.error.message}`, ctx.now);
    if (outcome.result.kind !== "restore") return fail(op, `unexpected answer ${outcome.result.kind}`, ctx.now);
    const moved = movedBack(member, outcome.result.before, outcome.result.after);
    const durationMs = ctx.now - (op.data.startedAt ?? ctx.now);
    const done = succeed({ ...op, data: { ...op.data, moved } }, `${moved.length} instance(s) moved back in ${(durationMs / 1000).toFixed(1)} s`, ctx.now, { moved });
    return {
      op: done.op,
      events: [...done.events, { kind: "member.restored", node: member, id: `${op.id}:member.restored`, message: `${member} restored: ${moved.length} instance(s) moved back`, data: { moved, durationMs } }],
    };
  },
};
