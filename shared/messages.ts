import Type, { type Static, type TSchema } from "typebox";
import { NAME_PATTERN } from "./names.js";

/**
 * One TypeBox schema per wire message. Both sides validate every message they
 * receive against these before acting on it.
 */

const Name = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
const Address = Type.String({ minLength: 1, maxLength: 255 });
const Text = Type.String({ maxLength: 4096 });
const Mac = Type.String({ pattern: "^[0-9a-f]{64}$" });
const Nonce = Type.String({ pattern: "^[0-9a-f]{32,64}$" });
const Instance = Type.String({ pattern: "^[0-9a-f-]{8,64}$" });
const Millis = Type.Number({ minimum: 0 });
const StringMap = Type.Record(Type.String({ maxLength: 256 }), Type.String({ maxLength: 4096 }));

/** Who is speaking, and the proof that it knows the cluster password. */
const Signed = {
  cluster: Name,
  node: Name,
  instance: Instance,
  seq: Type.Integer({ minimum: 1 }),
  mac: Mac,
};

export const ErrorBody = Type.Object({
  code: Type.String({ maxLength: 64 }),
  message: Text,
});

// ---------------------------------------------------------------- facts

export const IncusFacts = Type.Object({
  /** When the agent read these facts, by its own clock: older facts never overwrite newer ones. */
  observedAt: Type.Number({ minimum: 0 }),
  reachable: Type.Boolean(),
  error: Type.Optional(Text),
  version: Type.Optional(Type.String({ maxLength: 64 })),
  apiExtensions: Type.Optional(Type.Integer({ minimum: 0 })),
  serverName: Type.Optional(Type.String({ maxLength: 255 })),
  clustered: Type.Boolean(),
  httpsAddress: Type.Optional(Type.String({ maxLength: 255 })),
  /** Names of the cluster members this daemon knows, when clustered. */
  members: Type.Optional(Type.Array(Type.String({ maxLength: 255 }), { maxItems: 100 })),
  /** An Incus operation that changes membership is running right now. */
  busy: Type.Optional(Type.Union([Type.Literal("bootstrapping"), Type.Literal("joining")])),
});
export type IncusFacts = Static<typeof IncusFacts>;

export const NodeFacts = Type.Object({
  address: Address,
  agentVersion: Type.String({ maxLength: 64 }),
  incus: IncusFacts,
});
export type NodeFacts = Static<typeof NodeFacts>;

export const PreflightCheckName = {
  Port: "port",
  ReversePort: "reverse-port",
  Version: "version",
  Clock: "clock",
  Latency: "latency",
} as const;
export type PreflightCheckName = (typeof PreflightCheckName)[keyof typeof PreflightCheckName];

export const PreflightCheck = Type.Object({
  name: Type.Enum(PreflightCheckName),
  ok: Type.Boolean(),
  detail: Text,
  fix: Type.Optional(Text),
});
export type PreflightCheck = Static<typeof PreflightCheck>;

export const PreflightReport = Type.Object({
  target: Address,
  at: Type.String({ maxLength: 64 }),
  checks: Type.Array(PreflightCheck, { maxItems: 16 }),
});
export type PreflightReport = Static<typeof PreflightReport>;

// ---------------------------------------------------------------- enrollment

export const ChallengeRequest = Type.Object({ cluster: Name, node: Name });
export type ChallengeRequest = Static<typeof ChallengeRequest>;

export const ChallengeReply = Type.Object({ nonce: Nonce, expiresInMs: Millis });
export type ChallengeReply = Static<typeof ChallengeReply>;

export const Hello = Type.Object({
  cluster: Name,
  node: Name,
  instance: Instance,
  nonce: Nonce,
  mac: Mac,
  facts: NodeFacts,
});
export type Hello = Static<typeof Hello>;

export const AssignRequest = Type.Object({
  ...Signed,
  facts: NodeFacts,
  preflight: Type.Optional(PreflightReport),
  /** A waiting agent may let the coordinator hold the request this long and answer as soon as its turn comes. */
  waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 30_000 })),
});
export type AssignRequest = Static<typeof AssignRequest>;

// ---------------------------------------------------------------- assignments

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

