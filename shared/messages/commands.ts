import Type, { type Static } from "typebox";
import { Address, ErrorBody, Instance, Name, Nonce, StringMap, Text } from "./fields.js";

/** What a coordinator asks an agent to do through Incus, and the results. */

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
