import Type, { type Static, type TSchema } from "typebox";
import { NAME_PATTERN } from "./names.js";

/**
 * One TypeBox schema per wire message. Every message travels in a frame
 * (frames.ts) whose proof is checked first; then its body is checked
 * against these schemas before anything acts on it.
 */

const Name = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
const Address = Type.String({ minLength: 1, maxLength: 255 });
const Text = Type.String({ maxLength: 4096 });
const Nonce = Type.String({ pattern: "^[0-9a-f]{32,64}$" });
const Challenge = Type.String({ pattern: "^[0-9a-f]{16,200}\\.[0-9]{1,16}\\.[0-9a-f]{64}$", maxLength: 300 });
const Instance = Type.String({ pattern: "^[0-9a-f-]{8,64}$" });
const Millis = Type.Number({ minimum: 0 });
const Timestamp = Type.Number({ minimum: 0 });
const StringMap = Type.Record(Type.String({ maxLength: 256 }), Type.String({ maxLength: 4096 }));
const Fingerprint = Type.String({ pattern: "^[0-9a-f]{64}$" });

/**
 * Who is speaking: the agent process (`instance`), its message number in
 * this session (`seq`, rising) and when it sent it, by its best estimate of
 * the coordinator's clock (`sentAt`). Together they let a coordinator refuse
 * a message played back later, even one captured before it restarted.
 */
const FromAgent = {
  cluster: Name,
  node: Name,
  instance: Instance,
  seq: Type.Integer({ minimum: 1 }),
  sentAt: Timestamp,
};

export const ErrorBody = Type.Object({
  code: Type.String({ maxLength: 64 }),
  message: Text,
});
export type ErrorBody = Static<typeof ErrorBody>;

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
  /** The daemon's process id: it changes when Incus restarts. */
  pid: Type.Optional(Type.Integer({ minimum: 0 })),
  /** The daemon runs but does not serve its API yet, and why (as /internal/ready says): starting, waiting for quorum or for the other members to be upgraded. */
  notReady: Type.Optional(Type.String({ maxLength: 256 })),
});
export type IncusFacts = Static<typeof IncusFacts>;

/** What this host's Incus can create: checked before a pool or network is asked of it. */
export const Capabilities = Type.Object({
  storageDrivers: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 }),
  networkTypes: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
  /** Why a network type is missing, by type (e.g. bridge: "dnsmasq is not installed"). */
  missing: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }))),
});
export type Capabilities = Static<typeof Capabilities>;

export const NodeFacts = Type.Object({
  address: Address,
  agentVersion: Type.String({ maxLength: 64 }),
  /** SHA-256 of this host's own Incus server certificate: the same before and after it joins. */
  fingerprint: Type.Optional(Fingerprint),
  capabilities: Type.Optional(Capabilities),
  /** The Incus version the host's package manager would install, for upgrade rollouts. */
  candidateVersion: Type.Optional(Type.String({ maxLength: 64 })),
  incus: IncusFacts,
});
export type NodeFacts = Static<typeof NodeFacts>;

export const PreflightCheckName = {
  Port: "port",
  ReversePort: "reverse-port",
  Version: "version",
  Clock: "clock",
  Latency: "latency",
  Capability: "capability",
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

// ---------------------------------------------------------------- reports

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
  /** When the probe ran. Earlier agents send it; a coordinator dates a probe by when its heartbeat arrives, so it is not sent any more. */
  at: Type.Optional(Millis),
});
export type PeerLatency = Static<typeof PeerLatency>;

export const Heartbeat = Type.Object({
  ...FromAgent,
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
  Type.Literal("stateful-stop"),
  Type.Literal("force-stop"),
]);
export type EvacuationMode = Static<typeof EvacuationMode>;

/** What a host's agent may be asked to do to its own host during a rollout; the commands are the agent's own configuration. */
export const HostAction = Type.Union([Type.Literal("restart-incus"), Type.Literal("upgrade-incus"), Type.Literal("reboot")]);
export type HostAction = Static<typeof HostAction>;

const ResourceSpec = {
  name: Name,
  description: Type.String({ maxLength: 1024 }),
  config: StringMap,
  memberConfig: Type.Record(Name, StringMap),
};

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
  Type.Object({ kind: Type.Literal("clear-evacuation-origin"), member: Name }),
  /** Reads settings, pools, networks and instances; for the named pools and networks also each member's own state. */
  Type.Object({ kind: Type.Literal("observe"), pools: Type.Array(Name, { maxItems: 256 }), networks: Type.Array(Name, { maxItems: 256 }) }),
  Type.Object({ kind: Type.Literal("converge-pool"), driver: Type.String({ maxLength: 64 }), members: Type.Array(Name, { maxItems: 100 }), ...ResourceSpec }),
  Type.Object({ kind: Type.Literal("converge-network"), type: Type.String({ maxLength: 64 }), members: Type.Array(Name, { maxItems: 100 }), ...ResourceSpec }),
  Type.Object({ kind: Type.Literal("delete-pool"), name: Name }),
  Type.Object({ kind: Type.Literal("delete-network"), name: Name }),
  Type.Object({ kind: Type.Literal("host-action"), action: HostAction, targetVersion: Type.Optional(Type.String({ maxLength: 64 })) }),
]);
export type CommandBody = Static<typeof CommandBody>;
export type CommandKind = CommandBody["kind"];

