import Type, { type Static } from "typebox";

export const Severity = { Info: "info", Warning: "warning", Critical: "critical" } as const;
export type Severity = (typeof Severity)[keyof typeof Severity];

/**
 * Every kind of fleet event, with its severity and when it is published. The
 * table is the source of the event reference in docs/events.md.
 */
export const EventKinds = {
  "spec.applied": { severity: "info", when: "a new spec was validated and stored" },
  "node.enrolled": { severity: "info", when: "an agent proved the cluster password and got a session" },
  "node.rejected": { severity: "warning", when: "an agent was refused: wrong password, or not in the spec" },
  "bootstrap.claimed": { severity: "info", when: "the coordinator recorded which member bootstraps (once per cluster, ever)" },
  "bootstrap.completed": { severity: "info", when: "the bootstrap member reported that clustering is enabled" },
  "bootstrap.adopted": { severity: "info", when: "an agent reported a cluster that already existed; it was adopted, not bootstrapped" },
  "join.started": { severity: "info", when: "a join token was minted and handed to the joining member" },
  "join.completed": { severity: "info", when: "a member reported that it joined" },
  "join.failed": { severity: "warning", when: "a join attempt failed; the member is retried with a fresh token" },
  "preflight.failed": { severity: "warning", when: "a joining member failed a preflight check and is held" },
  "preflight.passed": { severity: "info", when: "a held member passed preflight again" },
  "member.removing": { severity: "info", when: "a member left the spec (or was marked absent) and its removal began" },
  "member.removed": { severity: "info", when: "a member was removed from the cluster" },
  "member.remove-failed": { severity: "warning", when: "Incus refused or failed a removal" },
  "member.evacuating": { severity: "info", when: "an evacuation began" },
  "member.evacuated": { severity: "info", when: "an evacuation finished; the data lists the instances moved" },
  "member.restored": { severity: "info", when: "a restore finished; the data lists the instances moved back" },
  "member.maintenance-failed": { severity: "warning", when: "an evacuation or restore failed" },
  "member.updated": { severity: "info", when: "a member's description, failure domain or groups were set from the spec" },
  "action.refused": { severity: "warning", when: "a removal, evacuation or stop was refused by the quorum rules or a hold" },
  "action.forced": { severity: "warning", when: "an operator forced an action the rules would have refused" },
  "agent.lost": { severity: "critical", when: "no heartbeat from an agent for three intervals" },
  "agent.returned": { severity: "info", when: "a lost agent is heartbeating again" },
  "incus.lost": { severity: "critical", when: "an agent reports its Incus daemon unreachable" },
  "incus.returned": { severity: "info", when: "an agent reports its Incus daemon reachable again" },
  "link.slow": { severity: "warning", when: "a probed link between two members is over the latency threshold" },
  "link.down": { severity: "critical", when: "a member cannot reach another member's cluster port" },
  "link.recovered": { severity: "info", when: "a slow or down link is back under the threshold" },
  "clock.skewed": { severity: "warning", when: "an agent's clock is off the coordinator's by more than the threshold" },
  "clock.recovered": { severity: "info", when: "a skewed clock is back within the threshold" },
  "version.mismatch": { severity: "warning", when: "members of a cluster run different Incus versions" },
  "version.matched": { severity: "info", when: "all members of a cluster run the same Incus version again" },
  "cluster.degraded": { severity: "critical", when: "quorum is lost or at risk, or agents' views of the cluster disagree; destructive actions are held" },
  "cluster.recovered": { severity: "info", when: "the cluster is healthy again; held actions may proceed" },
  "roles.changed": { severity: "info", when: "the database roles (voters, stand-by) of a cluster changed" },
  "settings.applied": { severity: "info", when: "cluster-wide server settings were applied" },
  "settings.failed": { severity: "warning", when: "Incus refused the cluster-wide server settings" },
  "pool.created": { severity: "info", when: "a storage pool from the spec was created on every member" },
  "network.created": { severity: "info", when: "a network from the spec was created on every member" },
  "resource.failed": { severity: "warning", when: "creating a storage pool or network failed" },
} as const satisfies Record<string, { severity: Severity; when: string }>;
export type EventKind = keyof typeof EventKinds;

export const FleetEvent = Type.Object({
  id: Type.String(),
  /** Increases by one for every event one coordinator publishes; gaps mean missed events. */
  seq: Type.Integer({ minimum: 1 }),
  at: Type.String(),
  cluster: Type.String(),
  kind: Type.Enum(Object.keys(EventKinds) as EventKind[]),
  severity: Type.Enum(Severity),
  node: Type.Optional(Type.String()),
  message: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown()),
});
export type FleetEvent = Static<typeof FleetEvent>;