export const AssignReply = Type.Union([
  Type.Object({
    ok: Type.Literal(true),
    /** The nonce or seq of the request this answers, so an old reply cannot be replayed. */
    inReplyTo: Type.String({ maxLength: 128 }),
    assignment: Assignment,
    mac: Mac,
  }),
  Type.Object({ ok: Type.Literal(false), error: ErrorBody }),
]);
export type AssignReply = Static<typeof AssignReply>;

// ---------------------------------------------------------------- reports

export const ReportOutcome = {
  Bootstrapped: "bootstrapped",
  Joined: "joined",
  Failed: "failed",
} as const;
export type ReportOutcome = (typeof ReportOutcome)[keyof typeof ReportOutcome];

export const Report = Type.Object({
  ...Signed,
  outcome: Type.Enum(ReportOutcome),
  assignment: Type.Union([Type.Literal("bootstrap"), Type.Literal("join")]),
  detail: Text,
  code: Type.Optional(Type.String({ maxLength: 64 })),
  durationMs: Millis,
  facts: NodeFacts,
});
export type Report = Static<typeof Report>;

export const Ack = Type.Union([
  Type.Object({ ok: Type.Literal(true) }),
  Type.Object({ ok: Type.Literal(false), error: ErrorBody }),
]);
export type Ack = Static<typeof Ack>;

export const TimeReply = Type.Object({ now: Type.Number() });
export type TimeReply = Static<typeof TimeReply>;

export const Nudge = Type.Object({ cluster: Name, reason: Text });
export type Nudge = Static<typeof Nudge>;

// ---------------------------------------------------------------- heartbeats

export const MemberView = Type.Object({
  name: Type.String({ maxLength: 255 }),
  status: Type.String({ maxLength: 64 }),
  message: Type.String({ maxLength: 1024 }),
  roles: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
  url: Type.String({ maxLength: 512 }),
  failureDomain: Type.String({ maxLength: 255 }),
  groups: Type.Array(Type.String({ maxLength: 255 }), { maxItems: 64 }),
  description: Type.String({ maxLength: 1024 }),
});
export type MemberView = Static<typeof MemberView>;

export const ClusterView = Type.Object({
  ok: Type.Boolean(),
  error: Type.Optional(Text),
  members: Type.Array(MemberView, { maxItems: 100 }),
});
export type ClusterView = Static<typeof ClusterView>;

export const PoolState = Type.Object({
  name: Type.String({ maxLength: 255 }),
  driver: Type.String({ maxLength: 64 }),
  status: Type.String({ maxLength: 64 }),
  usedBytes: Type.Optional(Type.Number({ minimum: 0 })),
  totalBytes: Type.Optional(Type.Number({ minimum: 0 })),
});
export type PoolState = Static<typeof PoolState>;

export const PeerLatency = Type.Object({
  node: Type.String({ maxLength: 255 }),
  address: Address,
  rttMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  error: Type.Optional(Text),
  at: Millis,
});
export type PeerLatency = Static<typeof PeerLatency>;

export const Heartbeat = Type.Object({
  ...Signed,
  intervalMs: Millis,
  incus: IncusFacts,
  view: Type.Optional(ClusterView),
  pools: Type.Array(PoolState, { maxItems: 64 }),
  instances: Type.Object({ total: Type.Integer({ minimum: 0 }), running: Type.Integer({ minimum: 0 }) }),
  latency: Type.Object({
    natsMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    peers: Type.Array(PeerLatency, { maxItems: 100 }),
  }),
  clock: Type.Object({
    offsetMs: Type.Union([Type.Number(), Type.Null()]),
    rttMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  }),
});
export type Heartbeat = Static<typeof Heartbeat>;

// ---------------------------------------------------------------- commands

export const EvacuationMode = Type.Union([
  Type.Literal("auto"),
  Type.Literal("migrate"),
  Type.Literal("live-migrate"),
  Type.Literal("stop"),
]);
export type EvacuationMode = Static<typeof EvacuationMode>;