export const Command = Type.Object({
  id: Nonce,
  cluster: Name,
  node: Name,
  /** The agent process this command is meant for; a restarted agent ignores its predecessor's commands. */
  instance: Instance,
  /** The sender's lease on the cluster: a command from an owner older than one the agent has heard from is refused. */
  epoch: Type.Integer({ minimum: 0 }),
  issuedAt: Type.Number(),
  body: CommandBody,
});
export type Command = Static<typeof Command>;

export const InstancePlacement = Type.Object({
  name: Type.String({ maxLength: 255 }),
  project: Type.String({ maxLength: 255 }),
  location: Type.String({ maxLength: 255 }),
  status: Type.String({ maxLength: 64 }),
  /** The member an evacuation moved it away from, while it is away. */
  origin: Type.Optional(Type.String({ maxLength: 255 })),
});
export type InstancePlacement = Static<typeof InstancePlacement>;

/** Where every instance was before and after an evacuation or restore. */
const Placements = {
  before: Type.Array(InstancePlacement, { maxItems: 10000 }),
  after: Type.Array(InstancePlacement, { maxItems: 10000 }),
};

/** A storage pool or network as one member's Incus has it. */
export const ObservedResource = Type.Object({
  name: Type.String({ maxLength: 255 }),
  /** Driver of a pool, type of a network. */
  kind: Type.String({ maxLength: 64 }),
  managed: Type.Boolean(),
  status: Type.String({ maxLength: 64 }),
  description: Type.String({ maxLength: 1024 }),
  config: StringMap,
  /** Per member: its status and its member-specific keys. */
  members: Type.Record(Type.String({ maxLength: 255 }), Type.Object({ status: Type.String({ maxLength: 64 }), config: StringMap })),
});
export type ObservedResource = Static<typeof ObservedResource>;

/** A member's description, failure domain and groups, as Incus has them. */
export const ObservedMember = Type.Object({ name: Type.String({ maxLength: 255 }), description: Type.String({ maxLength: 1024 }), failureDomain: Type.String({ maxLength: 255 }), groups: Type.Array(Type.String({ maxLength: 255 }), { maxItems: 64 }) });
export type ObservedMember = Static<typeof ObservedMember>;

export const Observation = Type.Object({
  config: StringMap,
  members: Type.Array(ObservedMember, { maxItems: 100 }),
  pools: Type.Array(ObservedResource, { maxItems: 256 }),
  networks: Type.Array(ObservedResource, { maxItems: 256 }),
  instances: Type.Array(InstancePlacement, { maxItems: 10000 }),
});
export type Observation = Static<typeof Observation>;

export const CommandResult = Type.Union([
  Type.Object({ kind: Type.Literal("mint-token"), sealedToken: Type.String({ maxLength: 16384 }), clusterCertificate: Type.String({ maxLength: 16384 }), clusterAddress: Address }),
  Type.Object({ kind: Type.Literal("probe"), reachable: Type.Boolean(), rttMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]), error: Type.Optional(Text) }),
  // What a change read back afterwards (optional: an older agent does not send it), so the coordinator need not look at the whole cluster again.
  Type.Object({ kind: Type.Literal("set-member"), member: Type.Optional(ObservedMember) }),
  Type.Object({ kind: Type.Literal("apply-config"), changed: Type.Array(Type.String({ maxLength: 256 })), config: Type.Optional(StringMap) }),
  Type.Object({ kind: Type.Literal("remove-member"), removed: Type.Boolean() }),
  Type.Object({ kind: Type.Literal("evacuate"), ...Placements }),
  Type.Object({ kind: Type.Literal("restore"), ...Placements }),
  Type.Object({ kind: Type.Literal("clear-evacuation-origin"), cleared: Type.Array(Type.String({ maxLength: 512 }), { maxItems: 10000 }) }),
  Type.Object({ kind: Type.Literal("observe"), observation: Observation }),
  Type.Object({ kind: Type.Literal("converge-pool"), changes: Type.Array(Text, { maxItems: 256 }), observed: Type.Optional(ObservedResource) }),
  Type.Object({ kind: Type.Literal("converge-network"), changes: Type.Array(Text, { maxItems: 256 }), observed: Type.Optional(ObservedResource) }),
  Type.Object({ kind: Type.Literal("delete-pool"), deleted: Type.Boolean() }),
  Type.Object({ kind: Type.Literal("delete-network"), deleted: Type.Boolean() }),
  Type.Object({ kind: Type.Literal("host-action"), detail: Text }),
]);
export type CommandResult = Static<typeof CommandResult>;

export const CommandReply = Type.Union([
  Type.Object({ ok: Type.Literal(true), inReplyTo: Nonce, result: CommandResult }),
  Type.Object({ ok: Type.Literal(false), inReplyTo: Nonce, error: ErrorBody }),
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
  TimeRequest,
  TimeReply,
  Nudge,
  Heartbeat,
  Command,
  CommandReply,
} satisfies Record<string, TSchema>;
export type WireSchemaName = keyof typeof WireSchemas;
