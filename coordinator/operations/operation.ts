import type { EvacuationMode, HostAction } from "../../shared/index.js";
import type { EventSpec } from "../events/event-log.js";

/**
 * A long change to a cluster, persisted with its phase: a join, a removal,
 * an evacuation, a restore or a rollout. It holds its cluster's lock while
 * it runs, and carries the lease epoch of the coordinator driving it, so
 * that whoever owns the cluster next resumes it from its phase and from
 * what Incus reports, and releases the lock when it ends.
 */
export const OperationKind = {
  Join: "join",
  Remove: "remove",
  Evacuate: "evacuate",
  Restore: "restore",
  Rollout: "rollout",
} as const;
export type OperationKind = (typeof OperationKind)[keyof typeof OperationKind];

export type OperationState = "running" | "paused" | "succeeded" | "failed" | "cancelled";

export const FINISHED: ReadonlySet<OperationState> = new Set(["succeeded", "failed", "cancelled"]);

export interface MovedInstance {
  name: string;
  project: string;
  from: string;
  to: string;
}

export interface OperationStep {
  at: string;
  phase: string;
  note: string;
}

interface OperationBase {
  id: string;
  cluster: string;
  /** The member it is about (for a rollout: the member it is at now). */
  member: string | null;
  state: OperationState;
  phase: string;
  /** What it does or waits for now; why it ended. */
  reason: string;
  force: boolean;
  /** "operator" for API and CLI requests, "spec" for changes the spec asked for. */
  requestedBy: "operator" | "spec";
  cancelRequested: boolean;
  pauseRequested: boolean;
  owner: { coordinator: string; epoch: number } | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  progress: { done: number; total: number } | null;
  /** The phases it went through, newest last (bounded). */
  history: OperationStep[];
  /**
   * The events its latest change announced, and when, stored with the
   * change: a writer can die between the two, and whoever owns the cluster
   * then publishes them (each has an id, so the stream keeps it once).
   */
  announced?: { at: number; events: EventSpec[] };
}

export interface JoinOperation extends OperationBase {
  kind: "join";
  params: { sponsor: string };
  data: {
    /** The sealed token and what goes with it, minted by the sponsor's agent; handed to the joiner on its next pull. */
    token?: { sealedToken: string; clusterCertificate: string; clusterAddress: string; mintedAt: number };
    handedAt?: number;
  };
}

export interface RemoveOperation extends OperationBase {
  kind: "remove";
  params: Record<string, never>;
  data: { moved?: MovedInstance[]; cleared?: string[] };
}

export interface EvacuateOperation extends OperationBase {
  kind: "evacuate";
  params: { mode: EvacuationMode };
  data: { moved?: MovedInstance[]; startedAt?: number };
}

export interface RestoreOperation extends OperationBase {
  kind: "restore";
  params: Record<string, never>;
  data: { moved?: MovedInstance[]; startedAt?: number };
}

export type RolloutPhase = "gate" | "evacuating" | "host-action" | "waiting-online" | "restoring" | "waiting-healthy";

export interface RolloutOperation extends OperationBase {
  kind: "rollout";
  params: {
    members: string[];
    action: HostAction;
    mode: EvacuationMode;
    /** How long the cluster must stay healthy before the next member is taken. */
    settleMs: number;
    targetVersion?: string;
  };
  data: {
    index: number;
    memberPhase: RolloutPhase;
    /** When the current phase of the current member began. */
    phaseSince: number;
    /** Since when the gate has held without a break (the settling time). */
    gateSince?: number;
    /** Each member's instances before it was evacuated, and whether they ran, to check they come back. */
    instances: Record<string, { name: string; project: string; running: boolean }[]>;
    /** When the host action was sent, and the daemon's pid before it: a restart shows as a new pid. */
    actionSentAt?: number;
    pidBefore?: number;
    /** Upgraded members that wait for the others before serving again; restored once every member is upgraded. */
    deferred: string[];
    /** A host action that failed: the member is brought back, then the rollout stops with this. */
    failure?: string;
    completed: string[];
  };
}

export type Operation = JoinOperation | RemoveOperation | EvacuateOperation | RestoreOperation | RolloutOperation;

export type OperationOf<K extends OperationKind> = Extract<Operation, { kind: K }>;

const HISTORY_LIMIT = 50;

/** The operation as stored with a change: with the events that change announces. */
export function announcing<O extends Operation>(op: O, events: EventSpec[] | undefined, now: number): O {
  return { ...op, announced: { at: now, events: events ?? [] } };
}

/** The operation with its phase moved on and the step recorded. */
export function withPhase<O extends Operation>(op: O, phase: string, note: string, now: number): O {
  const at = new Date(now).toISOString();
  const history = [...op.history, { at, phase, note }].slice(-HISTORY_LIMIT);
  return { ...op, phase, reason: note, updatedAt: at, history };
}

export function finished<O extends Operation>(op: O, state: "succeeded" | "failed" | "cancelled", note: string, now: number): O {
  const at = new Date(now).toISOString();
  const done: O = { ...withPhase(op, state, note, now), state, finishedAt: at };
  // Nobody can use a finished join's token any more: it is not kept for the week the record is.
  if (done.kind === "join" && done.data.token) {
    const { token: _token, ...data } = done.data;
    return { ...done, data };
  }
  return done;
}
