import type { StepFailure } from "../planner/convergence.js";
import type { JoinOperation } from "../operations/operation.js";
import type { ClusterPlan, ObservedState } from "../planner/types.js";

/** How long a member removed a moment ago is left out of views read before its removal. */
export const RECENTLY_REMOVED_MS = 15_000;

/** A join token minted before its member's turn: kept in memory only, since a new owner simply mints another. */
export type TokenAhead = { state: "minting" } | { state: "failed" } | { state: "minted"; sponsor: string; token: NonNullable<JoinOperation["data"]["token"]> };

/**
 * What the owner of a cluster keeps in memory about it, besides what the
 * store holds: the latest plan (pulls are answered from it), the latest
 * observation of settings, pools and networks, failed steps (for backoff),
 * and who waits for what.
 */
export class ClusterRuntime {
  plan: ClusterPlan | null = null;
  observed: ObservedState | null = null;
  /** The observation is to be read again at the next chance (something was just changed). */
  observeNow = false;
  readonly failures = new Map<string, StepFailure>();
  private readonly recentlyRemoved = new Map<string, number>();
  /** Join tokens minted ahead, by joiner. */
  readonly tokensAhead = new Map<string, TokenAhead>();
  /** Commands of operations in flight, by operation id. */
  readonly inflight = new Set<string>();
  /** What the last observations showed differing, and the spec they were compared with. */
  lastDiffObjects = new Set<string>();
  lastSpecDigest = "";
  readonly drifted = new Set<string>();
  private reconcileWaiters: (() => void)[] = [];
  private readonly assignmentWaiters = new Map<string, Set<() => void>>();
  readonly lastAssignments = new Map<string, string>();

  constructor(
    readonly cluster: string,
    readonly epoch: number,
    readonly ownedSince: number,
  ) {}

  recordFailure(object: string, error: string, now: number): void {
    const f = this.failures.get(object);
    this.failures.set(object, { error, at: now, count: (f?.count ?? 0) + 1 });
  }

  /** Incus no longer lists the member since `at`, whatever views read before then say. */
  removedAt(name: string, at: number): void {
    if ((this.recentlyRemoved.get(name) ?? -Infinity) < at) this.recentlyRemoved.set(name, at);
  }

  recentlyRemovedNames(now: number): Set<string> {
    for (const [name, at] of this.recentlyRemoved) if (now - at > RECENTLY_REMOVED_MS) this.recentlyRemoved.delete(name);
    return new Set(this.recentlyRemoved.keys());
  }

  waitReconciled(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.reconcileWaiters = self.reconcileWaiters.filter((w) => w !== done);
        resolve();
      }
      this.reconcileWaiters.push(done);
    });
  }

  reconciled(): void {
    for (const w of this.reconcileWaiters.splice(0)) w();
  }

  waitAssignment(node: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const set = this.assignmentWaiters.get(node) ?? new Set();
      this.assignmentWaiters.set(node, set);
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        set.delete(done);
        resolve();
      }
      set.add(done);
    });
  }

  assignmentChanged(node: string): void {
    for (const w of [...(this.assignmentWaiters.get(node) ?? [])]) w();
  }

  /** False once the cluster is no longer this coordinator's: work still in flight then writes nothing. */
  owned = true;

  /** Answers everyone waiting: the cluster is no longer this coordinator's. */
  release(): void {
    this.owned = false;
    this.reconciled();
    for (const node of this.assignmentWaiters.keys()) this.assignmentChanged(node);
  }
}
