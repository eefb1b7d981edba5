import { createHash, randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "../../shared/index.js";
import type { Clock } from "../controller/clock.js";
import type { KvCache } from "../store/kv-cache.js";
import { isCasConflict } from "../store/jetstream-errors.js";
import type { CoordinatorRecord, LeaseRecord } from "../store/records.js";

export interface LeaseOptions {
  /** The bucket's TTL: a lease not renewed for this long lapses on the server. */
  ttlMs: number;
  /** How often owned leases are renewed and free ones looked for. */
  tickMs: number;
}

export interface LeaseListener {
  acquired(cluster: string, epoch: number): void;
  lost(cluster: string): void;
  /** Whether a cluster can be handed to another coordinator right now (nothing half-sent). */
  canRelease(cluster: string): boolean;
}

const leaseKey = (cluster: string) => `cluster.${cluster}`;
const presenceKey = (id: string) => `coordinator.${id}`;
const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));

function score(cluster: string, coordinator: string): bigint {
  return createHash("sha256").update(`${cluster}/${coordinator}`).digest().readBigUInt64BE(0);
}

interface Owned {
  epoch: number;
  revision: number;
  acquiredAt: number;
  renewedAt: number;
}

/** Clusters handed over per round when coordinators rebalance: fast enough, without a stampede of re-enrollments. */
const HANDOVERS_PER_TICK = 5;

/**
 * Each cluster is owned by one coordinator at a time, through an expiring
 * lease in the store. Coordinators announce themselves in the same bucket;
 * each prefers the clusters that hash highest for it among the live ones
 * (rendezvous hashing), so that they spread the clusters without talking,
 * and a dead coordinator's clusters are taken within the lease's TTL plus
 * one tick.
 */
export class LeaseManager {
  readonly id: string = randomUUID();
  readonly name = `${hostname()}/${process.pid}`;
  private readonly owned = new Map<string, Owned>();
  /** When this process last saw each key written, by its own clock: the server does not tell when an entry lapses. */
  private readonly seenAt = new Map<string, number>();
  private readonly startedAt: number;
  private timer: unknown = null;
  private ticking = false;
  private announced = false;
  private stopped = false;
  private stopListening: () => void;

