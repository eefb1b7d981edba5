import type { Problem } from "../errors.js";

export interface MemberSpec {
  name: string;
  /**
   * False for a host the Salt pillar only gives by address (its
   * `cluster.https_address`): it takes the name of the agent that enrolls
   * from that address, and nothing is asked of it until then.
   */
  named: boolean;
  /** host:port of the member's cluster address, canonical. */
  address: string;
  description: string;
  failureDomain: string;
  groups: string[];
  present: boolean;
  force: boolean;
  /** The SHA-256 of the host's Incus server certificate, when the spec pins it. */
  fingerprint: string | null;
}

export interface ResourceSpec {
  name: string;
  description: string;
  /** Cluster-wide keys. */
  config: Record<string, string>;
  /** Member-specific keys, by member. */
  memberConfig: Record<string, Record<string, string>>;
  /** Member-specific keys every member gets unless `memberConfig` gives its own. */
  memberDefaults: Record<string, string>;
  /** False: delete it from the cluster. */
  present: boolean;
}

export interface PoolSpec extends ResourceSpec {
  driver: string;
}

export interface NetworkSpec extends ResourceSpec {
  type: string;
}

export interface ClusterPolicy {
  /** What to do when Incus differs from the spec: set it right, or only report it. */
  drift: "correct" | "report";
  /** Delete the pools and networks incus-fleet created that the spec no longer lists. */
  prune: boolean;
}

export interface ClusterSpec {
  name: string;
  /** Explicit choice, or null when the first present member bootstraps (see `bootstrapMemberOf`). */
  bootstrap: string | null;
  /** Cluster-wide server settings. */
  config: Record<string, string>;
  members: MemberSpec[];
  pools: PoolSpec[];
  networks: NetworkSpec[];
  policy: ClusterPolicy;
}

export interface FleetSpec {
  clusters: ClusterSpec[];
}

/** Which of the accepted document shapes a spec came in. */
export type SpecShape = "clusters" | "pillar" | "minions" | "states";

/** A parsed spec: the secrets are kept apart so that the spec itself can be shown and logged. */
export interface ParsedSpec {
  spec: FleetSpec;
  passwords: Record<string, string>;
  warnings: Problem[];
  shape: SpecShape;
}

export const MIN_PASSWORD_LENGTH = 8;
export const DEFAULT_CLUSTER_NAME = "default";
export const STORAGE_DRIVERS = ["dir", "btrfs", "lvm", "lvmcluster", "zfs", "ceph", "cephfs", "cephobject", "linstor", "truenas"];
export const NETWORK_TYPES = ["bridge", "macvlan", "sriov", "ovn", "physical"];
/** Config keys Incus keeps per member (set with `?target=`), from its own lists. */
export const POOL_MEMBER_KEYS: ReadonlySet<string> = new Set(["size", "source", "source.wipe", "zfs.pool_name", "lvm.thinpool_name", "lvm.vg_name", "lvm.vg.force_reuse"]);
export const NETWORK_MEMBER_KEYS: ReadonlySet<string> = new Set(["bgp.ipv4.nexthop", "bgp.ipv6.nexthop", "bridge.external_interfaces", "parent"]);

/** Marks the pools and networks incus-fleet created, so that only its own are ever pruned. */
export const MANAGED_KEY = "user.incus-fleet";
export const MANAGED_VALUE = "managed";

/** A member's own value of a member-specific key: its own, else the default every member gets. */
export function memberConfigOf(resource: ResourceSpec, member: string): Record<string, string> {
  return { ...resource.memberDefaults, ...(resource.memberConfig[member] ?? {}) };
}
