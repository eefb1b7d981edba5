import type { EventSpec } from "../events/event-log.js";
import { isClusteredHere } from "../planner/formation.js";
import { cancel, fail, progress, succeed, type OperationLogic } from "./logic.js";
import type { JoinOperation } from "./operation.js";

/**
 * A join: the sponsor's agent mints a token for the joiner ("minting"),
 * the joiner is handed it on its next pull and joins ("handed"). It ends
 * when Incus lists the joiner as a member, or fails when the joiner reports
 * a failure, or when the join takes longer than the timeout.
 */
export const joinLogic: OperationLogic<JoinOperation> = {
  next(op, ctx) {
    const joiner = op.member!;
    const host = ctx.s.hosts[joiner];
    if (isClusteredHere(ctx.s, joiner)) {
      const { op: done, events } = succeed(op, `${joiner} joined`, ctx.now);
      return { kind: "update", op: done, events: [...events, { kind: "join.completed", node: joiner, id: `${op.id}:join.completed`, message: `${joiner} joined cluster ${op.cluster}`, data: { durationMs: ctx.now - Date.parse(op.createdAt), detail: "Incus lists it as a member" } }] };
    }
    // A token minted ahead of the member's turn is handed out at once.
    if (op.phase === "requested" && op.data.token) return { kind: "update", ...handOut(op, op.data.token, ctx.now) };
    const failedAt = host?.lastFailureAt ?? 0;
    if (op.data.handedAt !== undefined && failedAt > op.data.handedAt) {
      return { kind: "update", ...fail(op, `${joiner} reported: ${host?.lastFailure ?? "the join failed"}`, ctx.now) };
    }
    if (op.phase === "minting" || !op.data.token) {
      if (op.cancelRequested) return { kind: "update", ...cancel(op, "cancelled before the token was handed out", ctx.now) };
      const sponsor = op.params.sponsor;
      if (!ctx.s.hosts[sponsor]?.agentOnline) return { kind: "update", ...fail(op, `${sponsor}, which was to mint the token, is not answering`, ctx.now) };
      const next = progress(op, "minting", `${sponsor} mints a join token for ${joiner}`, ctx.now);
      return { kind: "command", via: sponsor, body: { kind: "mint-token", joiner }, op: next.op };
    }
    const busy = host?.facts?.incus.busy === "joining";
    const since = op.data.handedAt ?? op.data.token.mintedAt;
    if (ctx.now - since > ctx.joinTimeoutMs && !busy) {
      return { kind: "update", ...fail(op, `the join did not finish within ${Math.round(ctx.joinTimeoutMs / 1000)} s`, ctx.now) };
    }
    if (op.cancelRequested && !busy) return { kind: "update", ...cancel(op, "cancelled; the token is not used", ctx.now) };
    return { kind: "wait", reason: busy ? `${joiner} is joining` : `waiting for ${joiner} to take its token`, recheckMs: 1_000 };
  },

  settle(op, outcome, ctx) {
    if (!outcome.ok) return fail(op, `could not mint a join token through ${op.params.sponsor}: ${outcome.error.message}`, ctx.now);
    if (outcome.result.kind !== "mint-token") return fail(op, `unexpected answer ${outcome.result.kind}`, ctx.now);
    const { sealedToken, clusterCertificate, clusterAddress } = outcome.result;
    return handOut(op, { sealedToken, clusterCertificate, clusterAddress, mintedAt: ctx.now }, ctx.now);
  },
};

/** The joiner is given the token on its next pull (its held pull is answered at once). */
function handOut(op: JoinOperation, token: NonNullable<JoinOperation["data"]["token"]>, now: number): { op: JoinOperation; events: EventSpec[] } {
  const handed = progress({ ...op, data: { ...op.data, token, handedAt: now } }, "handed", `token minted; ${op.member} joins through ${op.params.sponsor}`, now);
  return {
    op: handed.op,
    events: [...handed.events, { kind: "join.started", node: op.member!, id: `${op.id}:join.started`, message: `${op.member} joins through ${op.params.sponsor}`, data: { via: op.params.sponsor, clusterAddress: token.clusterAddress } }],
  };
}
