/**
 * One TypeBox schema per wire message, one file per kind of exchange. Every
 * message travels in a frame (../frames.ts) whose proof is checked first;
 * then its body is checked against these schemas before anything acts on it.
 */
import type { TSchema } from "typebox";
import { ErrorBody } from "./fields.js";
import { AssignRequest, ChallengeReply, ChallengeRequest, Hello } from "./enrollment.js";
import { AssignReply } from "./assignments.js";
import { Ack, Nudge, Report, TimeReply, TimeRequest } from "./reports.js";
import { Heartbeat } from "./heartbeats.js";
import { Command, CommandReply } from "./commands.js";

export { ErrorBody };
export * from "./facts.js";
export * from "./enrollment.js";
export * from "./assignments.js";
export * from "./reports.js";
export * from "./heartbeats.js";
export * from "./commands.js";

/** Every schema a receiver checks, by the name used in counters and logs. */
export const WireSchemas = {
  ChallengeRequest,
  ChallengeReply,
  Hello,
  AssignRequest,
  AssignReply,
  Report,
  Ack,
  TimeRequest,
  TimeReply,
  Nudge,
  Heartbeat,
  Command,
  CommandReply,
} satisfies Record<string, TSchema>;
export type WireSchemaName = keyof typeof WireSchemas;
