import Type, { type Static } from "typebox";
import { Challenge, FromAgent, Instance, Millis, Name, Timestamp } from "./fields.js";
import { NodeFacts, PreflightReport } from "./facts.js";

/** Enrollment and pulls: a challenge, the hello that proves the cluster password, and the pull for an assignment. */

export const ChallengeRequest = Type.Object({ cluster: Name, node: Name, instance: Instance });
export type ChallengeRequest = Static<typeof ChallengeRequest>;

export const ChallengeReply = Type.Object({ inReplyTo: Instance, challenge: Challenge, expiresInMs: Millis });
export type ChallengeReply = Static<typeof ChallengeReply>;

export const Hello = Type.Object({
  cluster: Name,
  node: Name,
  instance: Instance,
  challenge: Challenge,
  sentAt: Timestamp,
  facts: NodeFacts,
});
export type Hello = Static<typeof Hello>;

export const AssignRequest = Type.Object({
  ...FromAgent,
  facts: NodeFacts,
  preflight: Type.Optional(PreflightReport),
  /** A waiting agent may let the coordinator hold the request this long and answer as soon as its turn comes. */
  waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 30_000 })),
});
export type AssignRequest = Static<typeof AssignRequest>;
