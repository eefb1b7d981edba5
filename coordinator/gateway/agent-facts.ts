import { canonicalJson, clusterOf, ErrorCode, FleetError, type FleetSpec, type Heartbeat, type NodeFacts, type PreflightReport, type Report } from "../../shared/index.js";
import type { Clock } from "../controller/clock.js";
import type { EventSink } from "../events/event-log.js";
import type { HeartbeatLedger } from "../health/heartbeat-ledger.js";
import type { HostView } from "../planner/types.js";
import type { NodeStore } from "../store/node-store.js";
import { emptyNodeRecord, type NodeRecord } from "../store/records.js";

/** A refusal of the same host for the same reason is published once in this long. */
const REJECTION_EVENT_EVERY_MS = 60_000;

/**
 * The parts of a host's facts whose change matters beyond the moment: they
 * are persisted and wake the controller. Of the members its Incus lists, only
 * whether it lists others matters (is it clustered with anyone yet): the list
 * growing as others join is in the cluster's views, and would otherwise have
 * every member's facts written again after each join.
 */
function signature(f: NodeFacts | null): string {
  if (!f) return "";
  const { incus } = f;
  const withOthers = incus.members ? incus.members.some((m) => m !== incus.serverName) : null;
  return canonicalJson([f.address, f.fingerprint, f.capabilities, f.candidateVersion, incus.reachable, incus.clustered, incus.busy, incus.version, incus.serverName, withOthers]);
}

/**
 * The one home of what agents say about their hosts, on the coordinator that
 * owns their cluster: the live part (heartbeats, in the ledger) and the part
 * that must outlive this coordinator (identity, session, facts, preflight and
 * join history, in the store). Recording is all it does, besides telling the
 * cluster's controller that something changed.
 */
export class AgentFacts {
  private readonly rejections = new Map<string, number>();

  constructor(
    private readonly ledger: HeartbeatLedger,
    private readonly nodes: NodeStore,
    private readonly spec: () => FleetSpec,
    private readonly events: EventSink,
    private readonly changed: (cluster: string) => void,
    private readonly clock: Clock,
  ) {}

  private record(cluster: string, node: string): NodeRecord {
    return this.nodes.get(cluster, node) ?? emptyNodeRecord(cluster, node);
  }

  private async save(record: NodeRecord): Promise<void> {
    await this.nodes.put(record);
    this.changed(record.cluster);
  }

  sessionOf(cluster: string, node: string): string | null {
    return this.nodes.get(cluster, node)?.session?.instance ?? null;
  }

  /**
   * A refusal worth telling an operator about, published at most once a
   * minute per host and reason, and kept on a member of the spec so that
   * the member list says why its agent has no role.
   */
  rejected(cluster: string, node: string, code: string, message: string): void {
    const key = `${cluster}/${node}/${code}`;
    const now = this.clock.now();
    if (now - (this.rejections.get(key) ?? 0) < REJECTION_EVENT_EVERY_MS) return;
    if (this.rejections.size > 10_000) this.rejections.clear();
    this.rejections.set(key, now);
    this.events.publish(cluster, { kind: "node.rejected", node, message: `${node} refused: ${message}`, data: { code } });
    if (clusterOf(this.spec(), cluster)?.members.some((m) => m.name === node)) {
      void this.save({ ...this.record(cluster, node), rejection: { code, message, at: now } }).catch(() => undefined);
    }
  }

  /**
   * A verified hello. The host must be one the spec names (or a member Incus
   * still lists), and its Incus server certificate must be the one the spec
   * gives or the one pinned at its first enrollment.
   */
  async enroll(cluster: string, node: string, instance: string, facts: NodeFacts): Promise<void> {
    const spec = clusterOf(this.spec(), cluster);
    const member = spec?.members.find((m) => m.name === node);
    const record = this.record(cluster, node);
    if (!member && !facts.incus.clustered && !this.ledger.nodeLive(cluster, node)) {
      const message = `'${node}' is not a member of cluster '${cluster}' in the spec`;
      this.rejected(cluster, node, ErrorCode.NotInSpec, message);
      throw new FleetError(ErrorCode.NotInSpec, message);
    }
    const pinned = member?.fingerprint ?? record.identity?.fingerprint;
    if (pinned && facts.fingerprint && facts.fingerprint !== pinned) {
      const message = `the Incus server certificate of ${node} (${facts.fingerprint.slice(0, 12)}…) is not the one ${member?.fingerprint ? "the spec lists" : "pinned at its first enrollment"} (${pinned.slice(0, 12)}…); if the host was reinstalled, forget its identity (incus-fleet forget-identity ${cluster} ${node})`;
      this.rejected(cluster, node, ErrorCode.IdentityMismatch, message);
      throw new FleetError(ErrorCode.IdentityMismatch, message);
    }
    const now = this.clock.now();
    const next: NodeRecord = { ...record, session: { instance, startedAt: now }, facts, factsAt: now, rejection: null };
    if (!record.identity && facts.fingerprint) {
      next.identity = { fingerprint: facts.fingerprint, pinnedAt: new Date(now).toISOString() };
      this.events.publish(cluster, { kind: "identity.pinned", node, message: `${node}'s Incus server certificate pinned (${facts.fingerprint.slice(0, 12)}…)`, data: { fingerprint: facts.fingerprint } });
    }
    this.ledger.touch(cluster, node, now);
    this.ledger.recordFacts(cluster, node, facts, now);
    await this.save(next);
    this.events.publish(cluster, {
      kind: "node.enrolled",
      node,
      message: `${node} enrolled (Incus ${facts.incus.version ?? "unreachable"}${facts.incus.clustered ? ", already clustered" : ""})`,
      data: { instance, address: facts.address, clustered: facts.incus.clustered },
    });
  }

