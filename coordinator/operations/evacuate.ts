import { cancel, fail, movedAway, progress, succeed, type OperationLogic } from "./logic.js";
import type { EvacuateOperation } from "./operation.js";

/**
 * An evacuation: one command to an agent of another member, which asks Incus
 * to evacuate and waits for it. The agent recognises an evacuation already
 * running or done (after a coordinator or agent restart) and waits for it or
 * reports it, so resuming the phase is safe.
 */
export const evacuateLogic: OperationLogic<EvacuateOperation> = {
  next(op, ctx) {
    const member = op.member!;
    if (op.cancelRequested && op.phase === "requested") return { kind: "update", ...cancel(op, "cancelled before it began", ctx.now) };
    const via = ctx.executor(member) ?? ctx.executor();
    if (!via) return { kind: "wait", reason: "no healthy member to act through", recheckMs: 2_000 };
    const body = { kind: "evacuate" as const, member, mode: op.params.mode };
    // Resumed: the agent finds the evacuation running or done and reports it; the record already says so.
    if (op.phase === "evacuating") return { kind: "command", via, body, op };
    const started = progress({ ...op, data: { ...op.data, startedAt: ctx.now } }, "evacuating", `evacuating ${member} (mode ${op.params.mode})`, ctx.now);
    return { kind: "command", via, body, op: started.op, events: started.events };
  },

  settle(op, outcome, ctx) {
    const member = op.member!;
    if (!outcome.ok) return fail(op, `Incus could not evacuate ${member}: ${outcome.error.message}`, ctx.now);
    if (outcome.result.kind !== "evacuate") return fail(op, `unexpected answer ${outcome.result.kind}`, ctx.now);
    const moved = movedAway(member, outcome.result.after);
    const durationMs = ctx.now - (op.data.startedAt ?? ctx.now);
    const done = succeed({ ...op, data: { ...op.data, moved } }, `${moved.length} instance(s) moved in ${(durationMs / 1000).toFixed(1)} s`, ctx.now, { moved });
    return {
      op: done.op,
      events: [...done.events, { kind: "member.evacuated", node: member, id: `${op.id}:member.evacuated`, message: `${member} evacuated: ${moved.length} instance(s) moved`, data: { moved, durationMs, mode: op.params.mode } }],
    };
  },
};
