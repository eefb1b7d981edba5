import Type, { type TProperties } from "typebox";
import type { Operation } from "../operations/operation.js";
import type { SpecApplied as SpecAppliedReply } from "../spec/spec-service.js";
import { EvacuationMode, HostAction, NAME_PATTERN } from "../../shared/index.js";

/**
 * Request and response schemas of the HTTP API. Requests are checked
 * strictly (unknown fields are errors that name the field); responses list
 * the fields every client relies on and may carry more.
 */

const Name = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
/** A response: the fields clients rely on are listed; the handler's type is what it returns. */
const Open = <T = unknown>(props: TProperties) => Type.Unsafe<T>(Type.Object(props, { additionalProperties: true }));
const OpenList = <T = unknown>(props: TProperties) => Type.Unsafe<T[]>(Type.Array(Type.Object(props, { additionalProperties: true })));

export const ErrorReply = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    problems: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  }),
});

export const ClusterParams = Type.Object({ cluster: Name }, { additionalProperties: false });
export const MemberParams = Type.Object({ cluster: Name, member: Name }, { additionalProperties: false });
export const OperationParams = Type.Object({ id: Type.String({ pattern: "^[0-9a-f-]{36}$" }) }, { additionalProperties: false });

export const HealthReply = Type.Object({
  status: Type.Union([Type.Literal("ok"), Type.Literal("degraded")]),
  version: Type.String(),
  coordinator: Type.Object({ id: Type.String(), name: Type.String(), owns: Type.Integer() }),
  nats: Type.Object({ connected: Type.Boolean(), heartbeatBacklog: Type.Integer({ description: "heartbeats received and not yet processed" }) }),
  specRevision: Type.Integer(),
  clusters: Type.Integer(),
});

const Problem = Type.Object({ path: Type.String(), message: Type.String() });

export const SpecReply = Open({
  revision: Type.Integer(),
  appliedAt: Type.Union([Type.String(), Type.Null()]),
  source: Type.Union([Type.String(), Type.Null()]),
  warnings: Type.Array(Problem),
  spec: Open({ clusters: Type.Array(Open({ name: Type.String() })) }),
});

export const SpecQuery = Type.Object(
  {
    dry_run: Type.Optional(Type.Boolean()),
    format: Type.Optional(Type.Union([Type.Literal("json"), Type.Literal("yaml")])),
  },
  { additionalProperties: false },
);

const PlanChange = Open({ object: Type.String(), action: Type.String(), status: Type.String(), reason: Type.String(), now: Type.Unknown(), wanted: Type.Unknown() });

export const SpecApplied = Type.Unsafe<SpecAppliedReply>(
  Type.Object({
    revision: Type.Integer(),
    dryRun: Type.Boolean(),
    warnings: Type.Array(Problem),
    plans: Type.Array(Type.Object({ cluster: Type.String(), changes: Type.Array(PlanChange) })),
  }),
);

export const SpecHeaders = Type.Object({ "if-match": Type.Optional(Type.String({ pattern: "^\"?\\d+\"?$" })) }, { additionalProperties: true });

const Summary = Open({
  name: Type.String(),
  phase: Type.String(),
  health: Type.String(),
  held: Type.Boolean(),
  members: Type.Integer(),
  online: Type.Integer(),
});

export const ClusterList = Type.Unsafe<unknown[]>(Type.Array(Summary));
export const ClusterStatusReply = Open({ name: Type.String(), phase: Type.String(), health: Type.String(), memberList: Type.Array(Open({ name: Type.String() })) });
export const MemberList = OpenList({ name: Type.String(), state: Type.String() });

export const PlanReply = OpenList({ cluster: Type.String(), phase: Type.String(), changes: Type.Array(PlanChange) });

export const EvacuateBody = Type.Object({ mode: Type.Optional(EvacuationMode), force: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export const RestoreBody = Type.Object({ force: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export const RemoveQuery = Type.Object({ force: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export const RolloutBody = Type.Object({
  members: Type.Optional(Type.Array(Name, { minItems: 1, maxItems: 100 })),
  action: Type.Optional(HostAction),
  mode: Type.Optional(EvacuationMode),
  settleMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  targetVersion: Type.Optional(Type.String({ pattern: "^[0-9][0-9A-Za-z.~+-]{0,63}$" })),
}, { additionalProperties: false });

export const OperationReply = Open<Operation>({ id: Type.String(), cluster: Type.String(), kind: Type.String(), state: Type.String(), phase: Type.String() });
export const OperationList = OpenList<Operation>({ id: Type.String(), cluster: Type.String(), kind: Type.String(), state: Type.String(), phase: Type.String() });
export const OperationsQuery = Type.Object({ cluster: Type.Optional(Name) }, { additionalProperties: false });

export const RemoveReply = Type.Object({
  revision: Type.Integer(),
  forced: Type.Boolean(),
  reasons: Type.Array(Type.String()),
});

export const ForgetReply = Type.Object({ forgotten: Type.Boolean() });

export const NodeList = OpenList({ cluster: Type.String(), name: Type.String(), state: Type.String(), reason: Type.String() });

export const CoordinatorList = OpenList({ id: Type.String(), name: Type.String(), owns: Type.Array(Type.String()) });

export const EventsQuery = Type.Object({
  cluster: Type.Optional(Name),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 2000 })),
  /** Events after this place in the stream (an event's `seq`). */
  after: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Events since this time (ISO 8601). */
  since: Type.Optional(Type.String({ pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})$", maxLength: 40 })),
}, { additionalProperties: false });

export const StreamQuery = Type.Object({
  cluster: Type.Optional(Name),
  /** Start with the last `replay` events. */
  replay: Type.Optional(Type.Integer({ minimum: 0, maximum: 2000 })),
  /** Start right after this event (its `seq`): a client that reconnects misses nothing. */
  after: Type.Optional(Type.Integer({ minimum: 0 })),
}, { additionalProperties: false });

export const EventList = OpenList({ id: Type.String(), seq: Type.Integer(), at: Type.String(), cluster: Type.String(), kind: Type.String(), severity: Type.String(), message: Type.String() });