  /** A pull's facts and preflight. True when something changed that the plan depends on. */
  async pulled(cluster: string, node: string, facts: NodeFacts, preflight: PreflightReport | undefined): Promise<boolean> {
    const now = this.clock.now();
    this.ledger.touch(cluster, node, now);
    const record = this.record(cluster, node);
    if (record.identity && facts.fingerprint && facts.fingerprint !== record.identity.fingerprint) {
      throw new FleetError(ErrorCode.IdentityMismatch, `the Incus server certificate of ${node} changed since it enrolled`);
    }
    const newer = !record.facts || record.facts.incus.observedAt <= facts.incus.observedAt;
    const factsChanged = newer && signature(record.facts) !== signature(facts);
    this.ledger.recordFacts(cluster, node, facts, now);
    if (!factsChanged && !preflight) return false;
    const next: NodeRecord = { ...record, ...(newer ? { facts, factsAt: now } : {}) };
    if (preflight) {
      const wasFailing = record.preflight?.report.checks.some((c) => !c.ok) ?? false;
      const failing = preflight.checks.filter((c) => !c.ok);
      next.preflight = { report: preflight, at: now };
      if (failing.length > 0 && !wasFailing) {
        this.events.publish(cluster, { kind: "preflight.failed", node, message: `${node} held at preflight: ${failing.map((c) => c.detail).join("; ")}`, data: { checks: failing } });
      } else if (failing.length === 0 && wasFailing) {
        this.events.publish(cluster, { kind: "preflight.passed", node, message: `${node} passed preflight`, data: {} });
      }
    }
    await this.save(next);
    return true;
  }

  /** The cluster checked that it can reach a joiner back: the result joins the joiner's preflight. */
  async reverseChecked(cluster: string, node: string, check: { ok: boolean; detail: string; fix?: string }): Promise<void> {
    const record = this.record(cluster, node);
    if (!record.preflight) return;
    const checks = [...record.preflight.report.checks.filter((c) => c.name !== "reverse-port"), { name: "reverse-port" as const, ...check }];
    if (!check.ok) this.events.publish(cluster, { kind: "preflight.failed", node, message: `${node} held at preflight: ${check.detail}`, data: { checks: [{ name: "reverse-port", ...check }] } });
    await this.save({ ...record, preflight: { report: { ...record.preflight.report, checks }, at: record.preflight.at } });
  }

  async report(cluster: string, node: string, report: Report): Promise<void> {
    await this.pulled(cluster, node, report.facts, undefined);
    if (report.outcome !== "failed") {
      const record = this.record(cluster, node);
      if (record.failures > 0) await this.save({ ...record, failures: 0, lastFailure: null });
      this.changed(cluster);
      return;
    }
    const record = this.record(cluster, node);
    const now = this.clock.now();
    const failures = record.failures + 1;
    await this.save({ ...record, failures, lastFailure: report.detail, lastFailureAt: now });
    this.events.publish(cluster, {
      kind: "join.failed",
      node,
      id: `${cluster}:${node}:${report.instance}:${report.seq}:join.failed`,
      message: `${report.assignment} of ${node} failed: ${report.detail}`,
      data: { assignment: report.assignment, code: report.code ?? null, failures, detail: report.detail },
    });
  }

  heartbeat(hb: Heartbeat, receivedAt: number): void {
    const before = this.ledger.nodeLive(hb.cluster, hb.node)?.incus;
    this.ledger.record(hb, receivedAt);
    const record = this.nodes.get(hb.cluster, hb.node);
    const incus = hb.incus;
    if (before && before.reachable === incus.reachable && before.clustered === incus.clustered && before.busy === incus.busy && before.version === incus.version) return;
    // A change in membership must not wait for the next pull.
    if (record?.facts && incus.observedAt >= record.facts.incus.observedAt) {
      const facts = { ...record.facts, incus: { ...incus, ...(incus.reachable ? {} : { clustered: record.facts.incus.clustered }) } };
      if (signature(facts) !== signature(record.facts)) void this.save({ ...record, facts, factsAt: receivedAt }).catch(() => undefined);
    }
    this.changed(hb.cluster);
  }

  /** Forgets a host's pinned certificate: its next enrollment pins the one it has then. */
  async forgetIdentity(cluster: string, node: string): Promise<boolean> {
    const record = this.nodes.get(cluster, node);
    if (!record?.identity) return false;
    await this.save({ ...record, identity: null, session: null });
    return true;
  }

  /** Every host of a cluster as the planner sees it: the store's record, made current by the ledger. */
  hostViews(cluster: string, lostAfterMs: number): Record<string, HostView> {
    const now = this.clock.now();
    const out: Record<string, HostView> = {};
    const names = new Set<string>([...this.nodes.ofCluster(cluster).map((r) => r.node), ...this.ledger.ofCluster(cluster).map((n) => n.node)]);
    for (const node of names) {
      const record = this.nodes.get(cluster, node);
      const live = this.ledger.nodeLive(cluster, node);
      let facts = live?.facts ?? record?.facts ?? null;
      if (facts && live?.incus && live.incus.observedAt >= facts.incus.observedAt) {
        facts = { ...facts, incus: { ...live.incus, ...(live.incus.reachable ? {} : { clustered: facts.incus.clustered }), ...(facts.incus.members ? { members: facts.incus.members } : {}) } };
      }
      out[node] = {
        node,
        enrolled: !!record?.session,
        agentOnline: !!live && now - live.lastSeenAt <= lostAfterMs,
        facts,
        preflight: record?.preflight ?? null,
        failures: record?.failures ?? 0,
        lastFailure: record?.lastFailure ?? null,
        lastFailureAt: record?.lastFailureAt ?? null,
      };
    }
    return out;
  }
}
