import Type, { type Static } from "typebox";
import { NAME_PATTERN } from "../names.js";

/** The document shapes a spec may come in, as TypeBox schemas: validation names every field that is wrong. */

const ConfigValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);
const ConfigMap = Type.Record(Type.String({ minLength: 1 }), ConfigValue);
const MemberName = Type.String({ pattern: NAME_PATTERN });
const Fingerprint = Type.String({ pattern: "^[0-9a-fA-F:]{64,95}$" });

export const MemberInput = Type.Object(
  {
    address: Type.String({ minLength: 1 }),
    description: Type.Optional(Type.String()),
    failure_domain: Type.Optional(Type.String({ minLength: 1 })),
    groups: Type.Optional(Type.Array(MemberName)),
    /** `false` removes the member from the cluster; the Salt `cluster_member_absent` state. */
    present: Type.Optional(Type.Boolean()),
    /** With `present: false`: remove even when the member is offline for good. */
    force: Type.Optional(Type.Boolean()),
    /** Accepted per member for the Salt pillar shape; all members of a cluster must agree. */
    cluster_password: Type.Optional(Type.String()),
    /** Pins the host's Incus server certificate (its SHA-256) instead of trusting its first enrollment. */
    certificate_fingerprint: Type.Optional(Fingerprint),
    /** The key is a stand-in: the agent that enrolls from this address names the member. */
    named_by_agent: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const ResourceFields = {
  description: Type.Optional(Type.String()),
  config: Type.Optional(ConfigMap),
  member_config: Type.Optional(Type.Record(Type.String(), ConfigMap)),
  present: Type.Optional(Type.Boolean()),
};

export const PoolInput = Type.Object({ driver: Type.String({ minLength: 1 }), ...ResourceFields }, { additionalProperties: false });

export const NetworkInput = Type.Object(
  { type: Type.Optional(Type.String({ minLength: 1 })), network_type: Type.Optional(Type.String({ minLength: 1 })), ...ResourceFields },
  { additionalProperties: false },
);

export const ServerSettingsInput = Type.Object({ config: Type.Optional(ConfigMap) }, { additionalProperties: false });

const Policy = {
  /** `correct` (the default) sets differences right; `report` only reports them. */
  drift_policy: Type.Optional(Type.Union([Type.Literal("correct"), Type.Literal("report")])),
  /** Delete pools and networks incus-fleet created once the spec drops them. */
  prune: Type.Optional(Type.Boolean()),
};

export const ClusterInput = Type.Object(
  {
    cluster_password: Type.Optional(Type.String()),
    bootstrap: Type.Optional(Type.String()),
    server_settings: Type.Optional(ServerSettingsInput),
    members: Type.Record(Type.String(), MemberInput),
    storage_pools: Type.Optional(Type.Record(Type.String(), PoolInput)),
    networks: Type.Optional(Type.Record(Type.String(), NetworkInput)),
    ...Policy,
  },
  { additionalProperties: false },
);

/** The Salt pillar's `incus:` key (and its seed variants `incus_bootstrap`, `incus_cluster`, `incus_join`). */
export const PillarInput = Type.Object(
  {
    cluster_name: Type.Optional(Type.String()),
    bootstrap: Type.Optional(Type.String()),
    cluster_password: Type.Optional(Type.String()),
    server_settings: Type.Optional(ServerSettingsInput),
    cluster_members: Type.Optional(Type.Record(Type.String(), MemberInput)),
    storage_pools: Type.Optional(Type.Record(Type.String(), PoolInput)),
    networks: Type.Optional(Type.Record(Type.String(), NetworkInput)),
    ...Policy,
  },
  // Other pillar keys (instances, profiles, images…) belong to other Salt states; they are reported as warnings.
  { additionalProperties: true },
);

export const NativeInput = Type.Object({ clusters: Type.Record(Type.String(), ClusterInput) }, { additionalProperties: false });

/** The arguments of the formula's `cluster_member_present` and `cluster_member_absent` states, as `state.show_sls` renders them. */
export const MemberStateArgs = Type.Object(
  {
    name: Type.Optional(MemberName),
    address: Type.Optional(Type.String({ minLength: 1 })),
    cluster_password: Type.Optional(Type.String()),
    force: Type.Optional(Type.Boolean()),
    description: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export type MemberInput = Static<typeof MemberInput>;
export type PoolInput = Static<typeof PoolInput>;
export type NetworkInput = Static<typeof NetworkInput>;
export type ClusterInput = Static<typeof ClusterInput>;
export type PillarInput = Static<typeof PillarInput>;
export type MemberStateArgs = Static<typeof MemberStateArgs>;
