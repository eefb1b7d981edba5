import type { Assignment, NodeFacts, Observation, ObservedResource, PreflightCheck } from "../../shared/index.js";
import type { HealthSnapshot, HealthTrack } from "../health/health-types.js";
import type { ClusterPhase, Convergence, PlanChange } from "../planner/types.js";

export interface HostStatus {
  name: string;
  /** What the host was last told to do, and why. */
  assignment: { kind: Assignment["kind"]; reason: string } | null;
  /** Why its agent was last refused, when that came after its last enrollment. */
  rejection: { code: string; message: string; at: number } | null;
  enrolled: boolean;
  agentOnline: boolean;
  lastSeenAt: number | null;
  lastHeartbeatAt: number | null;
  facts: NodeFacts | null;
  instances: { total: number; running: number } | null;
  clockOffsetMs: number | null;
  preflight: { target: string; checks: PreflightCheck[]; at: number } | null;
  failures: number;
  lastFailure: string | null;
  lastFailureAt: number | null;
  /** The Incus server certificate pinned for this host. */
  fingerprint: string | null;
}

export interface ObservedSummary {
  at: number;
  via: string;
  config: Record<string, string>;
  members: Observation["members"];
  pools: ObservedResource[];
  networks: ObservedResource[];
  /** Instances per member: how many, how many running. */
  instances: Record<string, { total: number; running: number }>;
}

/**
 * What the owner of a cluster knows of it, written to the store when it
 * changes, so that every coordinator's API, CLI and page show the same
 * thing, and a new owner carries the health track on without repeating or
 * losing an event.
 */
export interface ClusterStatusRecord {
  cluster: string;
  at: number;
  owner: { id: string; name: string; epoch: number };
  phase: ClusterPhase;
  convergence: { state: Convergence; reason: string };
  /** Objects found differing from the spec that were not being changed: changed by hand, or broken. */
  drifted: string[];
  health: HealthSnapshot;
  track: HealthTrack;
  changes: PlanChange[];
  next: string | null;
  hosts: HostStatus[];
  observed: ObservedSummary | null;
  failures: { object: string; error: string; at: number; count: number }[];
}
