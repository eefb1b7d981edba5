import { fail, movedAway, progress, succeed, type OperationLogic } from "./logic.js";
import type { Operation, RemoveOperation } from "./operation.js";

/**
 * A removal: evacuate the member first when it still has instances (unless
 * forced), remove it, then clear the evacuation origin that instances still
 * carry for it, so that no later restore sends them anywhere wrong. It ends
 * when Incus no longer lists the member.
 */
export const removeLogic: OperationLogic<RemoveOperation> = {
  next(op, ctx) {
    const member = op.member!;
    const inView = ctx.s.health?.members?.some((m) => m.name === member) ?? false;
    const via = ctx.executor(member);
    if (!via) return { kind: "wait", reason: `no healthy member other than ${member} to act through`, recheckMs: 2_000 };
    switch (op.phase) {
      case "requested": {
        // Not knowing is treated as having some: evacuating an empty member costs a second.
        const instances = ctx.s.observed ? ctx.s.observed.observation.instances.filter((i) => i.location === member).length : null;
        if (!op.force && inView && instances !== 0) {
          return { kind: "command", via, body: { kind: "evacuate", member, mode: "migrate" }, op: progress(op, "evacuating", `moving the instances of ${member} away first`, ctx.now).op };
        }
        return { kind: "command", via, body: { kind: "remove-member", member, force: op.force }, op: progress(op, "removing", `removing ${member}${op.force ? " by force" : ""}`, ctx.now).op };
      }
      case "evacuating":
        return { kind: "command", via, body: { kind: "evacuate", member, mode: "migrate" }, op };
      case "removing":
        if (!inView) return { kind: "command", via, body: { kind: "clear-evacuation-origin", member }, op: progress(op, "cleaning-up", `clearing what instances remember of ${member}`, ctx.now).op };
        return { kind: "command", via, body: { kind: "remove-member", member, force: op.force }, op };
      case "cleaning-up":
        return { kind: "command", via, body: { kind: "clear-evacuation-origin", member }, op };
      default:
        return { kind: "update", ...fail(op, `unknown phase ${op.phase}`, ctx.now) };
    }
  },

  settle(op, outcome, ctx) {
    const member = op.member!;
    if (!outcome.ok) return fail(op, `${op.phase} of ${member} failed: ${outcome.error.message}`, ctx.now);
    const r = outcome.result;
    if (r.kind === "evacuate") {
      const moved = movedAway(member, r.after);
      return progress({ ...op, data: { ...op.data, moved } }, "removing", `${moved.length} instance(s) moved away; removing ${member}`, ctx.now);
    }
    if (r.kind === "remove-member") return progress(op, "cleaning-up", `${member} removed; clearing what instances remember of it`, ctx.now);
    if (r.kind === "clear-evacuation-origin") {
      const done = succeed({ ...op, data: { ...op.data, cleared: r.cleared } }, `${member} removed`, ctx.now, { moved: op.data.moved ?? [], cleared: r.cleared });
      return {
        op: done.op,
        events: [...done.events, { kind: "member.removed", node: member, id: `${op.id}:member.removed`, message: `${member} removed from cluster ${op.cluster}${op.force ? " by force" : ""}`, data: { force: op.force, durationMs: ctx.now - Date.parse(op.createdAt) } }],
      };
    }
    return fail(op, `unexpected answer ${r.kind}`, ctx.now);
  },
};

/** The member a removal has taken out of Incus, once it has (it is past the removal itself), or null. */
export function removedMember(op: Operation): string | null {
  return op.kind === "remove" && op.member && (op.phase === "cleaning-up" || op.state === "succeeded") ? op.member : null;
}
