import type { Clock } from "../controller/clock.js";
import type { EventSink } from "../events/event-log.js";
import { evaluateHealth } from "./evaluate-health.js";
import type { HeartbeatLedger, NodeLive } from "./heartbeat-ledger.js";
import { EMPTY_TRACK, type HealthOptions, type HealthSnapshot, type HealthTrack } from "./health-types.js";

export interface HealthInputs {
  /** The agents that speak for a cluster. */
  relevant(cluster: string, node: NodeLive): boolean;
  expected(cluster: string): ReadonlyMap<string, string>;
  forming(cluster: string): boolean;
  upgrading(cluster: string): boolean;
}

/** How long, at most, a new owner shows the last owner's health while it waits for its agents' views. */
const INHERITED_FOR_MS = 15_000;

/** A cluster with news is evaluated at most this often; silence and lost daemons are checked every sweep. */
const MIN_EVALUATION_GAP_MS = 1_000;
/**
 * Every owned cluster is evaluated at least this often: links (judged over
 * several probes anyway) and anything else that changes without news. The
 * evaluation walks every link of a cluster, so this is most of its cost.
 */
const FULL_SWEEP_MS = 3_000;

/**
 * Evaluates the health of the clusters this coordinator owns, on its own
 * schedule, into immutable snapshots that everything else only reads. Events
 * come from the evaluation's transitions; a change that matters to planning
 * (status, hold, members, roles) wakes the cluster's controller.
 */
export class HealthMonitor {
  private readonly snapshots = new Map<string, HealthSnapshot>();
  private readonly tracks = new Map<string, HealthTrack>();
  private readonly evaluatedAt = new Map<string, number>();
  /** Clusters taken over whose last owner's snapshot stands until a view arrives here, and until when at most. */
  private readonly inheritedUntil = new Map<string, number>();
  private readonly signatures = new Map<string, string>();
  /** Whether each agent was silent at the last look; keyed by the ledger's record, which is let go with the agent. */
  private readonly silent = new WeakMap<NodeLive, boolean>();
  private lastFull = 0;
  private timer: unknown = null;

  constructor(
    private readonly ledger: HeartbeatLedger,
    private readonly options: HealthOptions,
    private readonly inputs: HealthInputs,
    private readonly events: EventSink,
    private readonly changed: (cluster: string) => void,
    private readonly clock: Clock,
  ) {}

  /**
   * Starts evaluating a cluster, carrying on from the track its previous
   * owner left. Takes a cluster over with the last owner's track and snapshot: until an
   * agent has told this coordinator how it sees the cluster (a view comes
   * every few heartbeats), the last owner's picture stands, rather than "not
   * known" answers to everyone asking in the meantime.
   */
  own(cluster: string, track: HealthTrack | null, last: HealthSnapshot | null = null, now = this.clock.now()): void {
    this.tracks.set(cluster, track ?? EMPTY_TRACK);
    this.evaluatedAt.delete(cluster);
    if (last?.members) {
      this.snapshots.set(cluster, last);
      this.inheritedUntil.set(cluster, now + INHERITED_FOR_MS);
    }
  }

  release(cluster: string): void {
    this.inheritedUntil.delete(cluster);
    this.tracks.delete(cluster);
    this.snapshots.delete(cluster);
    this.evaluatedAt.delete(cluster);
    this.signatures.delete(cluster);
  }

  snapshot(cluster: string): HealthSnapshot | null {
    return this.snapshots.get(cluster) ?? null;
  }

  track(cluster: string): HealthTrack {
    return this.tracks.get(cluster) ?? EMPTY_TRACK;
  }

  start(everyMs: number): void {
    const loop = () => {
      this.sweep();
      this.timer = this.clock.setTimeout(loop, everyMs);
    };
    loop();
  }

  stop(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
  }

  /** One round: clusters with news, an agent that fell silent or came back, a daemon that stopped or started answering, or whose turn it is, are evaluated. */
  sweep(): void {
    const now = this.clock.now();
    const dirty = this.ledger.takeDirty();
    const daemons = this.ledger.takeUrgent();
    const full = now - this.lastFull >= FULL_SWEEP_MS;
    if (full) this.lastFull = now;
    for (const cluster of this.tracks.keys()) {
      const urgent = this.silenceChanged(cluster, now) || daemons.has(cluster);
      const due = full || dirty.has(cluster) || Object.keys(this.track(cluster).pending).length > 0;
      if (!urgent && !(due && now - (this.evaluatedAt.get(cluster) ?? 0) >= MIN_EVALUATION_GAP_MS)) {
        if (dirty.has(cluster)) this.ledger.markDirty(cluster);
        continue;
      }
      this.evaluate(cluster, now);
    }
  }

  /** Whether an agent crossed the silence threshold either way since the last look: that is news at once. */
  private silenceChanged(cluster: string, now: number): boolean {
    let changed = false;
    // Every agent of every owned cluster, four times a second: nothing is built per agent.
    for (const n of this.ledger.eachOf(cluster)) {
      const silent = now - n.lastSeenAt > n.intervalMs * this.options.lostAfterIntervals;
      if ((this.silent.get(n) ?? false) !== silent) changed = true;
      this.silent.set(n, silent);
    }
    return changed;
  }

  evaluate(cluster: string, now = this.clock.now()): HealthSnapshot {
    const nodes = this.ledger.ofCluster(cluster).filter((n) => this.inputs.relevant(cluster, n));
    const inherited = this.snapshots.get(cluster);
    if (inherited && now < (this.inheritedUntil.get(cluster) ?? 0) && !nodes.some((n) => n.view)) return inherited;
    this.inheritedUntil.delete(cluster);
    const result = evaluateHealth(
      { cluster, nodes, expected: this.inputs.expected(cluster), forming: this.inputs.forming(cluster), upgrading: this.inputs.upgrading(cluster), now },
      this.options,
      this.track(cluster),
    );
    this.tracks.set(cluster, result.track);
    this.snapshots.set(cluster, result.snapshot);
    this.evaluatedAt.set(cluster, now);
    for (const e of result.events) this.events.publish(cluster, e);
    const h = result.snapshot;
    // Built in a fixed order by the evaluation: plain JSON tells a change (see the status publisher).
    const signature = JSON.stringify([h.status, h.hold.held, h.quorum, h.members?.map((m) => [m.name, m.safetyStatus, m.roles, m.description, m.failureDomain, m.groups]), h.reasons.map((r) => [r.code, r.member, r.expected])]);
    if (this.signatures.get(cluster) !== signature) {
      this.signatures.set(cluster, signature);
      this.changed(cluster);
    }
    return h;
  }
}
