import Type from "typebox";
import { EvacuationMode, NAME_PATTERN } from "../../shared/index.js";

/** Request and response schemas of the HTTP API; the route types come from these. */

const Name = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
const Open = (props: Parameters<typeof Type.Object>[0]) => Type.Object(props, { additionalProperties: true });

export const ErrorReply = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    problems: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  }),
});

export const ClusterParams = Type.Object({ cluster: Name });
export const MemberParams = Type.Object({ cluster: Name, member: Name });

export const HealthReply = Type.Object({
  status: Type.Union([Type.Literal("ok"), Type.Literal("degraded")]),
  version: Type.String(),
  nats: Type.Object({ connected: Type.Boolean(), heartbeatBacklog: Type.Integer({ description: "heartbeats received and not yet processed" }) }),
  specRevision: Type.Integer(),
  clusters: Type.Integer(),
});

const Problem = Type.Object({ path: Type.String(), message: Type.String() });

const StringMap = Type.Record(Type.String(), Type.String());
const Resource = {
  name: Type.String(),
  description: Type.String(),
  config: StringMap,
  memberConfig: Type.Record(Type.String(), StringMap),
};

/** The normalized spec as stored, without any secret. */
export const SpecView = Type.Object({
  clusters: Type.Array(
    Type.Object({
      name: Type.String(),
      bootstrap: Type.Union([Type.String(), Type.Null()]),
      config: StringMap,
      members: Type.Array(
        Type.Object({
          name: Type.String(),
          address: Type.String(),
          description: Type.String(),
          failureDomain: Type.String(),
          groups: Type.Array(Type.String()),
          present: Type.Boolean(),
          force: Type.Boolean(),
        }),
      ),
      pools: Type.Array(Type.Object({ ...Resource, driver: Type.String() })),
      networks: Type.Array(Type.Object({ ...Resource, type: Type.String() })),
    }),
  ),
});

export const SpecReply = Type.Object({
  revision: Type.Integer(),
  appliedAt: Type.Union([Type.String(), Type.Null()]),
  warnings: Type.Array(Problem),
  spec: SpecView,
});

export const SpecApplied = Type.Object({ revision: Type.Integer(), warnings: Type.Array(Problem) });

export const SpecHeaders = Type.Object({ "if-match": Type.Optional(Type.String({ pattern: "^\"?\\d+\"?$" })) });

const Summary = {
  name: Type.String(),
  phase: Type.String(),
  health: Type.String(),
  held: Type.Boolean(),
  members: Type.Integer(),
  online: Type.Integer(),
  voters: Type.Union([Type.Integer(), Type.Null()]),
  votersOnline: Type.Union([Type.Integer(), Type.Null()]),
  failuresTolerated: Type.Union([Type.Integer(), Type.Null()]),
};

export const ClusterList = Type.Array(Type.Object(Summary));

const Member = Open({
  name: Type.String(),
  address: Type.String(),
  present: Type.Boolean(),
  state: Type.String(),
  reason: Type.String(),
  status: Type.Union([Type.String(), Type.Null()]),
  roles: Type.Array(Type.String()),
});
export const MemberList = Type.Array(Member);

export const ClusterStatusReply = Open({
  ...Summary,
  quorum: Type.Union([Open({ voters: Type.Integer(), onlineVoters: Type.Integer(), majority: Type.Integer(), hasQuorum: Type.Boolean() }), Type.Null()]),
  reasons: Type.Array(Type.Object({ code: Type.String(), message: Type.String() })),
  holdReasons: Type.Array(Type.String()),
  guidance: Type.Array(Type.String()),
  bootstrap: Type.Union([Open({ node: Type.String() }), Type.Null()]),
  operation: Type.Union([Open({ kind: Type.String(), node: Type.String() }), Type.Null()]),
  memberList: MemberList,
  links: Type.Array(Open({ from: Type.String(), to: Type.String(), state: Type.String() })),
  versions: Type.Record(Type.String(), Type.String()),
  plan: Type.Array(Type.Object({ action: Type.String(), detail: Type.String() })),
  warnings: Type.Array(Type.String()),
  recentActions: Type.Array(Open({ kind: Type.String(), message: Type.String() })),
});

export const PlanReply = Type.Array(
  Open({
    cluster: Type.String(),
    phase: Type.String(),
    steps: Type.Array(Open({ action: Type.String(), detail: Type.String() })),
    decisions: Type.Record(Type.String(), Open({ kind: Type.String(), reason: Type.String() })),
  }),
);

export const EvacuateBody = Type.Object({ mode: Type.Optional(EvacuationMode), force: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export const RestoreBody = Type.Object({ force: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export const RemoveQuery = Type.Object({ force: Type.Optional(Type.Boolean()) }, { additionalProperties: false });

export const MaintenanceReply = Type.Object({
  member: Type.String(),
  action: Type.String(),
  moved: Type.Array(Type.Object({ name: Type.String(), project: Type.String(), from: Type.String(), to: Type.String() })),
  durationMs: Type.Number(),
  forced: Type.Boolean(),
});

export const RemoveReply = Type.Object({
  revision: Type.Integer(),
  forced: Type.Boolean(),
  reasons: Type.Array(Type.String()),
});

export const NodeList = Type.Array(
  Open({ cluster: Type.String(), node: Type.String(), state: Type.String(), reason: Type.String(), since: Type.String() }),
);

export const EventsQuery = Type.Object(
  { cluster: Type.Optional(Name), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 2000 })), replay: Type.Optional(Type.Integer({ minimum: 0, maximum: 2000 })), token: Type.Optional(Type.String()) },
  { additionalProperties: false },
);

export const EventList = Type.Array(
  Open({ id: Type.String(), seq: Type.Integer(), at: Type.String(), cluster: Type.String(), kind: Type.String(), severity: Type.String(), message: Type.String() }),
);
