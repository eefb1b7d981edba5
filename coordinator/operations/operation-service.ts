import { clusterOf, ErrorCode, FleetError, type EvacuationMode, type FleetSpec, type HostAction } from "../../shared/index.js";
import type { Clock } from "../controller/clock.js";
import type { EventSink } from "../events/event-log.js";
import { guardAction, type GuardedAction } from "../planner/guard.js";
import type { OperationStore } from "../store/operation-store.js";
import type { StatusStore } from "../store/status-store.js";
import { startedEvent } from "./logic.js";
import { newOperation } from "./new-operation.js";
import { announcing, FINISHED, type Operation } from "./operation.js";

export interface RolloutRequest {
  members?: string[];
  action?: HostAction;
  mode?: EvacuationMode;
  settleMs?: number;
  targetVersion?: string;
}

/** The settling time a rollout waits, by default, with the cluster healthy before it takes the next member. */
export const DEFAULT_SETTLE_MS = 10_000;

/** How far behind an evaluation the views it was made of can be: a heartbeat that reuses its view, and an inherited evaluation. */
const VIEW_LAG_MS = 20_000;

/**
 * What operators ask through the API and the CLI: evacuations, restores and
 * rollouts start as operations (answered at once; their progress is in the
 * operation, the events and the page), after the same rules the coordinator
 * holds itself to. Any coordinator takes the request; the owner of the
 * cluster carries it out.
 */
export class OperationService {
  constructor(
    private readonly ops: OperationStore,
    private readonly statuses: StatusStore,
    private readonly spec: () => FleetSpec,
    private readonly events: EventSink,
    private readonly clock: Clock,
  ) {}

  private membersOf(cluster: string) {
    if (!clusterOf(this.spec(), cluster)) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${cluster}' is not in the spec`);
    const record = this.statuses.get(cluster);
    if (!record?.health.members) throw new FleetError(ErrorCode.Unavailable, `the state of ${cluster} is not known yet: no agent has reported a view of it`);
    return record;
  }

  private check(cluster: string, action: GuardedAction, instances: number | null): void {
    const record = this.membersOf(cluster);
    const verdict = guardAction(action, record.health, instances);
    if (!verdict.allowed) {
      const message = `${action.kind} of ${action.member} refused: ${verdict.reasons.join("; ")}`;
      this.events.publish(cluster, { kind: "action.refused", node: action.member, message, data: { action: action.kind, reasons: verdict.reasons, quorum: verdict.quorum } });
      throw new FleetError(verdict.code, message);
    }
    if (verdict.forced) {
      this.events.publish(cluster, { kind: "action.forced", node: action.member, message: `forced ${action.kind} of ${action.member} despite: ${verdict.reasons.join("; ")}`, data: { action: action.kind, reasons: verdict.reasons } });
    }
  }

  private async begin(op: Operation): Promise<Operation> {
    const started = startedEvent(op, "requested");
    // The owner of the cluster, perhaps another coordinator, publishes it if this one dies before it does.
    const now = this.clock.now();
    const begun = await this.ops.begin(announcing(op, [started], now), now);
    if (!begun) {
      const active = this.ops.active(op.cluster)?.op;
      const stale = this.ops.staleLock(op.cluster);
      const why = active
        ? `${active.kind}${active.member ? ` of ${active.member}` : ""} (operation ${active.id}, ${active.phase})`
        : stale
          ? `one taken ${Math.round((this.clock.now() - stale.at) / 1000)} s ago whose operation is not recorded; it is given back within 10 s if its writer is gone`
          : "one is starting";
      throw new FleetError(ErrorCode.Busy, `another change is in progress on ${op.cluster}: ${why}; try again`);
    }
    this.events.publish(op.cluster, started);
    return shown(begun.op);
  }

  /** A name neither the spec nor the cluster has is unknown, whatever the cluster's state. */
  private requireNamed(cluster: string, names: string[]): void {
    const spec = clusterOf(this.spec(), cluster);
    if (!spec) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${cluster}' is not in the spec`);
    const inCluster = this.statuses.get(cluster)?.health.members ?? [];
    const unknown = names.filter((n) => !spec.members.some((m) => m.name === n) && !inCluster.some((m) => m.name === n));
    if (unknown.length > 0) {
      throw new FleetError(ErrorCode.UnknownMember, unknown.map((n) => `'${n}' is not a member of cluster '${cluster}'`).join("; "), { problems: unknown.map((n) => ({ path: "members", message: `'${n}' is not a member of ${cluster}` })) });
    }
  }

  private member(cluster: string, member: string) {
    this.requireNamed(cluster, [member]);
    const record = this.membersOf(cluster);
    const m = record.health.members!.find((x) => x.name === member);
    if (!m) throw new FleetError(ErrorCode.MaintenanceRefused, `'${member}' is in the spec of ${cluster} but not in the Incus cluster yet`);
    return { record, m };
  }

  /**
   * Whether the member's state in the status may be older than the last
   * evacuation or restore of it. The member states come from agents' views,
   * taken up to a heartbeat or two before the health evaluation, and a new
   * owner shows the last owner's evaluation for a while: an operator (or a
   * script) who restores right after an evacuation ended must not be told it
   * never happened. Our own record of the last evacuation and restore decides
   * until the views have certainly caught up.
   */
  private endedSince(cluster: string, member: string, kind: "evacuate" | "restore", health: { evaluatedAt: number }): boolean {
    const other = kind === "evacuate" ? "restore" : "evacuate";
    const lastOf = (k: string) => Math.max(0, ...this.ops.list(cluster).filter((o) => o.kind === k && o.member === member && o.state === "succeeded" && o.finishedAt !== null).map((o) => Date.parse(o.finishedAt!)));
    const last = lastOf(kind);
    return last > lastOf(other) && last >= health.evaluatedAt - VIEW_LAG_MS;
  }

