import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  assessAction,
  clusterOf,
  deriveClusterKeysAsync,
  ErrorCode,
  FleetError,
  MacPurpose,
  memberOf,
  signed,
  Subject,
  verifyMac,
  type AssignReply,
  type AssignRequest,
  type Assignment,
  type ChallengeRequest,
  type ClusterKeys,
  type ClusterSpec,
  type CommandResult,
  type EvacuationMode,
  type FleetSpec,
  type Heartbeat,
  type Hello,
  type InstancePlacement,
  type Logger,
  type NodeFacts,
  type ParsedSpec,
  type PreflightReport,
  type Problem,
  type Report,
  type Verdict,
} from "../shared/index.js";
import type { AgentCommander } from "./agent-commander.js";
import type { EventPublisher } from "./event-publisher.js";
import type { ClusterHealth, FleetObserver } from "./fleet-observer.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { NodeRecords } from "./node-records.js";
import { DEFAULT_LIMITS, isClusteredHere, memberConfigFor, planCluster, type ClusterPhase, type ClusterPlan, type ClusterSnapshot, type NodeSnapshot, type PlannerLimits, type PlanStep } from "./planner.js";
import type { SessionRegistry } from "./sessions.js";
import { NodeState, type BootstrapClaim, type ClusterMeta, type FleetStore, type MembershipOp, type NodeRecord, type StoredSpec } from "./store.js";

export interface ReconcilerOptions {
  limits: PlannerLimits;
  /** A join that has not finished by then is given up and retried with a fresh token. */
  joinTimeoutMs: number;
  tickMs: number;
}

export const DEFAULT_RECONCILER_OPTIONS: ReconcilerOptions = { limits: DEFAULT_LIMITS, joinTimeoutMs: 120_000, tickMs: 1_000 };

const encoder = new TextEncoder();
const RETRY_STEP_MS = 5_000;
/** Decisions read cluster health at most this old; the observer's sweep refreshes changed clusters every second. */
const HEALTH_MAX_AGE_MS = 1_000;
/** Every cluster's steps are looked at at least this often, even when nothing seems to change. */
const FULL_TICK_MS = 5_000;
/** Longer than agents take to read their views again (every third heartbeat) and send them. */
const RETIRED_VIEW_GRACE_MS = 10_000;
/** A token minted ahead is used only this fresh; Incus tokens live far longer, but plans change. */
const PREMINT_MAX_AGE_MS = 60_000;

export interface MaintenanceResult {
  member: string;
  action: "evacuate" | "restore";
  moved: { name: string; project: string; from: string; to: string }[];
  durationMs: number;
  forced: boolean;
}

function movedBetween(before: InstancePlacement[], after: InstancePlacement[]): MaintenanceResult["moved"] {
  const was = new Map(before.map((i) => [`${i.project}/${i.name}`, i.location]));
  return after.flatMap((i) => {
    const from = was.get(`${i.project}/${i.name}`);
    return from !== undefined && from !== i.location ? [{ name: i.name, project: i.project, from, to: i.location }] : [];
  });
}

/**
 * Turns plans into actions. Pull requests from agents get their assignment
 * here; a periodic tick runs the cluster-wide steps (settings, member
 * metadata, pools, networks, removals). Everything that changes membership
 * holds the cluster's lock in the store while it runs.
 */
