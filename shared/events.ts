import Type, { type Static } from "typebox";

export const Severity = { Info: "info", Warning: "warning", Critical: "critical" } as const;
export type Severity = (typeof Severity)[keyof typeof Severity];

/**
 * Every kind of fleet event: its severity, when it is published, and the
 * fields of its `data`. The table is the source of docs/events.md.
 */
export const EventKinds = {
  "spec.applied": { severity: "info", when: "a new spec was validated and stored", data: "revision, members [{name, present}], warnings" },
  "node.enrolled": { severity: "info", when: "an agent proved the cluster password and got a session", data: "instance, address, clustered" },
  "node.rejected": { severity: "warning", when: "an agent was refused: wrong password, or not in the spec", data: "code" },
  "bootstrap.claimed": { severity: "info", when: "the coordinator recorded which member bootstraps (once per cluster, ever)", data: "address" },
  "bootstrap.completed": { severity: "info", when: "the bootstrap member reported that clustering is enabled", data: "" },
  "bootstrap.adopted": { severity: "info", when: "an agent reported a cluster that already existed; it was adopted, not bootstrapped", data: "members" },
  "join.started": { severity: "info", when: "a join token was minted and handed to the joining member", data: "via, clusterAddress" },
  "join.completed": { severity: "info", when: "a member reported that it joined", data: "durationMs, detail" },
  "join.failed": { severity: "warning", when: "a join attempt failed; the member is retried with a fresh token", data: "assignment, code, failures (or timeoutMs)" },
  "preflight.failed": { severity: "warning", when: "a joining member failed a preflight check and is held", data: "checks [{name, ok, detail, fix}]" },
  "preflight.passed": { severity: "info", when: "a held member passed preflight again", data: "" },
  "member.removing": { severity: "info", when: "a member left the spec (or was marked absent) and its removal began", data: "force, quorumAfter" },
  "member.removed": { severity: "info", when: "a member was removed from the cluster", data: "force, durationMs" },
  "member.remove-failed": { severity: "warning", when: "Incus refused or failed a removal", data: "force" },
  "member.evacuating": { severity: "info", when: "an evacuation began", data: "mode" },
  "member.evacuated": { severity: "info", when: "an evacuation finished; the data lists the instances moved", data: "moved [{name, project, from, to}], durationMs, mode" },
  "member.restored": { severity: "info", when: "a restore finished; the data lists the instances moved back", data: "moved [{name, project, from, to}], durationMs" },
  "member.maintenance-failed": { severity: "warning", when: "an evacuation or restore failed", data: "action" },
  "member.updated": { severity: "info", when: "a member's description, failure domain or groups were set from the spec", data: "failureDomain, groups" },
  "action.refused": { severity: "warning", when: "a removal, evacuation or stop was refused by the quorum rules or a hold", data: "action, reasons, quorum" },
  "action.forced": { severity: "warning", when: "an operator forced an action the rules would have refused", data: "action, reasons" },
  "agent.lost": { severity: "critical", when: "no heartbeat from an agent for three intervals", data: "silentMs, intervalMs" },
  "agent.returned": { severity: "info", when: "a lost agent is heartbeating again", data: "" },
  "incus.lost": { severity: "critical", when: "an agent reports its Incus daemon unreachable", data: "error" },
  "incus.returned": { severity: "info", when: "an agent reports its Incus daemon reachable again", data: "" },
  "link.slow": { severity: "warning", when: "a probed link between two members is over the latency threshold", data: "from, to, rttMs, thresholdMs" },
  "link.down": { severity: "critical", when: "a member cannot reach another member's cluster port", data: "from, to, error" },
  "link.recovered": { severity: "info", when: "a slow or down link is back under the threshold", data: "from, to" },
  "clock.skewed": { severity: "warning", when: "an agent's clock is off the coordinator's by more than the threshold", data: "node, offsetMs, limitMs" },
  "clock.recovered": { severity: "info", when: "a skewed clock is back within the threshold", data: "node" },
  "version.mismatch": { severity: "warning", when: "members of a cluster run different Incus versions", data: "versions {member: version}" },
  "version.matched": { severity: "info", when: "all members of a cluster run the same Incus version again", data: "versions {member: version}" },
  "cluster.degraded": { severity: "critical", when: "quorum is lost or at risk, or agents' views of the cluster disagree; destructive actions are held", data: "status, held, reasons [{code, message}]" },
  "cluster.recovered": { severity: "info", when: "the cluster is healthy again; held actions may proceed", data: "" },
  "roles.changed": { severity: "info", when: "the database roles (voters, stand-by) of a cluster changed", data: "roles {member: [role]}" },
  "settings.applied": { severity: "info", when: "cluster-wide server settings were applied", data: "changed" },
  "settings.failed": { severity: "warning", when: "Incus refused the cluster-wide server settings", data: "keys" },
  "pool.created": { severity: "info", when: "a storage pool from the spec was created on every member", data: "name, created" },
  "network.created": { severity: "info", when: "a network from the spec was created on every member", data: "name, created" },
  "resource.failed": { severity: "warning", when: "creating a storage pool or network failed", data: "name" },
} as const satisfies Record<string, { severity: Severity; when: string; data: string }>;
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
