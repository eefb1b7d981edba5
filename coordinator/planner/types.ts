import type { ClusterSpec, EvacuationMode, NodeFacts, Observation, PreflightCheck, PreflightReport, Verdict } from "../../shared/index.js";
import type { HealthSnapshot } from "../health/health-types.js";
import type { Operation } from "../operations/operation.js";
import type { BootstrapClaim } from "../store/records.js";

export interface PlannerLimits {
  latencyMs: number;
  clockOffsetMs: number;
  /** A preflight older than this is run again before a join. */
  preflightFreshMs: number;
  /** First retry delay after a failed join; doubles per failure. */
  failureBackoffMs: number;
  /** How old the last look at the cluster's settings, pools and networks may be. */
  observeEveryMs: number;
}

export const DEFAULT_LIMITS: PlannerLimits = { latencyMs: 50, clockOffsetMs: 500, preflightFreshMs: 5_000, failureBackoffMs: 1_000, observeEveryMs: 30_000 };

/** One host as the planner sees it. */
export interface HostView {
  node: string;
  /** The agent holds a session (a verified hello). */
  enrolled: boolean;
  /** Heard from recently. */
  agentOnline: boolean;
  facts: NodeFacts | null;
  preflight: { report: PreflightReport; at: number } | null;
  failures: number;
  lastFailure: string | null;
  lastFailureAt: number | null;
}

/** What the cluster's settings, pools and networks look like in Incus, read by one member's agent. */
export interface ObservedState {
  at: number;
  via: string;
  observation: Observation;
}

export type DriftPolicy = "correct" | "report";

/** Everything a plan is made from: the desired state and the state as it is now. */
export interface ClusterSituation {
  spec: ClusterSpec;
  claim: BootstrapClaim | null;
  /** The operation holding the cluster's lock. */
  active: Operation | null;
  hosts: Record<string, HostView>;
  health: HealthSnapshot | null;
  observed: ObservedState | null;
  /** The settings, pools and networks are to be read again: the last look is old, or something was just changed. */
  observationDue: boolean;
  /** Members removed moments ago, which views read before their removal still list. */
  recentlyRemoved: ReadonlySet<string>;
  /** Members whose join token has been minted ahead of their turn (or is being minted). */
  tokensAhead: ReadonlySet<string>;
  now: number;
}

export type Decision =
  | { kind: "bootstrap"; reason: string }
  | { kind: "join"; sponsor: string; reason: string }
  | { kind: "prepare"; target: { node: string; address: string }; reason: string }
  | { kind: "wait"; reason: string; retryAfterMs: number }
  | { kind: "member"; reason: string }
  | { kind: "held"; reason: string; checks: PreflightCheck[]; retryAfterMs: number }
  | { kind: "retired"; reason: string };

/** One difference between the spec and the cluster, with the value now and the value wanted. */
export interface PlanChange {
  /** What it is about: "member node2", "setting cluster.max_voters", "pool local", "network br0". */
  object: string;
  action: "bootstrap" | "join" | "remove" | "set" | "create" | "update" | "delete" | "finish";
  now: unknown;
  wanted: unknown;
  /**
   * - `next`: what the coordinator does next;
   * - `pending`: will follow, in order;
   * - `refused`: the rules say no (the reason says which);
   * - `blocked`: cannot be done by incus-fleet (Incus does not allow it) or waits on something outside it;
   * - `report-only`: the cluster's drift policy is to report, not correct.
   */
  status: "next" | "pending" | "refused" | "blocked" | "report-only";
  reason: string;
}

/** The one thing the coordinator does next for a cluster. */
export type Step =
  | { kind: "claim-bootstrap"; node: string }
  /** A present member is clustered already and no bootstrap was ever claimed: the cluster exists, adopt it. */
  | { kind: "adopt-cluster"; node: string }
  | { kind: "complete-bootstrap"; node: string }
  | { kind: "begin-join"; node: string; sponsor: string }
  | { kind: "begin-remove"; node: string; force: boolean; verdict: Verdict }
  | { kind: "drive-operation" }
  | { kind: "probe-reverse"; node: string; via: string; address: string }
  /** The next joiner's token, minted in the background while something else runs. */
  | { kind: "mint-ahead"; node: string; via: string }
  | { kind: "observe"; via: string }
  | { kind: "apply-settings"; via: string; set: Record<string, string> }
  | { kind: "set-member"; via: string; node: string }
  | { kind: "converge-pool"; via: string; name: string }
  | { kind: "converge-network"; via: string; name: string }
  | { kind: "delete-pool"; via: string; name: string }
  | { kind: "delete-network"; via: string; name: string };

/** Where a cluster stands: `ready` means formed and converged to the spec. */
export type ClusterPhase = "pending" | "bootstrapping" | "forming" | "converging" | "ready";

export type Convergence = "converged" | "converging" | "drifted" | "failed";

export interface ClusterPlan {
  cluster: string;
  phase: ClusterPhase;
  decisions: Record<string, Decision>;
  changes: PlanChange[];
  next: Step | null;
  convergence: { state: Convergence; reason: string };
  sponsor: string | null;
  /** Look again this soon even if nothing changes (backoffs, stale observations). */
  recheckMs: number;
}

export type EvacuateRequest = { member: string; mode: EvacuationMode; force: boolean };