  async evacuate(cluster: string, member: string, options: { mode?: EvacuationMode; force?: boolean }): Promise<Operation> {
    const { record, m } = this.member(cluster, member);
    if (m.effectiveStatus === "Evacuated" && !this.endedSince(cluster, member, "restore", record.health)) throw new FleetError(ErrorCode.MaintenanceRefused, `${member} is already evacuated; restore it first`);
    const instances = record.observed?.instances[member]?.total ?? null;
    this.check(cluster, { kind: "evacuate", member, force: options.force === true }, instances);
    return this.begin(newOperation("evacuate", { cluster, member, force: options.force, requestedBy: "operator", params: { mode: options.mode ?? "auto" }, data: {}, now: this.clock.now() }));
  }

  async restore(cluster: string, member: string, options: { force?: boolean }): Promise<Operation> {
    const { record, m } = this.member(cluster, member);
    if (m.effectiveStatus === "Online" && !options.force && !this.endedSince(cluster, member, "evacuate", record.health)) throw new FleetError(ErrorCode.MaintenanceRefused, `${member} is not evacuated; there is nothing to restore`);
    this.check(cluster, { kind: "restore", member, force: options.force === true }, null);
    return this.begin(newOperation("restore", { cluster, member, force: options.force, requestedBy: "operator", params: {}, data: {}, now: this.clock.now() }));
  }

  async rollout(cluster: string, request: RolloutRequest): Promise<Operation> {
    this.requireNamed(cluster, request.members ?? []);
    const record = this.membersOf(cluster);
    const known = record.health.members!;
    const members = request.members ?? orderForRollout(known);
    const joining = members.filter((m) => !known.some((k) => k.name === m));
    if (joining.length > 0) throw new FleetError(ErrorCode.MaintenanceRefused, `not in the Incus cluster of ${cluster} yet: ${joining.join(", ")}`, { problems: joining.map((m) => ({ path: "members", message: `'${m}' has not joined ${cluster}` })) });
    if (new Set(members).size !== members.length) throw new FleetError(ErrorCode.BadRequest, "members: a member is listed twice", { problems: [{ path: "members", message: "a member is listed twice" }] });
    if (members.length === 0) throw new FleetError(ErrorCode.BadRequest, "members: no member to roll", { problems: [{ path: "members", message: "no member to roll" }] });
    const action = request.action ?? "restart-incus";
    if (action === "upgrade-incus" && !request.targetVersion) {
      throw new FleetError(ErrorCode.BadRequest, "targetVersion: an upgrade rollout needs the Incus version to reach", { problems: [{ path: "targetVersion", message: "required with action upgrade-incus" }] });
    }
    const now = this.clock.now();
    return this.begin(
      newOperation("rollout", {
        cluster,
        member: members[0]!,
        requestedBy: "operator",
        params: { members, action, mode: request.mode ?? "auto", settleMs: request.settleMs ?? DEFAULT_SETTLE_MS, ...(request.targetVersion ? { targetVersion: request.targetVersion } : {}) },
        data: { index: 0, memberPhase: "gate", phaseSince: now, instances: {}, deferred: [], completed: [] },
        progress: { done: 0, total: members.length },
        now,
      }),
    );
  }

  list(cluster?: string): Operation[] {
    return this.ops.list(cluster).map(shown);
  }

  get(id: string): Operation {
    const found = this.ops.find(id);
    if (!found) throw new FleetError(ErrorCode.NotFound, `no operation ${id}`);
    return shown(found.op);
  }

  /** Asks the operation to stop at its next safe point (cancel) or before its next member (pause), or to go on (resume). */
  async request(id: string, what: "cancel" | "pause" | "resume"): Promise<Operation> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const found = this.ops.find(id);
      if (!found) throw new FleetError(ErrorCode.NotFound, `no operation ${id}`);
      const { op, revision } = found;
      if (FINISHED.has(op.state)) throw new FleetError(ErrorCode.Busy, `operation ${id} has already ${op.state}`);
      if (what !== "cancel" && op.kind !== "rollout") throw new FleetError(ErrorCode.BadRequest, `only rollouts can be paused and resumed; ${op.kind} runs to its end or is cancelled`);
      const next = { ...op, cancelRequested: op.cancelRequested || what === "cancel", pauseRequested: what === "pause" ? true : what === "resume" ? false : op.pauseRequested, updatedAt: new Date(this.clock.now()).toISOString() } as Operation;
      try {
        await this.ops.update(next, revision);
        return shown(next);
      } catch (err) {
        if ((err as FleetError).code !== ErrorCode.Busy) throw err;
      }
    }
    throw new FleetError(ErrorCode.Busy, `operation ${id} keeps changing; try again`);
  }
}

/** An operation as the API shows it: without a join's token, nor the events it announced (those are in the event stream). */
function shown(op: Operation): Operation {
  const { announced: _announced, ...rest } = op;
  if (rest.kind !== "join" || !rest.data.token) return rest as Operation;
  const { token: _token, ...data } = rest.data;
  return { ...rest, data } as Operation;
}

/** Spares and stand-bys first, voters after, the database leader last: the fewest role changes. */
export function orderForRollout(members: { name: string; roles: string[] }[]): string[] {
  const rank = (m: { roles: string[] }) => (m.roles.includes("database-leader") ? 3 : m.roles.includes("database") ? 2 : m.roles.includes("database-standby") ? 1 : 0);
  return [...members].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name)).map((m) => m.name);
}
