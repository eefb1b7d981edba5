import Type, { type Static } from "typebox";
import { Address, Fingerprint, Text } from "./fields.js";

/** What an agent tells of its host: its Incus, its capabilities, its preflight. */

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