export class Reconciler {
  private stored: StoredSpec | null = null;
  private specRevision = 0;
  private readonly keys = new Map<string, ClusterKeys>();
  private readonly claims = new Map<string, BootstrapClaim | null>();
  private readonly ops = new Map<string, MembershipOp | null>();
  private readonly metas = new Map<string, ClusterMeta>();
  private readonly records = new NodeRecords();
  private readonly preflightAt = new Map<string, number>();
  private readonly mutex = new KeyedMutex();
  private readonly busySteps = new Set<string>();
  private readonly stepBackoff = new Map<string, number>();
  private readonly refusals = new Map<string, string>();
  private readonly rejections = new Map<string, number>();
  /** Pulls of waiting agents, held until something changes in their cluster or they time out. */
  private readonly waking = new Set<string>();
  private readonly parked = new Map<string, Set<{ node: string; deciding: boolean; reply: (assignment: Assignment) => void; timer: NodeJS.Timeout }>>();
  /** Tokens minted ahead for the member next in line, while the current join runs. */
  private readonly preminted = new Map<string, { node: string; sponsor: string; at: number; token: Promise<Extract<CommandResult, { kind: "mint-token" }>> }>();
  private timer: NodeJS.Timeout | null = null;
  private lastFullTick = 0;
  private readonly tickedAt = new Map<string, string>();
  private readonly changeCount = new Map<string, number>();
  private stopWatching: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly store: FleetStore,
    private readonly sessions: SessionRegistry,
    private readonly observer: FleetObserver,
    private readonly commander: AgentCommander,
    private readonly events: EventPublisher,
    private readonly log: Logger,
    private readonly options: ReconcilerOptions = DEFAULT_RECONCILER_OPTIONS,
  ) {}

  // ================================================================ lifecycle

  async start(): Promise<void> {
    const current = await this.store.getSpec();
    if (current) this.useSpec(current.stored, current.revision);
    for (const record of await this.store.listNodes()) this.records.set(record);
    for (const c of this.spec().clusters) await this.loadCluster(c.name);
    this.stopWatching = await this.store.watch({
      spec: (stored, revision) => {
        if (revision <= this.specRevision) return;
        this.useSpec(stored, revision);
        for (const c of stored.spec.clusters) if (!this.claims.has(c.name)) void this.loadCluster(c.name);
      },
      cluster: (cluster, key, value) => {
        this.changed(cluster);
        if (key === "bootstrap") this.claims.set(cluster, (value as BootstrapClaim | null) ?? this.claims.get(cluster) ?? null);
        else if (key === "op") this.ops.set(cluster, value as MembershipOp | null);
        else if (value) this.metas.set(cluster, value as ClusterMeta);
        if (key !== "meta") this.wake(cluster);
      },
    });
    this.timer = setInterval(() => void this.tick(), this.options.tickMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.stopWatching?.();
    for (const set of this.parked.values()) for (const entry of set) entry.reply({ kind: "wait", reason: "the coordinator is stopping", retryAfterMs: 500 });
    await this.mutex.idle();
  }

  private async loadCluster(cluster: string): Promise<void> {
    const [claim, op, meta] = await Promise.all([this.store.getBootstrap(cluster), this.store.getOp(cluster), this.store.getMeta(cluster)]);
    this.claims.set(cluster, claim?.claim ?? null);
    this.ops.set(cluster, op);
    this.metas.set(cluster, meta);
  }

  // ================================================================ spec

  spec(): FleetSpec {
    return this.stored?.spec ?? { clusters: [] };
  }

  specState(): { spec: FleetSpec; revision: number; warnings: Problem[]; appliedAt: string | null } {
    return { spec: this.spec(), revision: this.specRevision, warnings: this.stored?.warnings ?? [], appliedAt: this.stored?.appliedAt ?? null };
  }

  private useSpec(stored: StoredSpec, revision: number): void {
    this.stored = stored;
    this.specRevision = revision;
    this.keys.clear();
    for (const [cluster, k] of Object.entries(stored.keys)) this.keys.set(cluster, { mac: Buffer.from(k.mac, "base64"), seal: Buffer.from(k.seal, "base64") });
  }

  keysOf(cluster: string): ClusterKeys | null {
    return this.keys.get(cluster) ?? null;
  }

  /** Stores a validated spec. Nothing is kept from a rejected one: validation happened before this. */
  async applySpec(parsed: ParsedSpec, expectedRevision?: number): Promise<{ revision: number; warnings: Problem[] }> {
    const keys: StoredSpec["keys"] = {};
    const derived = await Promise.all(parsed.spec.clusters.map((c) => deriveClusterKeysAsync(c.name, parsed.passwords[c.name] ?? "")));
    parsed.spec.clusters.forEach((c, i) => (keys[c.name] = { mac: derived[i]!.mac.toString("base64"), seal: derived[i]!.seal.toString("base64") }));
    const stored: StoredSpec = { spec: parsed.spec, keys, appliedAt: new Date().toISOString(), warnings: parsed.warnings };
    const revision = await this.store.putSpec(stored, expectedRevision);
    this.useSpec(stored, revision);
    for (const c of parsed.spec.clusters) {
      if (!this.claims.has(c.name)) await this.loadCluster(c.name);
      this.events.publish(c.name, "spec.applied", `spec revision ${revision} applied: ${c.members.filter((m) => m.present).length} present members`, {
        data: { revision, members: c.members.map((m) => ({ name: m.name, present: m.present })), warnings: parsed.warnings.map((w) => `${w.path}: ${w.message}`) },
      });
      this.nudge(c.name, "the spec changed");
    }
    setImmediate(() => void this.tick());
    return { revision, warnings: parsed.warnings };
  }

  // ================================================================ registry

  private recordOf(cluster: string, node: string): NodeRecord {
    let r = this.records.get(cluster, node);
    if (!r) {
      r = { cluster, node, instance: null, state: NodeState.Enrolled, reason: "", since: new Date().toISOString(), facts: null, preflight: null, failures: 0, lastFailure: null, lastFailureAt: null };
      this.records.set(r);
    }
    return r;
  }

  private async saveRecord(r: NodeRecord): Promise<void> {
    this.changed(r.cluster);
    await this.store.putNode(r).catch((err: unknown) => this.log.error({ err: String(err), node: r.node }, "could not store a node record"));
  }

  private async setState(cluster: string, node: string, state: NodeState, reason: string): Promise<void> {
    const r = this.recordOf(cluster, node);
    if (r.state === state && r.reason === reason) return;
    r.state = state;
    r.reason = reason;
    r.since = new Date().toISOString();
    await this.saveRecord(r);
  }

  nodes(): NodeRecord[] {
    return this.records.all();
  }

  record(cluster: string, node: string): NodeRecord | undefined {
    return this.records.get(cluster, node);
  }

  // ================================================================ agent requests

  challenge(req: ChallengeRequest): { nonce: string; expiresInMs: number } {
    return this.sessions.issueChallenge(req.cluster, req.node);
  }

  private reject(cluster: string, node: string, code: ErrorCode, message: string): FleetError {
    const key = `${cluster}/${node}/${code}`;
    const last = this.rejections.get(key) ?? 0;
    if (Date.now() - last > 60_000) {
      this.rejections.set(key, Date.now());
      this.events.publish(cluster, "node.rejected", `${node} refused: ${message}`, { node, data: { code } });
      if (clusterOf(this.spec(), cluster) && memberOf(clusterOf(this.spec(), cluster)!, node)) {
        void this.setState(cluster, node, NodeState.Rejected, message);
      }
    }
    return new FleetError(code, message);
  }

  private signReply(cluster: string, inReplyTo: string, assignment: Assignment): AssignReply {
    const keys = this.keysOf(cluster)!;
    return signed(keys.mac, MacPurpose.AssignReply, { ok: true as const, inReplyTo, assignment });
  }

  async hello(hello: Hello): Promise<AssignReply> {
    const keys = this.keysOf(hello.cluster);
    if (!keys) throw this.reject(hello.cluster, hello.node, ErrorCode.UnknownCluster, `cluster '${hello.cluster}' is not in the spec`);
    if (!this.sessions.takeChallenge(hello.nonce, hello.cluster, hello.node)) {
      throw new FleetError(ErrorCode.AuthFailed, "the challenge is unknown or expired; ask for a new one");
    }
    if (!verifyMac(keys.mac, MacPurpose.Hello, hello)) {
      throw this.reject(hello.cluster, hello.node, ErrorCode.AuthFailed, `wrong cluster password: the proof from ${hello.node} does not match cluster '${hello.cluster}' (check cluster.password on that host)`);
    }
    const cluster = clusterOf(this.spec(), hello.cluster)!;
    const known = this.recordOf(hello.cluster, hello.node);
    const inView = this.observer.health(hello.cluster).members?.some((m) => m.name === hello.node) ?? false;
    if (!memberOf(cluster, hello.node) && !inView && !hello.facts.incus.clustered) {
      this.records.delete(hello.cluster, hello.node);
      throw this.reject(hello.cluster, hello.node, ErrorCode.NotInSpec, `'${hello.node}' is not a member of cluster '${hello.cluster}' in the spec`);
    }
    this.sessions.open(hello.cluster, hello.node, hello.instance);
    known.instance = hello.instance;
    this.observer.touch(hello.cluster, hello.node);
    if (known.state === NodeState.Rejected) known.state = NodeState.Enrolled;
    await this.saveRecord(known);
    this.events.publish(hello.cluster, "node.enrolled", `${hello.node} enrolled (Incus ${hello.facts.incus.version ?? "unreachable"}${hello.facts.incus.clustered ? ", already clustered" : ""})`, {
      node: hello.node,
      data: { instance: hello.instance, address: hello.facts.address, clustered: hello.facts.incus.clustered },
    });
    await this.absorbFacts(hello.cluster, hello.node, hello.facts);
    return this.signReply(hello.cluster, hello.nonce, await this.decide(hello.cluster, hello.node));
  }

  /** Checks the session, sequence and HMAC of a message from an enrolled agent. */
  private authenticate(msg: { cluster: string; node: string; instance: string; seq: number; mac: string }, channel: "request" | "heartbeat", purpose: MacPurpose): ClusterKeys {
    const keys = this.keysOf(msg.cluster);
    if (!keys) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${msg.cluster}' is not in the spec`);
    const persisted = this.records.get(msg.cluster, msg.node)?.instance ?? null;
    const check = this.sessions.check(msg.cluster, msg.node, msg.instance, msg.seq, channel, persisted);
    if (check === "unknown") throw new FleetError(ErrorCode.SessionUnknown, "this agent process is not enrolled; enroll again");
    if (!verifyMac(keys.mac, purpose, msg)) throw new FleetError(ErrorCode.AuthFailed, "message not signed with the cluster key");
    if (check === "replay") throw new FleetError(ErrorCode.AuthFailed, "replayed or reordered message");
    return keys;
  }

  async assign(req: AssignRequest): Promise<AssignReply> {
    const started = performance.now();
    this.authenticate(req, "request", MacPurpose.Assign);
    this.observer.touch(req.cluster, req.node);
    await this.absorbFacts(req.cluster, req.node, req.facts);
    if (req.preflight) await this.absorbPreflight(req.cluster, req.node, req.facts, req.preflight);
    let assignment = await this.decide(req.cluster, req.node);
    if (assignment.kind === "wait" && req.waitMs && !this.stopped) assignment = await this.park(req.cluster, req.node, req.waitMs);
    this.log.debug({ cluster: req.cluster, node: req.node, assignment: assignment.kind, reason: "reason" in assignment ? assignment.reason : undefined, ms: Math.round(performance.now() - started) }, "assigned");
    return this.signReply(req.cluster, String(req.seq), assignment);
  }

  /** Holds a waiting agent's pull until the cluster changes (then decides again) or the wait is over. */
  private park(cluster: string, node: string, waitMs: number): Promise<Assignment> {
    return new Promise((resolve) => {
      const set = this.parked.get(cluster) ?? new Set();
      this.parked.set(cluster, set);
      const entry = {
        node,
        deciding: false,
        reply: (assignment: Assignment) => {
          clearTimeout(entry.timer);
          set.delete(entry);
          resolve(assignment);
        },
        timer: setTimeout(() => void this.decide(cluster, node).then((a) => entry.reply(a), () => entry.reply({ kind: "wait", reason: "try again", retryAfterMs: 1_000 })), Math.min(waitMs, 30_000)),
      };
      set.add(entry);
    });
  }

  /**
   * Something changed in a cluster: the parked agents whose answer is no
   * longer "wait" get it now. One plan tells which ones; only those are
   * decided again (a cluster of 50 has at most a couple). Wakes that arrive
   * together are handled once.
   */
  private wake(cluster: string): void {
    if (this.waking.has(cluster)) return;
    this.waking.add(cluster);
    setImmediate(() => {
      this.waking.delete(cluster);
      const parked = this.parked.get(cluster);
      if (!parked || parked.size === 0) return;
      const plan = this.plan(cluster);
      for (const entry of [...parked]) {
        const d = plan?.decisions[entry.node];
        if (!this.stopped && d?.kind === "wait") continue;
        // One decision at a time per held pull: two could each mint a token, and the second would cancel the first.
        if (entry.deciding) continue;
        entry.deciding = true;
        void this.decide(cluster, entry.node)
          .then(
            (a) => {
              if (a.kind !== "wait" || this.stopped) entry.reply(a);
            },
            () => undefined,
          )
          .finally(() => (entry.deciding = false));
      }
    });
  }

  async report(report: Report): Promise<void> {
    this.authenticate(report, "request", MacPurpose.Report);
    this.observer.touch(report.cluster, report.node);
    await this.absorbFacts(report.cluster, report.node, report.facts);
    await this.mutex.run(report.cluster, async () => {
      const { cluster, node } = report;
      if (report.outcome === "bootstrapped") {
        await this.completeBootstrap(cluster, node, report.detail);
      } else if (report.outcome === "joined") {
        await this.completeJoin(cluster, node, report.detail, report.durationMs);
      } else {
        const op = this.ops.get(cluster);
        if (report.assignment === "join" && op?.kind === "join" && op.node === node) await this.finishOp(cluster, op.id);
        const r = this.recordOf(cluster, node);
        r.failures += 1;
        r.lastFailure = report.detail;
        r.lastFailureAt = new Date().toISOString();
        await this.setState(cluster, node, NodeState.Failed, report.detail);
        this.events.publish(cluster, "join.failed", `${report.assignment} of ${node} failed: ${report.detail}`, {
          node,
          data: { assignment: report.assignment, code: report.code ?? null, failures: r.failures },
        });
        this.nudge(cluster, `${report.assignment} of ${node} failed`);
      }
    });
    setImmediate(() => void this.tick());
  }

  heartbeat(hb: Heartbeat, receivedAt = Date.now()): void {
    this.authenticate(hb, "heartbeat", MacPurpose.Heartbeat);
    this.observer.ingest(hb, receivedAt);
    const r = this.records.get(hb.cluster, hb.node);
    // Heartbeats carry the same Incus facts as a pull; a change in membership must not wait for the next pull.
    if (r?.facts && (r.facts.incus.clustered !== hb.incus.clustered || r.facts.incus.reachable !== hb.incus.reachable || r.facts.incus.version !== hb.incus.version || r.facts.incus.busy !== hb.incus.busy)) {
      void this.absorbFacts(hb.cluster, hb.node, { ...r.facts, incus: hb.incus });
    }
  }

  // ================================================================ facts

  /**
   * Learns from what an agent says is true. A report lost in a restart is
   * made up for here: a joiner that says it is clustered has joined.
   */
  private async absorbFacts(cluster: string, node: string, facts: NodeFacts): Promise<void> {
    const r = this.recordOf(cluster, node);
    const before = r.facts;
    // A heartbeat read before a join may arrive after the report of that join: the newer reading wins.
    if (before && before.incus.observedAt > facts.incus.observedAt) return;
    // A daemon that does not answer says nothing about membership: keep what it said last.
    r.facts = facts.incus.reachable || !before ? facts : { ...facts, incus: { ...facts.incus, clustered: before.incus.clustered, ...(before.incus.members ? { members: before.incus.members } : {}) } };
    facts = r.facts;
    const changed =
      !before ||
      before.incus.clustered !== facts.incus.clustered ||
      before.incus.reachable !== facts.incus.reachable ||
      before.incus.version !== facts.incus.version ||
      before.incus.busy !== facts.incus.busy ||
      before.address !== facts.address;
    if (changed) await this.saveRecord(r);
    if (facts.incus.busy) return;
    if (!facts.incus.clustered) {
      if (r.state === NodeState.Member && before?.incus.clustered && facts.incus.reachable) {
        await this.setState(cluster, node, NodeState.Retired, "Incus reports this member is no longer clustered");
      }
      return;
    }
    const spec = clusterOf(this.spec(), cluster);
    if (!spec) return;
    await this.mutex.run(cluster, async () => {
      const claim = this.claims.get(cluster) ?? null;
      if (!claim && memberOf(spec, node)) {
        const now = new Date().toISOString();
        const result = await this.store.claimBootstrap(cluster, { node, claimedAt: now, completedAt: now, adopted: true });
        this.claims.set(cluster, result.claim);
        if (result.won) {
          this.events.publish(cluster, "bootstrap.adopted", `${node} is already clustered; adopting the existing cluster instead of bootstrapping`, { node, data: { members: facts.incus.members ?? [] } });
        }
      } else if (claim && !claim.completedAt && claim.node === node) {
        await this.completeBootstrap(cluster, node, "Incus reports the member clustered");
      }
      const op = this.ops.get(cluster);
      if (op?.kind === "join" && op.node === node) await this.completeJoin(cluster, node, "Incus reports the member clustered", Date.now() - Date.parse(op.startedAt));
      else if (r.state !== NodeState.Member && r.state !== NodeState.Removing && this.snapshotClustered(cluster, node)) {
        await this.setState(cluster, node, NodeState.Member, "a member of the cluster");
      }
    });
  }

  private snapshotClustered(cluster: string, node: string): boolean {
    const snap = this.snapshot(cluster);
    return !!snap && isClusteredHere(snap, node);
  }

  private async absorbPreflight(cluster: string, node: string, facts: NodeFacts, report: PreflightReport): Promise<void> {
    const spec = clusterOf(this.spec(), cluster);
    const sponsor = spec?.members.find((m) => m.address === report.target);
    const checks = [...report.checks];
    if (sponsor && checks.every((c) => c.ok)) {
      // The joiner reaching the cluster is half of it; the cluster must reach the joiner back on its cluster port.
      try {
        const probe = await this.commander.run(cluster, sponsor.name, { kind: "probe", address: facts.address, attempts: 2 });
        checks.push(
          probe.reachable
            ? { name: "reverse-port", ok: true, detail: `${sponsor.name} reaches ${node} at ${facts.address}` }
            : {
                name: "reverse-port",
                ok: false,
                detail: `${sponsor.name} cannot reach ${node} at ${facts.address}: ${probe.error ?? "no answer"}`,
                fix: `open TCP ${facts.address.split(":").pop()} on ${node} to the other members (nft/iptables) and check its route`,
              },
        );
      } catch (err) {
        checks.push({ name: "reverse-port", ok: false, detail: `could not ask ${sponsor.name} to probe ${node}: ${(err as Error).message}` });
      }
    }
    const r = this.recordOf(cluster, node);
    const wasFailing = r.preflight?.checks.some((c) => !c.ok) ?? false;
    r.preflight = { ...report, checks };
    this.preflightAt.set(`${cluster}/${node}`, Date.now());
    const failing = checks.filter((c) => !c.ok);
    if (failing.length > 0) {
      if (!wasFailing || r.state !== NodeState.Held) {
        this.events.publish(cluster, "preflight.failed", `${node} held at preflight: ${failing.map((c) => c.detail).join("; ")}`, { node, data: { checks: failing } });
      }
      await this.setState(cluster, node, NodeState.Held, `preflight failed: ${failing.map((c) => `${c.detail}${c.fix ? ` (fix: ${c.fix})` : ""}`).join("; ")}`);
    } else if (wasFailing) {
      this.events.publish(cluster, "preflight.passed", `${node} passed preflight`, { node, data: {} });
      await this.setState(cluster, node, NodeState.Waiting, "preflight passed");
    } else {
      await this.saveRecord(r);
    }
  }

  // ================================================================ decisions

  snapshot(cluster: string, health?: ClusterHealth): ClusterSnapshot | null {
    const spec = clusterOf(this.spec(), cluster);
    if (!spec) return null;
    const now = Date.now();
    const h = health ?? this.observer.health(cluster, now, HEALTH_MAX_AGE_MS);
    const nodes: Record<string, NodeSnapshot> = {};
    for (const r of this.records.ofCluster(cluster)) {
      const live = this.observer.nodeLive(cluster, r.node);
      nodes[r.node] = {
        node: r.node,
        enrolled: r.instance !== null && r.state !== NodeState.Rejected,
        agentOnline: this.observer.isAgentOnline(cluster, r.node, now),
        facts: r.facts,
        preflight: r.preflight,
        preflightAt: this.preflightAt.get(`${cluster}/${r.node}`) ?? null,
        failures: r.failures,
        lastFailure: r.lastFailure,
        lastFailureAt: r.lastFailureAt ? Date.parse(r.lastFailureAt) : null,
      };
    }
    const versions = Object.values(h.versions);
    return {
      spec,
      claim: this.claims.get(cluster) ?? null,
      op: this.ops.get(cluster) ?? null,
      nodes,
      // Planning and refusals count members with silent agents as offline: the safe side.
      members:
        h.members
          ?.filter((m) => !this.justRetired(cluster, m.name, now))
          .map((m) => ({ name: m.name, status: m.safetyStatus, roles: m.roles, description: m.description, failureDomain: m.failureDomain, groups: m.groups })) ?? null,
      hold: h.hold,
      clusterVersion: versions[0] ?? null,
      meta: this.metas.get(cluster) ?? { settingsApplied: null, resourcesApplied: [] },
      now,
    };
  }

  /**
   * A member removed a moment ago still shows in the views agents read
   * before its removal; planning from those would remove it again.
   */
  private justRetired(cluster: string, node: string, now: number): boolean {
    const r = this.records.get(cluster, node);
    return r?.state === NodeState.Retired && now - Date.parse(r.since) < RETIRED_VIEW_GRACE_MS;
  }

  /** Where formation stands, without planning: cheap enough for status pages over thousands of members. */
  phase(cluster: string): ClusterPhase {
    const claim = this.claims.get(cluster);
    if (!claim) return "pending";
    if (!claim.completedAt) return "bootstrapping";
    const spec = clusterOf(this.spec(), cluster);
    const joined = (name: string) => {
      const r = this.records.get(cluster, name);
      return r?.state === NodeState.Member || r?.state === NodeState.Removing || (!!r?.facts?.incus.clustered && !r.facts.incus.busy);
    };
    return spec?.members.every((m) => !m.present || joined(m.name)) ? "ready" : "forming";
  }

  plan(cluster: string): ClusterPlan | null {
    const snap = this.snapshot(cluster);
    return snap ? planCluster(snap, this.options.limits) : null;
  }

  private async decide(cluster: string, node: string): Promise<Assignment> {
    // A settled member has nothing to be told: the common pull at scale skips planning altogether.
    const settled = this.records.get(cluster, node);
    const settledSpec = clusterOf(this.spec(), cluster);
    if (settledSpec && settled?.state === NodeState.Member && settled.facts?.incus.clustered && !settled.facts.incus.busy && !this.ops.get(cluster) && memberOf(settledSpec, node)?.present) {
      return { kind: "member", reason: "a member of the cluster" };
    }
    return this.mutex.run(cluster, async () => {
      const spec = clusterOf(this.spec(), cluster);
      const snap = this.snapshot(cluster);
      if (!spec || !snap) return { kind: "rejected", code: ErrorCode.UnknownCluster, reason: `cluster '${cluster}' is not in the spec`, retryAfterMs: 10_000 };
      const plan = planCluster(snap, this.options.limits);
      const d = plan.decisions[node];
      const member = memberOf(spec, node);
      if (!d || !member) {
        const inCluster = snap.members?.some((m) => m.name === node) ?? false;
        return inCluster ? { kind: "member", reason: "no longer in the spec; its removal is pending" } : { kind: "retired", reason: `not in the spec of cluster '${cluster}'` };
      }
      switch (d.kind) {
        case "bootstrap":
          return this.assignBootstrap(spec, node);
        case "join":
          return this.assignJoin(spec, node, d.sponsor, snap);
        case "prepare":
          await this.setState(cluster, node, NodeState.Waiting, d.reason);
          return {
            kind: "prepare",
            reason: d.reason,
            target: d.target,
            ...(snap.clusterVersion ? { expectedVersion: snap.clusterVersion } : {}),
            limits: { latencyMs: this.options.limits.latencyMs, clockOffsetMs: this.options.limits.clockOffsetMs },
          };
        case "wait": {
          const r = this.recordOf(cluster, node);
          if (r.state !== NodeState.Failed && r.state !== NodeState.Held) await this.setState(cluster, node, NodeState.Waiting, d.reason);
          if (snap.op?.kind === "join" && snap.op.sponsor && !this.preminted.has(cluster)) this.premintNext(snap, snap.op.node, snap.op.sponsor);
          return d;
        }
        case "held":
          return d;
        case "member":
          return d;
        case "retired":
          await this.setState(cluster, node, NodeState.Retired, d.reason);
          return d;
      }
    });
  }

  private async assignBootstrap(spec: ClusterSpec, node: string): Promise<Assignment> {
    const member = memberOf(spec, node)!;
    let claim = this.claims.get(spec.name) ?? null;
    if (!claim) {
      const result = await this.store.claimBootstrap(spec.name, { node, claimedAt: new Date().toISOString() });
      claim = result.claim;
      this.claims.set(spec.name, claim);
      if (result.won) this.events.publish(spec.name, "bootstrap.claimed", `${node} will bootstrap cluster ${spec.name}`, { node, data: { address: member.address } });
    }
    if (claim.node !== node) return { kind: "wait", reason: `waiting for ${claim.node} to bootstrap the cluster`, retryAfterMs: 2_000 };
    await this.setState(spec.name, node, NodeState.Bootstrapping, "enabling clustering");
    return { kind: "bootstrap", serverName: node, address: member.address };
  }

  private async assignJoin(spec: ClusterSpec, node: string, sponsor: string, snap: ClusterSnapshot): Promise<Assignment> {
    const cluster = spec.name;
    const member = memberOf(spec, node)!;
    let op = this.ops.get(cluster) ?? null;
    if (!op || op.node !== node || op.kind !== "join") {
      const candidate: MembershipOp = { id: randomUUID(), kind: "join", node, sponsor, startedAt: new Date().toISOString() };
      if (!(await this.store.beginOp(cluster, candidate))) {
        this.ops.set(cluster, await this.store.getOp(cluster));
        return { kind: "wait", reason: "another membership change holds the cluster lock", retryAfterMs: 1_000 };
      }
      op = candidate;
      this.ops.set(cluster, op);
    }
    try {
      const minted = await this.tokenFor(cluster, node, sponsor);
      this.premintNext(snap, node, sponsor);
      await this.setState(cluster, node, NodeState.Joining, `joining through ${sponsor}`);
      this.events.publish(cluster, "join.started", `${node} joins through ${sponsor}`, { node, data: { via: sponsor, clusterAddress: minted.clusterAddress } });
      return {
        kind: "join",
        serverName: node,
        address: member.address,
        clusterAddress: minted.clusterAddress,
        clusterCertificate: minted.clusterCertificate,
        sealedToken: minted.sealedToken,
        memberConfig: memberConfigFor(spec, snap.meta, node),
      };
    } catch (err) {
      await this.finishOp(cluster, op.id);
      const message = `could not mint a join token through ${sponsor}: ${(err as Error).message}`;
      this.log.warn({ cluster, node, sponsor, err: message }, "join postponed");
      return { kind: "wait", reason: message, retryAfterMs: 1_000 };
    }
  }

  /** A token minted ahead for this joiner if there is a fresh one from the same sponsor, else a new one. */
  private async tokenFor(cluster: string, node: string, sponsor: string): Promise<Extract<CommandResult, { kind: "mint-token" }>> {
    const ready = this.preminted.get(cluster);
    this.preminted.delete(cluster);
    if (ready && ready.node === node && ready.sponsor === sponsor && Date.now() - ready.at < PREMINT_MAX_AGE_MS) {
      const token = await ready.token.catch(() => null);
      if (token) return token;
    }
    return this.commander.run(cluster, sponsor, { kind: "mint-token", joiner: node });
  }

  /**
   * Mints the token of the member after this one while this one joins:
   * minting does not touch membership, so it may overlap a join, and the
   * next join then starts without waiting for it.
   */
  private premintNext(snap: ClusterSnapshot, joining: string, sponsor: string): void {
    const next = planCluster({ ...snap, op: { id: "", kind: "join", node: joining, startedAt: new Date().toISOString() } }, this.options.limits);
    const candidate = Object.entries(next.decisions).find(([name, d]) => name !== joining && d.kind === "wait" && snap.nodes[name]?.preflight?.checks.every((c) => c.ok))?.[0];
    if (!candidate) return;
    const token = this.commander.run(snap.spec.name, sponsor, { kind: "mint-token", joiner: candidate });
    token.catch(() => undefined);
    this.preminted.set(snap.spec.name, { node: candidate, sponsor, at: Date.now(), token });
  }

  private async completeBootstrap(cluster: string, node: string, detail: string): Promise<void> {
    const claim = this.claims.get(cluster);
    if (!claim || claim.node !== node) return;
    if (!claim.completedAt) {
      const done = await this.store.completeBootstrap(cluster, new Date().toISOString());
      this.claims.set(cluster, done);
      this.events.publish(cluster, "bootstrap.completed", `${node} bootstrapped cluster ${cluster}: ${detail}`, { node, data: {} });
    }
    await this.setState(cluster, node, NodeState.Member, "bootstrapped the cluster");
    this.nudge(cluster, "the cluster exists");
  }

  private async completeJoin(cluster: string, node: string, detail: string, durationMs: number): Promise<void> {
    const op = this.ops.get(cluster);
    const r = this.recordOf(cluster, node);
    const wasJoining = op?.kind === "join" && op.node === node;
    if (wasJoining) await this.finishOp(cluster, op.id);
    if (r.state !== NodeState.Member) {
      r.failures = 0;
      await this.setState(cluster, node, NodeState.Member, "joined the cluster");
      this.events.publish(cluster, "join.completed", `${node} joined cluster ${cluster}`, { node, data: { durationMs, detail } });
    }
    // Only the waiting members' held pulls are answered again. A join changes no member's role, and a
    // nudge would have every member read its cluster's member list just as the next join starts.
    if (wasJoining) this.wake(cluster);
  }

  private async finishOp(cluster: string, id: string): Promise<void> {
    this.changed(cluster);
    await this.store.endOp(cluster, id);
    if (this.ops.get(cluster)?.id === id) this.ops.set(cluster, null);
  }

  nudge(cluster: string, reason: string): void {
    this.wake(cluster);
    if (!this.nc.isClosed()) this.nc.publish(Subject.nudge(cluster), encoder.encode(JSON.stringify({ cluster, reason })));
  }

  // ================================================================ cluster-wide steps

  /**
   * Runs the cluster-wide steps of the clusters whose inputs changed since
   * they were last looked at (and of all of them every few seconds, for
   * timeouts and retries): planning a quiet 50-member cluster every second,
   * times a hundred clusters, would be most of the coordinator's work.
   */
  async tick(): Promise<void> {
    if (this.stopped) return;
    const everything = Date.now() - this.lastFullTick >= FULL_TICK_MS;
    if (everything) this.lastFullTick = Date.now();
    for (const spec of this.spec().clusters) {
      const version = this.changes(spec.name);
      if (!everything && this.tickedAt.get(spec.name) === version) continue;
      this.tickedAt.set(spec.name, version);
      try {
        await this.tickCluster(spec);
      } catch (err) {
        this.log.error({ cluster: spec.name, err: String(err) }, "reconcile step failed");
      }
      // Let agents' requests in between clusters: a tick over a hundred clusters must not hold the event loop.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** A number that moves whenever something a cluster's plan depends on may have changed. */
  private changes(cluster: string): string {
    return `${this.specRevision}/${this.changeCount.get(cluster) ?? 0}/${this.observer.evaluations(cluster)}/${this.busySteps.size}`;
  }

  private changed(cluster: string): void {
    this.changeCount.set(cluster, (this.changeCount.get(cluster) ?? 0) + 1);
  }

  private async tickCluster(spec: ClusterSpec): Promise<void> {
    const cluster = spec.name;
    await this.mutex.run(cluster, async () => {
      const op = this.ops.get(cluster);
      if (op?.kind === "join" && Date.now() - Date.parse(op.startedAt) > this.options.joinTimeoutMs) {
        const joiner = this.records.get(cluster, op.node);
        if (!joiner?.facts?.incus.busy || !this.observer.isAgentOnline(cluster, op.node)) {
          await this.finishOp(cluster, op.id);
          const r = this.recordOf(cluster, op.node);
          r.failures += 1;
          r.lastFailure = `join did not finish within ${this.options.joinTimeoutMs / 1000} s`;
          r.lastFailureAt = new Date().toISOString();
          await this.setState(cluster, op.node, NodeState.Failed, r.lastFailure);
          this.events.publish(cluster, "join.failed", `join of ${op.node} timed out`, { node: op.node, data: { timeoutMs: this.options.joinTimeoutMs } });
          this.nudge(cluster, "a stalled join was given up");
        }
      }
    });
    const plan = this.plan(cluster);
    if (!plan) return;
    const joinInFlight = !!this.ops.get(cluster) || (plan.nextJoiner !== null && plan.decisions[plan.nextJoiner]?.kind !== "held");
    for (const step of plan.steps) {
      if (step.action === "refused") {
        this.noteRefusal(cluster, step.node, step.detail, step.verdict);
        continue;
      }
      if (step.action === "bootstrap" || step.action === "join" || step.action === "wait") continue;
      if (this.ops.get(cluster)) break;
      const key = `${cluster}:${step.action}:${"node" in step ? step.node : "name" in step ? step.name : ""}`;
      if (this.busySteps.size > 0 && [...this.busySteps].some((k) => k.startsWith(`${cluster}:`))) break;
      if ((this.stepBackoff.get(key) ?? 0) > Date.now()) continue;
      // Until some member can act (views still arriving after formation), wait without counting it a failure.
      if (!this.findExecutor(cluster, step.action === "remove" ? step.node : undefined)) break;
      if (step.action === "remove") {
        if (joinInFlight && !step.force) continue;
        this.runStep(key, () => this.runRemoval(cluster, step.node, step.force, step.verdict));
        break;
      }
      if (joinInFlight && step.action !== "apply-settings") continue;
      this.runStep(key, () => this.runConfigure(cluster, step));
      break;
    }
  }

  private noteRefusal(cluster: string, node: string, detail: string, verdict: Verdict | null): void {
    if (this.refusals.get(`${cluster}/${node}`) === detail) return;
    this.refusals.set(`${cluster}/${node}`, detail);
    this.events.publish(cluster, "action.refused", detail, { node, data: { action: "remove", reasons: verdict?.reasons ?? [detail], quorum: verdict?.before ?? null } });
  }

  private runStep(key: string, work: () => Promise<void>): void {
    this.busySteps.add(key);
    void work()
      .catch((err: unknown) => {
        this.stepBackoff.set(key, Date.now() + RETRY_STEP_MS);
        this.log.warn({ step: key, err: String(err) }, "step failed; retrying later");
      })
      .finally(() => {
        this.busySteps.delete(key);
        setImmediate(() => void this.tick());
      });
  }

  /** The member whose agent runs a cluster-wide call: healthy, clustered, not the one being changed; the leader if it can. */
  private findExecutor(cluster: string, exclude?: string): string | null {
    const snap = this.snapshot(cluster);
    const candidates = (snap?.members ?? [])
      .filter((m) => m.status === "Online" && m.name !== exclude && this.observer.isAgentOnline(cluster, m.name) && !!snap?.nodes[m.name]?.facts?.incus.reachable)
      .sort((a, b) => Number(b.roles.includes("database-leader")) - Number(a.roles.includes("database-leader")));
    return candidates[0]?.name ?? null;
  }

  private executorFor(cluster: string, exclude?: string): string {
    const chosen = this.findExecutor(cluster, exclude);
    if (!chosen) throw new FleetError(ErrorCode.AgentUnreachable, `no healthy member of ${cluster}${exclude ? ` other than ${exclude}` : ""} to act through`);
    return chosen;
  }

  private async updateMeta(cluster: string, change: (m: ClusterMeta) => ClusterMeta): Promise<void> {
    this.changed(cluster);
    const next = change(this.metas.get(cluster) ?? { settingsApplied: null, resourcesApplied: [] });
    this.metas.set(cluster, next);
    await this.store.putMeta(cluster, next);
  }

  private async runConfigure(cluster: string, step: PlanStep): Promise<void> {
    const spec = clusterOf(this.spec(), cluster);
    if (!spec) return;
    const via = this.executorFor(cluster);
    switch (step.action) {
      case "apply-settings": {
        try {
          const r = await this.commander.run(cluster, via, { kind: "apply-config", config: step.config });
          await this.updateMeta(cluster, (m) => ({ ...m, settingsApplied: step.digest }));
          this.events.publish(cluster, "settings.applied", `server settings applied through ${via}: ${r.changed.join(", ") || "already in place"}`, { data: { changed: r.changed } });
        } catch (err) {
          this.events.publish(cluster, "settings.failed", `Incus refused the server settings: ${(err as Error).message}`, { data: { keys: Object.keys(step.config) } });
          throw err;
        }
        return;
      }
      case "set-member": {
        const m = memberOf(spec, step.node)!;
        await this.commander.run(cluster, via, { kind: "set-member", member: m.name, description: m.description, failureDomain: m.failureDomain, groups: m.groups });
        this.events.publish(cluster, "member.updated", `${m.name}: failure domain ${m.failureDomain}, groups ${m.groups.join(", ")}`, { node: m.name, data: { failureDomain: m.failureDomain, groups: m.groups } });
        return;
      }
      case "ensure-pool":
      case "ensure-network": {
        const isPool = step.action === "ensure-pool";
        const resource = isPool ? spec.pools.find((p) => p.name === step.name) : spec.networks.find((n) => n.name === step.name);
        if (!resource) return;
        try {
          const r = isPool
            ? await this.commander.run(cluster, via, { kind: "ensure-pool", ...(resource as (typeof spec.pools)[number]) })
            : await this.commander.run(cluster, via, { kind: "ensure-network", ...(resource as (typeof spec.networks)[number]) });
          const tag = `${isPool ? "pool" : "network"}:${step.name}:`;
          await this.updateMeta(cluster, (m) => ({ ...m, resourcesApplied: [...m.resourcesApplied.filter((x) => !x.startsWith(tag)), `${tag}${step.digest}`] }));
          this.events.publish(cluster, isPool ? "pool.created" : "network.created", `${isPool ? "storage pool" : "network"} ${step.name} ${r.created ? "created on every member" : "already present"}`, { data: { name: step.name, created: r.created } });
        } catch (err) {
          this.events.publish(cluster, "resource.failed", `could not create ${isPool ? "storage pool" : "network"} ${step.name}: ${(err as Error).message}`, { data: { name: step.name } });
          throw err;
        }
        return;
      }
      default:
        return;
    }
  }

  private async runRemoval(cluster: string, node: string, force: boolean, verdict: Verdict): Promise<void> {
    const op: MembershipOp = { id: randomUUID(), kind: "remove", node, force, startedAt: new Date().toISOString(), phase: "starting" };
    if (!(await this.store.beginOp(cluster, op))) return;
    this.ops.set(cluster, op);
    const started = Date.now();
    if (force) {
      this.log.warn({ cluster, node, reasons: verdict.reasons }, "forced removal: an explicit decision in the spec overrides the safety rules");
      this.events.publish(cluster, "action.forced", `forced removal of ${node}${verdict.reasons.length ? ` despite: ${verdict.reasons.join("; ")}` : ""}`, { node, data: { action: "remove", reasons: verdict.reasons } });
    }
    this.events.publish(cluster, "member.removing", `removing ${node}${force ? " (forced)" : ""}`, { node, data: { force, quorumAfter: verdict.after } });
    await this.setState(cluster, node, NodeState.Removing, force ? "forced removal" : "graceful removal");
    try {
      const via = this.executorFor(cluster, node);
      const instances = this.observer.nodeLive(cluster, node)?.last?.instances.total;
      if (!force && instances !== 0) {
        await this.store.updateOp(cluster, { ...op, phase: "evacuating" });
        const r = await this.commander.run(cluster, via, { kind: "evacuate", member: node, mode: "migrate" });
        const moved = movedBetween(r.before, r.after);
        this.events.publish(cluster, "member.evacuated", `${node} evacuated before removal: ${moved.length} instance(s) moved`, { node, data: { moved, mode: "migrate" } });
      }
      await this.store.updateOp(cluster, { ...op, phase: "removing" });
      await this.commander.run(cluster, via, { kind: "remove-member", member: node, force });
      if (!force) await this.waitUnclustered(cluster, node, 60_000);
      await this.setState(cluster, node, NodeState.Retired, force ? "removed by force" : "removed from the cluster");
      this.refusals.delete(`${cluster}/${node}`);
      this.events.publish(cluster, "member.removed", `${node} removed from cluster ${cluster}${force ? " by force" : ""}`, { node, data: { force, durationMs: Date.now() - started } });
    } catch (err) {
      await this.setState(cluster, node, NodeState.Member, `removal failed: ${(err as Error).message}`);
      this.events.publish(cluster, "member.remove-failed", `could not remove ${node}: ${(err as Error).message}`, { node, data: { force } });
      throw err;
    } finally {
      await this.finishOp(cluster, op.id);
      this.nudge(cluster, `removal of ${node} ended`);
    }
  }

  private async waitUnclustered(cluster: string, node: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const hb = this.observer.nodeLive(cluster, node)?.last;
      if (!this.observer.isAgentOnline(cluster, node) || (hb && hb.incus.reachable && !hb.incus.clustered && Date.now() - (this.observer.nodeLive(cluster, node)?.lastHeartbeatAt ?? 0) < 5_000)) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    this.log.warn({ cluster, node }, "the removed member's agent has not reported it unclustered yet");
  }

  // ================================================================ maintenance

  /** Evacuates or restores a member, after the quorum rules and holds agree (or `force` overrides them). */
  async maintenance(cluster: string, member: string, action: "evacuate" | "restore", options: { mode?: EvacuationMode; force?: boolean } = {}): Promise<MaintenanceResult> {
    const spec = clusterOf(this.spec(), cluster);
    if (!spec) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${cluster}' is not in the spec`);
    const health = this.observer.health(cluster);
    const members = health.members ?? [];
    if (!members.some((m) => m.name === member)) throw new FleetError(ErrorCode.UnknownMember, `'${member}' is not a member of cluster '${cluster}'`);
    const force = options.force === true;
    let forced = false;
    if (action === "evacuate") {
      if (health.hold.held && !force) {
        const message = `evacuation of ${member} held: ${health.hold.reasons.join("; ")}`;
        this.events.publish(cluster, "action.refused", message, { node: member, data: { action, reasons: health.hold.reasons } });
        throw new FleetError(ErrorCode.HeldDegraded, message);
      }
      const verdict = assessAction(members.map((m) => ({ name: m.name, status: m.safetyStatus, roles: m.roles })), { kind: "evacuate", member, force });
      if (!verdict.allowed) {
        const message = `evacuation of ${member} refused: ${verdict.reasons.join("; ")}`;
        this.events.publish(cluster, "action.refused", message, { node: member, data: { action, reasons: verdict.reasons, quorum: verdict.before } });
        throw new FleetError(ErrorCode.QuorumRefused, message);
      }
      forced = verdict.forced || (force && health.hold.held);
    } else if (health.quorum && !health.quorum.hasQuorum && !force) {
      throw new FleetError(ErrorCode.QuorumRefused, `restore of ${member} refused: ${health.reasons[0]?.message ?? "quorum lost"}`);
    }
    if (forced) {
      this.log.warn({ cluster, member, action }, "forced maintenance: an operator overrode the safety rules");
      this.events.publish(cluster, "action.forced", `forced ${action} of ${member}`, { node: member, data: { action } });
    }
    const op: MembershipOp = { id: randomUUID(), kind: action, node: member, startedAt: new Date().toISOString() };
    if (!(await this.store.beginOp(cluster, op))) {
      const current = await this.store.getOp(cluster);
      throw new FleetError(ErrorCode.Busy, `another change is in progress on ${cluster}: ${current ? `${current.kind} of ${current.node}` : "unknown"}`);
    }
    this.ops.set(cluster, op);
    const started = Date.now();
    try {
      const via = this.executorFor(cluster);
      if (action === "evacuate") this.events.publish(cluster, "member.evacuating", `evacuating ${member} (mode ${options.mode ?? "auto"})`, { node: member, data: { mode: options.mode ?? "auto" } });
      const r = await this.commander.run(cluster, via, action === "evacuate" ? { kind: "evacuate", member, mode: options.mode ?? "auto" } : { kind: "restore", member });
      const moved = movedBetween(r.before, r.after);
      const durationMs = Date.now() - started;
      this.events.publish(cluster, action === "evacuate" ? "member.evacuated" : "member.restored", `${member} ${action === "evacuate" ? "evacuated" : "restored"}: ${moved.length} instance(s) moved in ${durationMs} ms`, {
        node: member,
        data: { moved, durationMs, mode: options.mode ?? (action === "evacuate" ? "auto" : null) },
      });
      return { member, action, moved, durationMs, forced };
    } catch (err) {
      this.events.publish(cluster, "member.maintenance-failed", `${action} of ${member} failed: ${(err as Error).message}`, { node: member, data: { action } });
      throw err;
    } finally {
      await this.finishOp(cluster, op.id);
      this.nudge(cluster, `${action} of ${member} ended`);
    }
  }

  /**
   * Marks a member absent in the spec (what the Salt `cluster_member_absent`
   * state does); the tick then removes it. A removal the rules refuse is
   * refused here, before the spec changes.
   */
  async markAbsent(cluster: string, member: string, force: boolean): Promise<{ revision: number; verdict: Verdict }> {
    const spec = clusterOf(this.spec(), cluster);
    if (!spec) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${cluster}' is not in the spec`);
    if (!memberOf(spec, member)) throw new FleetError(ErrorCode.UnknownMember, `'${member}' is not in the spec of cluster '${cluster}'`);
    const health = this.observer.health(cluster);
    const members = (health.members ?? []).map((m) => ({ name: m.name, status: m.safetyStatus, roles: m.roles }));
    const verdict = assessAction(members, { kind: "remove", member, force });
    if (!verdict.allowed || (health.hold.held && !force)) {
      const reasons = verdict.allowed ? health.hold.reasons : verdict.reasons;
      const message = `removal of ${member} refused: ${reasons.join("; ")}`;
      this.events.publish(cluster, "action.refused", message, { node: member, data: { action: "remove", reasons, quorum: verdict.before } });
      throw new FleetError(verdict.allowed ? ErrorCode.HeldDegraded : ErrorCode.QuorumRefused, message);
    }
    const next: FleetSpec = {
      clusters: this.spec().clusters.map((c) =>
        c.name !== cluster ? c : { ...c, members: c.members.map((m) => (m.name === member ? { ...m, present: false, force } : m)) },
      ),
    };
    const stored: StoredSpec = { ...this.stored!, spec: next, appliedAt: new Date().toISOString() };
    const revision = await this.store.putSpec(stored, this.specRevision);
    this.useSpec(stored, revision);
    this.events.publish(cluster, "spec.applied", `${member} marked absent${force ? " (force)" : ""} in spec revision ${revision}`, { node: member, data: { revision, force } });
    setImmediate(() => void this.tick());
    return { revision, verdict };
  }
}
