import type { CommandBody, CommandResult, FleetError, InstancePlacement } from "../../shared/index.js";
import type { EventSpec } from "../events/event-log.js";
import type { ClusterSituation } from "../planner/types.js";
import { finished, withPhase, type MovedInstance, type Operation } from "./operation.js";

export interface OperationContext {
  s: ClusterSituation;
  /** A healthy member to act through, other than `exclude` (the leader if it can). */
  executor(exclude?: string): string | null;
  joinTimeoutMs: number;
  /** How far the cluster is from its spec, by its latest plan. */
  convergence?: { state: string; reason: string };
  now: number;
}

export type OpAction<O extends Operation = Operation> =
  /** Send a command to an agent; the operation is saved in its new phase first, so that a successor knows it was sent. */
  | { kind: "command"; via: string; body: CommandBody; op: O; events?: EventSpec[] }
  /** Save the operation's next state. */
  | { kind: "update"; op: O; events?: EventSpec[] }
  | { kind: "wait"; reason: string; recheckMs: number };

export type CommandOutcome = { ok: true; result: CommandResult } | { ok: false; error: FleetError };

/** One kind of operation: what to do next, from its phase and the cluster as it is, and what an answer changes. */
export interface OperationLogic<O extends Operation> {
  next(op: O, ctx: OperationContext): OpAction<O>;
  settle(op: O, outcome: CommandOutcome, ctx: OperationContext): { op: O; events?: EventSpec[] };
}

/** Events of an operation carry ids made from the operation and its phase: a resumed operation publishes each once. */
export function opEvent(op: Operation, spec: Omit<EventSpec, "id">, phase = op.phase): EventSpec {
  return { ...spec, id: `${op.id}:${phase}:${spec.kind}` };
}

/** The word that an operation began: "started" by the cluster's owner, "requested" by an operator. */
export function startedEvent(op: Operation, how: "started" | "requested"): EventSpec {
  return {
    kind: "operation.started",
    id: `${op.id}:started`,
    node: op.member ?? undefined,
    message: `${op.kind}${op.member ? ` of ${op.member}` : ""} ${how}`,
    data: { operation: op.id, kind: op.kind, member: op.member, requestedBy: op.requestedBy },
  };
}

export function succeed<O extends Operation>(op: O, note: string, now: number, result: Record<string, unknown> = {}): { op: O; events: EventSpec[] } {
  const done = finished(op, "succeeded", note, now);
  return {
    op: done,
    events: [opEvent(done, { kind: "operation.succeeded", node: op.member ?? undefined, message: `${op.kind} of ${op.member}: ${note}`, data: { operation: op.id, kind: op.kind, member: op.member, durationMs: now - Date.parse(op.createdAt), result } })],
  };
}

export function fail<O extends Operation>(op: O, reason: string, now: number): { op: O; events: EventSpec[] } {
  const done = finished(op, "failed", reason, now);
  return {
    op: done,
    events: [opEvent(done, { kind: "operation.failed", node: op.member ?? undefined, message: `${op.kind} of ${op.member} failed: ${reason}`, data: { operation: op.id, kind: op.kind, member: op.member, phase: op.phase, reason } })],
  };
}

export function cancel<O extends Operation>(op: O, note: string, now: number): { op: O; events: EventSpec[] } {
  const done = finished(op, "cancelled", note, now);
  return {
    op: done,
    events: [opEvent(done, { kind: "operation.cancelled", node: op.member ?? undefined, message: `${op.kind} of ${op.member} cancelled: ${note}`, data: { operation: op.id, kind: op.kind, phase: op.phase } })],
  };
}

export function progress<O extends Operation>(op: O, phase: string, note: string, now: number): { op: O; events: EventSpec[] } {
  const next = withPhase(op, phase, note, now);
  return {
    op: next,
    events: [opEvent(next, { kind: "operation.progress", node: op.member ?? undefined, message: `${op.kind} of ${op.member}: ${note}`, data: { operation: op.id, kind: op.kind, phase, member: op.member, progress: op.progress } })],
  };
}

/** The instances an evacuation moved away from a member: those that carry it as their origin. */
export function movedAway(member: string, after: InstancePlacement[]): MovedInstance[] {
  return after.filter((i) => i.origin === member && i.location !== member).map((i) => ({ name: i.name, project: i.project, from: member, to: i.location }));
}

/** The instances a restore brought back: away before, on the member after. */
export function movedBack(member: string, before: InstancePlacement[], after: InstancePlacement[]): MovedInstance[] {
  const was = new Map(before.map((i) => [`${i.project}/${i.name}`, i.location]));
  return after.flatMap((i) => {
    const from = was.get(`${i.project}/${i.name}`);
    return i.location === member && from !== undefined && from !== member ? [{ name: i.name, project: i.project, from, to: member }] : [];
  });
}
