import Type, { type Static } from "typebox";
import { Address, ErrorBody, Millis, Name, Text, Timestamp } from "./fields.js";
import { PreflightCheck } from "./facts.js";

/** What a coordinator tells an agent to do, and its reply to a hello or a pull. */

export const MemberConfigEntry = Type.Object({
  entity: Type.String({ maxLength: 64 }),
  name: Type.String({ maxLength: 255 }),
  key: Type.String({ maxLength: 255 }),
  value: Type.String({ maxLength: 4096 }),
});
export type MemberConfigEntry = Static<typeof MemberConfigEntry>;

export const AssignmentKind = {
  Bootstrap: "bootstrap",
  Join: "join",
  Prepare: "prepare",
  Wait: "wait",
  Member: "member",
  Held: "held",
  Retired: "retired",
  Rejected: "rejected",
} as const;
export type AssignmentKind = (typeof AssignmentKind)[keyof typeof AssignmentKind];

export const Assignment = Type.Union([
  Type.Object({
    kind: Type.Literal("bootstrap"),
    serverName: Name,
    address: Address,
  }),
  Type.Object({
    kind: Type.Literal("join"),
    serverName: Name,
    address: Address,
    clusterAddress: Address,
    clusterCertificate: Type.String({ maxLength: 16384 }),
    /** The join token, sealed with the cluster key so that only an agent knowing the password can open it. */
    sealedToken: Type.String({ maxLength: 16384 }),
    memberConfig: Type.Array(MemberConfigEntry, { maxItems: 256 }),
  }),
  Type.Object({
    kind: Type.Literal("prepare"),
    reason: Text,
    target: Type.Object({ node: Name, address: Address }),
    expectedVersion: Type.Optional(Type.String({ maxLength: 64 })),
    limits: Type.Object({ latencyMs: Millis, clockOffsetMs: Millis }),
    /** Storage drivers and network types the spec asks this member to create. */
    needs: Type.Optional(Type.Object({ storageDrivers: Type.Array(Type.String({ maxLength: 64 })), networkTypes: Type.Array(Type.String({ maxLength: 64 })) })),
  }),
  Type.Object({ kind: Type.Literal("wait"), reason: Text, retryAfterMs: Millis }),
  Type.Object({ kind: Type.Literal("member"), reason: Text }),
  Type.Object({
    kind: Type.Literal("held"),
    reason: Text,
    checks: Type.Array(PreflightCheck, { maxItems: 16 }),
    retryAfterMs: Millis,
  }),
  Type.Object({ kind: Type.Literal("retired"), reason: Text }),
  Type.Object({ kind: Type.Literal("rejected"), code: Type.String({ maxLength: 64 }), reason: Text, retryAfterMs: Millis }),
]);
export type Assignment = Static<typeof Assignment>;

/** The coordinator's clock when a request arrived and when it was answered: with the agent's own two readings, a clock measurement (as NTP takes one). */
export const ServerTimes = Type.Object({ received: Timestamp, answered: Timestamp });
export type ServerTimes = Static<typeof ServerTimes>;

/**
 * A coordinator's answer to a hello or a pull. `inReplyTo` names the request
 * (its challenge or seq) and `epoch` the coordinator's lease on the cluster:
 * an agent ignores commands from an owner older than one it has heard from.
 */
export const AssignReply = Type.Union([
  Type.Object({ ok: Type.Literal(true), inReplyTo: Type.String({ maxLength: 300 }), epoch: Type.Integer({ minimum: 0 }), assignment: Assignment, times: Type.Optional(ServerTimes) }),
  Type.Object({ ok: Type.Literal(false), inReplyTo: Type.String({ maxLength: 300 }), error: ErrorBody }),
]);
export type AssignReply = Static<typeof AssignReply>;