  constructor(
    private readonly cache: KvCache<LeaseRecord | CoordinatorRecord>,
    private readonly clusters: () => string[],
    private readonly listener: LeaseListener,
    private readonly options: LeaseOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.startedAt = clock.now();
    // A key's last write or removal, by this process's clock: a freed lease counts as free from then on.
    this.stopListening = cache.onChange((key) => this.seenAt.set(key, this.clock.now()));
    for (const [key] of cache.all()) this.seenAt.set(key, this.clock.now());
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      void this.tick().finally(() => {
        if (!this.stopped) this.timer = this.clock.setTimeout(loop, this.options.tickMs);
      });
    };
    loop();
  }

  /** Runs a round now rather than at the next tick: a cluster new in the spec is taken at once. */
  kick(): void {
    if (!this.stopped) void this.tick();
  }

  owns(cluster: string): boolean {
    return this.owned.has(cluster);
  }

  epochOf(cluster: string): number | null {
    return this.owned.get(cluster)?.epoch ?? null;
  }

  ownedClusters(): string[] {
    return [...this.owned.keys()];
  }

  /** Who holds a cluster's lease, as far as this coordinator can tell. */
  ownerOf(cluster: string): LeaseRecord | null {
    return this.isLive(leaseKey(cluster)) ? ((this.cache.get(leaseKey(cluster)) as LeaseRecord | undefined) ?? null) : null;
  }

  liveCoordinators(): CoordinatorRecord[] {
    const out: CoordinatorRecord[] = [];
    for (const [key, e] of this.cache.childrenOf("coordinator")) if (this.isLive(key)) out.push(e.value as CoordinatorRecord);
    return out;
  }

  private isLive(key: string): boolean {
    const seen = this.seenAt.get(key);
    return this.cache.entry(key) !== undefined && seen !== undefined && this.clock.now() - seen < this.options.ttlMs;
  }

  /** The live coordinator a cluster belongs with. */
  private preferredOwner(cluster: string, live: string[]): string {
    let best: string = this.id;
    let bestScore = -1n;
    for (const id of live) {
      const s = score(cluster, id);
      if (s > bestScore) {
        best = id;
        bestScore = s;
      }
    }
    return best;
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const first = !this.announced;
      await Promise.all([this.announce(), this.renew()]);
      // Coordinators started together see each other before either takes anything.
      if (first) return;
      await this.acquire();
      await this.rebalance();
    } catch (err) {
      this.log.warn({ err: String(err) }, "lease round failed; trying again");
    } finally {
      this.ticking = false;
    }
  }

  private async announce(): Promise<void> {
    const record: CoordinatorRecord = { id: this.id, name: this.name, startedAt: this.startedAt, owns: this.owned.size };
    const revision = await this.cache.kv.put(presenceKey(this.id), json(record));
    this.cache.remember(presenceKey(this.id), record, revision);
    this.announced = true;
  }

  private lose(cluster: string, why: string): void {
    if (!this.owned.delete(cluster)) return;
    this.log.warn({ cluster, why }, "lost the lease of a cluster; another coordinator takes it over");
    this.listener.lost(cluster);
  }

  private async renew(): Promise<void> {
    const wanted = new Set(this.clusters());
    await Promise.all(
      [...this.owned].map(async ([cluster, lease]) => {
        if (!wanted.has(cluster)) {
          await this.release(cluster, "the cluster left the spec");
          return;
        }
        try {
          const record: LeaseRecord = { owner: this.id, ownerName: this.name, acquiredAt: lease.acquiredAt };
          lease.revision = await this.cache.kv.update(leaseKey(cluster), json(record), lease.revision);
          lease.renewedAt = this.clock.now();
        } catch (err) {
          if (isCasConflict(err)) this.lose(cluster, "the lease lapsed or was taken");
          // The store cannot be reached: a lease that may have lapsed on the server is not acted on.
          else if (this.clock.now() - lease.renewedAt > this.options.ttlMs - this.options.tickMs) this.lose(cluster, `could not renew: ${String(err)}`);
        }
      }),
    );
  }

  private async acquire(): Promise<void> {
    const live = this.liveCoordinators().map((c) => c.id);
    if (!live.includes(this.id)) live.push(this.id);
    const free = this.clusters().filter((cluster) => {
      if (this.owned.has(cluster) || this.isLive(leaseKey(cluster))) return false;
      // A cluster that hashes to another live coordinator is left to it for one lease period.
      const freeSince = this.seenAt.get(leaseKey(cluster)) ?? this.startedAt;
      return this.preferredOwner(cluster, live) === this.id || this.clock.now() - freeSince >= this.options.ttlMs * 2;
    });
    // All at once, not one after another: a hundred clusters taken one by one through a busy store would take longer
    // than a lease lasts, and the first taken would lapse before this round ended and their renewal came round.
    const results = await Promise.allSettled(free.map((cluster) => this.take(cluster)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  private async take(cluster: string): Promise<void> {
    const now = this.clock.now();
    try {
      const record: LeaseRecord = { owner: this.id, ownerName: this.name, acquiredAt: now };
      const revision = await this.cache.kv.create(leaseKey(cluster), json(record));
      if (this.stopped) {
        // Stopped while the write was on its way: the lease goes straight back rather than lapsing after its time.
        await this.cache.kv.delete(leaseKey(cluster), { previousSeq: revision }).catch(() => undefined);
        return;
      }
      this.cache.remember(leaseKey(cluster), record, revision);
      this.owned.set(cluster, { epoch: revision, revision, acquiredAt: now, renewedAt: now });
      this.log.info({ cluster, epoch: revision }, "acquired the lease of a cluster");
      this.listener.acquired(cluster, revision);
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
  }

  /** Hands one cluster at a time to the coordinator it hashes to, once that one has been up a while. */
  private async rebalance(): Promise<void> {
    const live = this.liveCoordinators().filter((c) => this.clock.now() - c.startedAt > this.options.ttlMs);
    const ids = live.map((c) => c.id);
    if (!ids.includes(this.id)) ids.push(this.id);
    if (ids.length < 2) return;
    let handed = 0;
    for (const cluster of [...this.owned.keys()]) {
      if (handed >= HANDOVERS_PER_TICK) return;
      if (this.preferredOwner(cluster, ids) === this.id || !this.listener.canRelease(cluster)) continue;
      await this.release(cluster, "handing it to the coordinator it belongs with");
      handed += 1;
    }
  }

  private async release(cluster: string, why: string): Promise<void> {
    const lease = this.owned.get(cluster);
    if (!lease) return;
    this.lose(cluster, why);
    try {
      await this.cache.kv.delete(leaseKey(cluster), { previousSeq: lease.revision });
    } catch (err) {
      if (!isCasConflict(err)) this.log.warn({ cluster, err: String(err) }, "could not release a lease; it lapses by itself");
    }
  }

  /** Gives every lease back, so that other coordinators take over at once instead of after the TTL. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.stopListening();
    for (const cluster of [...this.owned.keys()]) await this.release(cluster, "this coordinator is stopping");
    await this.cache.kv.delete(presenceKey(this.id)).catch(() => undefined);
  }
}