export const CommandBody = Type.Union([
  Type.Object({ kind: Type.Literal("mint-token"), joiner: Name }),
  Type.Object({ kind: Type.Literal("probe"), address: Address, attempts: Type.Integer({ minimum: 1, maximum: 10 }) }),
  Type.Object({
    kind: Type.Literal("set-member"),
    member: Name,
    description: Type.String({ maxLength: 1024 }),
    failureDomain: Type.String({ maxLength: 255 }),
    groups: Type.Array(Name, { maxItems: 64 }),
  }),
  Type.Object({ kind: Type.Literal("apply-config"), config: StringMap }),
  Type.Object({ kind: Type.Literal("remove-member"), member: Name, force: Type.Boolean() }),
  Type.Object({ kind: Type.Literal("evacuate"), member: Name, mode: EvacuationMode }),
  Type.Object({ kind: Type.Literal("restore"), member: Name }),
  Type.Object({
    kind: Type.Literal("ensure-pool"),
    name: Name,
    driver: Type.String({ maxLength: 64 }),
    description: Type.String({ maxLength: 1024 }),
    config: StringMap,
    memberConfig: Type.Record(Name, StringMap),
  }),
  Type.Object({
    kind: Type.Literal("ensure-network"),
    name: Name,
    type: Type.String({ maxLength: 64 }),
    description: Type.String({ maxLength: 1024 }),
    config: StringMap,
    memberConfig: Type.Record(Name, StringMap),
  }),
]);
export type CommandBody = Static<typeof CommandBody>;
export type CommandKind = CommandBody["kind"];

export const Command = Type.Object({
  id: Nonce,
  cluster: Name,
  node: Name,
  /** The agent process this command is meant for; a restarted agent ignores its predecessor's commands. */
  instance: Instance,
  issuedAt: Type.Number(),
  body: CommandBody,
  mac: Mac,
});
export type Command = Static<typeof Command>;

export const InstancePlacement = Type.Object({
  name: Type.String({ maxLength: 255 }),
  project: Type.String({ maxLength: 255 }),
  location: Type.String({ maxLength: 255 }),
  status: Type.String({ maxLength: 64 }),
});
export type InstancePlacement = Static<typeof InstancePlacement>;

/** Where every instance was before and after an evacuation or restore. */
const Placements = {
  before: Type.Array(InstancePlacement, { maxItems: 10000 }),
  after: Type.Array(InstancePlacement, { maxItems: 10000 }),
};

export const CommandResult = Type.Union([
  Type.Object({ kind: Type.Literal("mint-token"), sealedToken: Type.String({ maxLength: 16384 }), clusterCertificate: Type.String({ maxLength: 16384 }), clusterAddress: Address }),
  Type.Object({ kind: Type.Literal("probe"), reachable: Type.Boolean(), rttMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]), error: Type.Optional(Text) }),
  Type.Object({ kind: Type.Literal("set-member") }),
  Type.Object({ kind: Type.Literal("apply-config"), changed: Type.Array(Type.String({ maxLength: 256 })) }),
  Type.Object({ kind: Type.Literal("remove-member") }),
  Type.Object({ kind: Type.Literal("evacuate"), ...Placements }),
  Type.Object({ kind: Type.Literal("restore"), ...Placements }),
  Type.Object({ kind: Type.Literal("ensure-pool"), created: Type.Boolean() }),
  Type.Object({ kind: Type.Literal("ensure-network"), created: Type.Boolean() }),
]);
export type CommandResult = Static<typeof CommandResult>;

export const CommandReply = Type.Union([
  Type.Object({ ok: Type.Literal(true), inReplyTo: Nonce, result: CommandResult, mac: Mac }),
  Type.Object({ ok: Type.Literal(false), inReplyTo: Nonce, error: ErrorBody, mac: Mac }),
]);
export type CommandReply = Static<typeof CommandReply>;

/** Every schema a receiver checks, by the name used in counters and logs. */
export const WireSchemas = {
  ChallengeRequest,
  ChallengeReply,
  Hello,
  AssignRequest,
  AssignReply,
  Report,
  Ack,
  TimeReply,
  Nudge,
  Heartbeat,
  Command,
  CommandReply,
} satisfies Record<string, TSchema>;
export type WireSchemaName = keyof typeof WireSchemas;
