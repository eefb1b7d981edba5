import Type, { type Static } from "typebox";

export const Severity = { Info: "info", Warning: "warning", Critical: "critical" } as const;
export type Severity = (typeof Severity)[keyof typeof Severity];

/**
 * Every kind of fleet event: its severity, when it is published, and the
 * fields of its `data`. The table is the source of docs/events.md.
 */
export const EventKinds = {
  "spec.applied": { severity: "info", when: "a new spec was validated and stored", data: "revision, source, members [{name, present}], warnings" },
  "spec.kept": { severity: "warning", when: "a coordinator started with a spec file older than the stored spec; the stored revision wins", data: "file, revision" },
  "node.enrolled": { severity: "info", when: "an agent proved the cluster password and got a session", data: "instance, address, clustered" },
  "node.rejected": { severity: "warning", when: "an agent was refused: wrong password, not in the spec, or not the host it was before", data: "code" },
  "identity.pinned": { severity: "info", when: "a host's Incus server certificate was recorded at its first enrollment", data: "fingerprint" },
  "bootstrap.claimed": { severity: "info", when: "the coordinator recorded which member bootstraps (once per cluster, ever)", data: "address" },
  "bootstrap.completed": { severity: "info", when: "the bootstrap member reported that clustering is enabled", data: "" },
  "bootstrap.adopted": { severity: "info", when: "an agent reported a cluster that already existed; it was adopted, not bootstrapped", data: "members" },
  "join.started": { severity: "info", when: "a join token was minted and handed to the joining member", data: "via, clusterAddress" },
  "join.completed": { severity: "info", when: "a member joined", data: "durationMs, detail" },
  "join.failed": { severity: "warning", when: "a join attempt failed; the member is retried with a fresh token", data: "code, failures, detail" },
  "preflight.failed": { severity: "warning", when: "a joining member failed a preflight check and is held", data: "checks [{name, ok, detail, fix}]" },
  "preflight.passed": { severity: "info", when: "a held member passed preflight again", data: "" },
  "operation.started": { severity: "info", when: "a long change (join, remove, evacuate, restore, rollout) began", data: "operation, kind, member, requestedBy" },
  "operation.progress": { severity: "info", when: "an operation moved to its next phase", data: "operation, kind, phase, member, progress {done, total}" },
  "operation.resumed": { severity: "info", when: "a coordinator took over a cluster and picked up its running operation", data: "operation, kind, phase" },
  "operation.succeeded": { severity: "info", when: "an operation finished", data: "operation, kind, member, durationMs, result" },
  "operation.failed": { severity: "warning", when: "an operation stopped on an error or a failed gate", data: "operation, kind, member, phase, reason" },
  "operation.cancelled": { severity: "warning", when: "an operator cancelled an operation; it stopped at a safe point", data: "operation, kind, phase" },
  "member.removed": { severity: "info", when: "a member was removed from the cluster", data: "force, durationMs" },
  "member.evacuated": { severity: "info", when: "an evacuation finished; the data lists the instances moved", data: "moved [{name, project, from, to}], durationMs, mode" },
  "member.restored": { severity: "info", when: "a restore finished; the data lists the instances moved back", data: "moved [{name, project, from, to}], durationMs" },
  "member.updated": { severity: "info", when: "a member's description, failure domain or groups were set from the spec", data: "failureDomain, groups" },
  "action.refused": { severity: "warning", when: "a removal, evacuation or other change was refused by the rules", data: "action, reasons, quorum" },
  "action.forced": { severity: "warning", when: "an operator forced an action the rules would have refused", data: "action, reasons" },
  "cluster.owner-changed": { severity: "info", when: "a coordinator took over a cluster (its lease lapsed or was handed over)", data: "owner, epoch" },
  "agent.lost": { severity: "critical", when: "no heartbeat from an agent for three intervals", data: "silentMs, intervalMs" },
  "agent.returned": { severity: "info", when: "a lost agent is heartbeating again", data: "" },
  "incus.lost": { severity: "critical", when: "an agent reports its Incus daemon unreachable", data: "error" },
  "incus.returned": { severity: "info", when: "an agent reports its Incus daemon reachable again", data: "" },
  "link.slow": { severity: "warning", when: "probes of a link between two members stayed over the latency threshold several times in a row", data: "from, to, rttMs, thresholdMs" },
  "link.down": { severity: "critical", when: "a member could not reach another member's cluster port several times in a row", data: "from, to, error" },
  "link.recovered": { severity: "info", when: "a slow or down link is back under the threshold", data: "from, to" },
  "clock.skewed": { severity: "warning", when: "an agent's clock stayed off the coordinator's by more than the threshold", data: "node, offsetMs, limitMs" },
  "clock.recovered": { severity: "info", when: "a skewed clock is back within the threshold", data: "node" },
  "version.mismatch": { severity: "warning", when: "members of a cluster run different Incus versions", data: "versions {member: version}" },
  "version.matched": { severity: "info", when: "all members of a cluster run the same Incus version again", data: "versions {member: version}" },
  "cluster.degraded": { severity: "critical", when: "quorum is lost, the cluster would not survive one more failure, or something is wrong that incus-fleet did not cause", data: "status, held, reasons [{code, message}]" },
  "cluster.recovered": { severity: "info", when: "the cluster is no longer degraded; held actions may proceed", data: "status" },
  "roles.changed": { severity: "info", when: "the database roles (voters, stand-by) of a cluster changed", data: "roles {member: [role]}" },
  "settings.applied": { severity: "info", when: "cluster-wide server settings were set to the spec", data: "changed {key: {from, to}}" },
  "settings.failed": { severity: "warning", when: "Incus refused the cluster-wide server settings", data: "keys" },
  "drift.detected": { severity: "warning", when: "something the spec manages differs from the spec in Incus (a setting, pool, network or member changed by hand, or left half-created)", data: "items [{object, field, now, wanted}]" },
  "drift.corrected": { severity: "info", when: "a difference from the spec was set right", data: "object, changes" },
  "resource.converged": { severity: "info", when: "a storage pool or network was created or updated to the spec on every member", data: "object, changes" },
  "resource.failed": { severity: "warning", when: "creating, updating or deleting a storage pool or network failed", data: "object, error" },
  "resource.deleted": { severity: "info", when: "a storage pool or network dropped from the spec was deleted", data: "object" },
} as const satisfies Record<string, { severity: Severity; when: string; data: string }>;
export type EventKind = keyof typeof EventKinds;

export const FleetEvent = Type.Object({
  id: Type.String(),
  /** The event's place in the fleet's event stream: the same on every coordinator. */
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
