import type { FleetSpec, NodeFacts, PreflightReport, Problem } from "../../shared/index.js";

/**
 * The desired state as stored. Passwords are not kept: each cluster's keys,
 * derived from its password, are stored with the spec they belong to, so
 * that a password change lands with its spec or not at all. The API never
 * serves them; agents' credentials cannot read any bucket.
 */
export interface StoredSpec {
  spec: FleetSpec;
  keys: Record<string, ClusterSecrets>;
  warnings: Problem[];
  appliedAt: string;
  /** Who wrote this revision: the API, a spec file at start, or an action that changes the desired state. */
  source: string;
  /**
   * The last spec file a coordinator applied at start, and its digest: the
   * file is applied again only when it changed since, so a restart never
   * undoes a newer revision made through the API.
   */
  lastFile: { path: string; digest: string } | null;
}

export interface ClusterSecrets {
  mac: string;
  seal: string;
}

export interface BootstrapClaim {
  node: string;
  claimedAt: string;
  completedAt?: string;
  /** The cluster already existed when incus-fleet first saw it. */
  adopted?: boolean;
}

/** What a coordinator must remember about one host across restarts and handovers. */
export interface NodeRecord {
  cluster: string;
  node: string;
  /** The host's own Incus server certificate, pinned at its first enrollment (or given in the spec). */
  identity: { fingerprint: string; pinnedAt: string } | null;
  /** The agent process holding the session, set only by a verified hello. */
  session: { instance: string; startedAt: number } | null;
  /** The last facts it reported that matter beyond the moment (reachability, membership, version, capabilities). */
  facts: NodeFacts | null;
  factsAt: number | null;
  preflight: { report: PreflightReport; at: number } | null;
  /** Failed joins in a row, for backoff. */
  failures: number;
  lastFailure: string | null;
  lastFailureAt: number | null;
  /** Why its agent was last refused (a wrong password, another certificate), until it enrolls. */
  rejection?: { code: string; message: string; at: number } | null;
}

export function emptyNodeRecord(cluster: string, node: string): NodeRecord {
  return { cluster, node, identity: null, session: null, facts: null, factsAt: null, preflight: null, failures: 0, lastFailure: null, lastFailureAt: null };
}

export interface LeaseRecord {
  owner: string;
  ownerName: string;
  acquiredAt: number;
}

export interface CoordinatorRecord {
  id: string;
  name: string;
  startedAt: number;
  /** Clusters this coordinator owns, as of its last renewal. */
  owns: number;
}
