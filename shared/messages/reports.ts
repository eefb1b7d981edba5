import Type, { type Static } from "typebox";
import { ErrorBody, FromAgent, Millis, Name, Nonce, Text } from "./fields.js";
import { NodeFacts } from "./facts.js";

/** An agent's report of what it did, the coordinator's acknowledgement, the clock request and the nudge. */

export const ReportOutcome = {
  Bootstrapped: "bootstrapped",
  Joined: "joined",
  Failed: "failed",
} as const;
export type ReportOutcome = (typeof ReportOutcome)[keyof typeof ReportOutcome];

export const Report = Type.Object({
  ...FromAgent,
  outcome: Type.Enum(ReportOutcome),
  assignment: Type.Union([Type.Literal("bootstrap"), Type.Literal("join")]),
  detail: Text,
  code: Type.Optional(Type.String({ maxLength: 64 })),
  durationMs: Millis,
  facts: NodeFacts,
});
export type Report = Static<typeof Report>;

export const Ack = Type.Union([
  Type.Object({ ok: Type.Literal(true), inReplyTo: Type.String({ maxLength: 64 }) }),
  Type.Object({ ok: Type.Literal(false), inReplyTo: Type.String({ maxLength: 64 }), error: ErrorBody }),
]);
export type Ack = Static<typeof Ack>;

export const TimeRequest = Type.Object({ cluster: Name, node: Name, nonce: Nonce });
export type TimeRequest = Static<typeof TimeRequest>;

export const TimeReply = Type.Object({ inReplyTo: Nonce, now: Type.Number() });
export type TimeReply = Static<typeof TimeReply>;

export const Nudge = Type.Object({ cluster: Name, reason: Text });
export type Nudge = Static<typeof Nudge>;
