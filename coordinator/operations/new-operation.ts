import { randomUUID } from "node:crypto";
import type { Operation, OperationOf, OperationKind } from "./operation.js";

interface NewOperation<K extends OperationKind> {
  cluster: string;
  member: string | null;
  force?: boolean;
  requestedBy: "operator" | "spec";
  params: OperationOf<K>["params"];
  data: OperationOf<K>["data"];
  progress?: { done: number; total: number } | null;
  now: number;
}

/** A new operation in its first phase, "requested", not yet driven by anyone. */
export function newOperation<K extends OperationKind>(kind: K, o: NewOperation<K>): OperationOf<K> {
  const at = new Date(o.now).toISOString();
  const op = {
    id: randomUUID(),
    kind,
    cluster: o.cluster,
    member: o.member,
    state: "running",
    phase: "requested",
    reason: "requested",
    force: o.force ?? false,
    requestedBy: o.requestedBy,
    cancelRequested: false,
    pauseRequested: false,
    owner: null,
    createdAt: at,
    updatedAt: at,
    finishedAt: null,
    progress: o.progress ?? null,
    history: [{ at, phase: "requested", note: `requested by ${o.requestedBy === "spec" ? "the spec" : "an operator"}` }],
    params: o.params,
    data: o.data,
  } as Operation;
  return op as OperationOf<K>;
}
