import Type, { type Static } from "typebox";
import { Address, FromAgent, Millis, Text } from "./fields.js";
import { IncusFacts } from "./facts.js";

/** What an agent sends every beat: its daemon's state, its view of the cluster, its probes of its peers. */

export const MemberView = Type.Object({
  name: Type.String({ maxLength: 255 }),
  status: Type.String({ maxLength: 64 }),
  message: Type.String({ maxLength: 1024 }),
  roles: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
  url: Type.String({ maxLength: 512 }),
  failureDomain: Type.String({ maxLength: 255 }),
  groups: Type.Array(Type.String({ maxLength: 255 }), { maxItems: 64 }),
  description: Type.String({ maxLength: 1024 }),
});
export type MemberView = Static<typeof MemberView>;

export const ClusterView = Type.Object({
  ok: Type.Boolean(),
  error: Type.Optional(Text),
  members: Type.Array(MemberView, { maxItems: 100 }),
});
export type ClusterView = Static<typeof ClusterView>;

export const PoolState = Type.Object({
  name: Type.String({ maxLength: 255 }),
  driver: Type.String({ maxLength: 64 }),
  status: Type.String({ maxLength: 64 }),
  usedBytes: Type.Optional(Type.Number({ minimum: 0 })),
  totalBytes: Type.Optional(Type.Number({ minimum: 0 })),
});
export type PoolState = Static<typeof PoolState>;

export const PeerLatency = Type.Object({
  node: Type.String({ maxLength: 255 }),
  address: Address,
  rttMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  error: Type.Optional(Text),
  /** When the probe ran. Earlier agents send it; a coordinator dates a probe by when its heartbeat arrives, so it is not sent any more. */
  at: Type.Optional(Millis),
});
export type PeerLatency = Static<typeof PeerLatency>;

export const Heartbeat = Type.Object({
  ...FromAgent,
  intervalMs: Millis,
  incus: IncusFacts,
  view: Type.Optional(ClusterView),
  pools: Type.Array(PoolState, { maxItems: 64 }),
  instances: Type.Object({ total: Type.Integer({ minimum: 0 }), running: Type.Integer({ minimum: 0 }) }),
  latency: Type.Object({
    natsMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    peers: Type.Array(PeerLatency, { maxItems: 100 }),
  }),
  clock: Type.Object({
    offsetMs: Type.Union([Type.Number(), Type.Null()]),
    rttMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  }),
});
export type Heartbeat = Static<typeof Heartbeat>;
