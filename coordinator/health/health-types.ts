import type { MemberView, Quorum } from "../../shared/index.js";

export interface HealthOptions {
  /** An agent is lost after this many missed heartbeats. */
  lostAfterIntervals: number;
  latencyThresholdMs: number;
  clockOffsetLimitMs: number;
  /** A split view must last this long before the cluster is held, and agreement this long before it is released. */
  splitGraceMs: number;
  /** A link is slow (or fine again) only when this many probes in a row say so. */
  linkSamples: number;
  /** A clock must be off for this long before it is flagged: one measurement on a loaded host proves nothing. */
  clockSustainMs: number;
}

export const DEFAULT_HEALTH_OPTIONS: HealthOptions = {
  lostAfterIntervals: 3,
  latencyThresholdMs: 50,
  clockOffsetLimitMs: 500,
  splitGraceMs: 4_000,
  linkSamples: 3,
  clockSustainMs: 15_000,
};

/**
 * - `unknown`: no agent has shown the cluster yet.
 * - `forming`: members are still joining; no redundancy is expected yet.
 * - `healthy`: every member online, nothing flagged, and a failure can be survived.
 * - `maintenance`: a member is evacuated or is being changed by incus-fleet itself.
 * - `degraded`: something is wrong, or the cluster could not survive one more failure.
 * - `quorum-lost`: the database has no majority of its voters.
 */
export type HealthStatus = "unknown" | "forming" | "healthy" | "maintenance" | "degraded" | "quorum-lost";

export type HealthReasonCode =
  | "quorum-lost"
  | "no-redundancy"
  | "database-unavailable"
  | "member-offline"
  | "member-evacuated"
  | "member-blocked"
  | "agent-lost"
  | "incus-down"
  | "split-view"
  | "link-down"
  | "link-slow"
  | "clock-skew"
  | "version-mismatch"
  | "maintenance";

export interface HealthReason {
  code: HealthReasonCode;
  message: string;
  /** The member it is about, when there is one. */
  member?: string;
  /** True when incus-fleet itself is causing it (a join, a removal, a rollout's restart): reported, not alarming. */
  expected?: boolean;
}

export type LinkState = "ok" | "slow" | "down";

export interface Link {
  from: string;
  to: string;
  address: string;
  rttMs: number | null;
  state: LinkState;
  error?: string;
  at: number;
}

export type MemberHealth = MemberView & {
  /** What Incus says, made stricter by what agents know sooner: a daemon that does not answer is offline. */
  effectiveStatus: string;
  /** Also counts a member whose agent is silent as offline: what refusals are decided on. */
  safetyStatus: string;
};

/** One evaluation of a cluster's health: immutable; status, plans and pages only read it. */
export interface HealthSnapshot {
  status: HealthStatus;
  quorum: Quorum | null;
  members: MemberHealth[] | null;
  reasons: HealthReason[];
  /** Destructive actions are held (quorum lost, or the members do not see the same cluster). */
  hold: { held: boolean; reasons: string[] };
  /** Only the links that are slow or down. */
  links: Link[];
  /** The worst round trip each member measured to a peer. */
  worstLinkMs: Record<string, number>;
  clockOffsets: Record<string, number>;
  versions: Record<string, string>;
  guidance: string[];
  evaluatedAt: number;
}

/**
 * What an evaluation remembers for the next one: which conditions are
 * raised, and since when a raw condition has held. It travels with the
 * cluster's status in the store, so that a coordinator taking a cluster over
 * neither repeats nor loses its events.
 */
export interface HealthTrack {
  raised: Record<string, number>;
  /** Raw condition seen since (not raised yet), or, for a raised one, raw condition gone since. */
  pending: Record<string, number>;
  status: HealthStatus;
  held: boolean;
  roles: string;
}

export const EMPTY_TRACK: HealthTrack = { raised: {}, pending: {}, status: "unknown", held: false, roles: "" };
