import type { KV, KvWatchEntry } from "@nats-io/kv";
import pRetry from "p-retry";
import type { Logger } from "../../shared/index.js";

export interface CachedEntry<T> {
  value: T;
  revision: number;
  /** When the server stored this revision. */
  created: number;
}

export type ChangeListener<T> = (key: string, entry: CachedEntry<T> | null) => void;

/** How often the cache checks that its watch keeps up with the bucket. */
const LAG_CHECK_MS = 5_000;
/** While a watch catches up: how often it is checked, and how long it may deliver nothing before it is replaced. */
const CATCH_UP_CHECK_MS = 1_000;
const CATCH_UP_STALL_MS = 5_000;
/** Each replacement waits twice as long as the last, up to this: a server slow to deliver is not flooded with new watches. */
const CATCH_UP_STALL_MAX_MS = 60_000;

/** `a.b.c` → `a.b`; a key without a dot is under the empty parent. */
const parentOf = (key: string) => key.slice(0, Math.max(0, key.lastIndexOf(".")));

/**
 * A bucket followed by one watch: the last value of every key first, then
 * every change, with no gap between the two (the watch is a single ordered
 * consumer). Readers read the map; writers write the bucket and see their
 * write come back here. The server may deliver an early entry more than
 * once, so entries are kept by revision.
 */
export class KvCache<T> {
  private readonly entries = new Map<string, CachedEntry<T>>();
  /**
   * Keys by the part before their last dot: `<cluster>.<node>` under the
   * cluster, `op.<cluster>.<id>` under `op.<cluster>`. A cluster's hosts are
   * read on every reconcile; walking every host of the fleet for them made
   * each reconcile cost as much as the fleet is large.
   */
  private readonly groups = new Map<string, Set<string>>();
  private readonly listeners = new Set<ChangeListener<T>>();
  private stopWatch: (() => void) | null = null;
  private stopped = false;
  /** A watch is being re-created: one attempt at a time, retried until it works or the cache stops. */
  private refollowing = false;
  /** Counts the watches made: a watch that ended knows whether it was replaced. */
  private generation = 0;
  /** The highest revision the watch delivered: the bucket's stream is ahead of it only while the watch lags. */
  private lastRevision = 0;
  private laggingSince: number | null = null;
  private lagTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(
    readonly kv: KV,
    private readonly name: string,
    private readonly log: Logger,
  ) {}

  /** Opens the cache and resolves once it holds every key the bucket had. */
  static async open<T>(kv: KV, name: string, log: Logger): Promise<KvCache<T>> {
    const cache = new KvCache<T>(kv, name, log);
    await cache.follow();
    cache.lagTimer = setInterval(() => void cache.checkLag().catch(() => undefined), LAG_CHECK_MS);
    cache.lagTimer.unref();
    return cache;
  }

  /**
   * A watch whose server went away is re-created by the client, which can
   * take a while; one that stays behind the bucket for two checks in a row
   * is replaced, so that a coordinator never decides from old values for
   * long. (A stream whose messages all aged out, as a TTL bucket's do, has
   * nothing to deliver.)
   */
  private async checkLag(): Promise<void> {
    const state = (await this.kv.status()).streamInfo.state;
    const behind = state.messages > 0 && state.last_seq >= state.first_seq && state.last_seq > this.lastRevision;
    if (!behind) {
      this.laggingSince = null;
      return;
    }
    if (this.laggingSince === null) {
      this.laggingSince = Date.now();
      return;
    }
    this.log.warn({ bucket: this.name, at: this.lastRevision, bucketAt: state.last_seq }, "store watch fell behind the bucket; following it again");
    this.laggingSince = null;
    // Ending the watch makes its loop follow the bucket again; with no watch running, that is done here.
    if (this.stopWatch) this.stopWatch();
    else this.refollow();
  }

  /**
   * Opens a watch and waits until it has delivered every key the bucket
   * had. A watch that delivers nothing for a while before that is replaced:
   * a push consumer the server does not deliver to (seen, rarely, when a
   * second coordinator opens the store while the first writes) would
   * otherwise hold the coordinator's start for good.
   */
  private async follow(): Promise<void> {
    let stallMs = CATCH_UP_STALL_MS;
    for (;;) {
      // The watch before this one, if any, ends quietly: only the newest follows the bucket.
      const generation = ++this.generation;
      this.stopWatch?.();
      this.stopWatch = null;
      const { values } = await this.kv.status();
      const watch = await this.kv.watch();
      if (this.stopped || generation !== this.generation) {
        watch.stop();
        return;
      }
      this.stopWatch = () => watch.stop();
      let read = false;
      let ended = false;
      let lastDelivery = Date.now();
      let wake: () => void = () => undefined;
      const woken = new Promise<void>((resolve) => (wake = resolve));
      const caughtUp = () => {
        read = true;
        wake();
      };
      // An empty bucket sends nothing until its first write: there is nothing to wait for.
      if (values === 0) caughtUp();
      void (async () => {
        try {
          for await (const e of watch) {
            lastDelivery = Date.now();
            this.apply(e);
            if (e.delta === 0) caughtUp();
          }
        } catch (err) {
          if (generation === this.generation) this.log.warn({ bucket: this.name, err: String(err) }, "store watch ended");
        }
        // A replaced watch ends quietly: its successor follows the bucket.
        if (generation !== this.generation) return;
        this.stopWatch = null;
        // Before it caught up, the loop below opens the next one: the cache does not count as read until a watch is.
        if (!read) {
          ended = true;
          wake();
          return;
        }
        if (!this.stopped) {
          this.log.warn({ bucket: this.name }, "store watch stopped; following the bucket again");
          setTimeout(() => this.refollow(), 500);
        }
      })();
      while (!read && !ended && !this.stopped) {
        await Promise.race([woken, new Promise((r) => setTimeout(r, CATCH_UP_CHECK_MS))]);
        if (read || ended || this.stopped) break;
        // A TTL bucket whose entries all aged out between the count and the watch sends nothing: the stream, empty now, says so.
        const state = await this.kv.status().then((st) => st.streamInfo.state, () => null);
        if (state?.messages === 0) caughtUp();
        else if (Date.now() - lastDelivery >= stallMs) break;
      }
      if (read || this.stopped) return;
      if (ended) {
        this.log.warn({ bucket: this.name }, "store watch ended before it caught up; following the bucket again");
        await new Promise((r) => setTimeout(r, 500));
      } else {
        this.log.warn({ bucket: this.name, stalledMs: stallMs }, "store watch delivered nothing before it caught up; replacing it");
        stallMs = Math.min(stallMs * 2, CATCH_UP_STALL_MAX_MS);
      }
    }
  }

  /** Follows the bucket again, retrying while its servers are away: a cache that gave up would serve old values for good. */
  private refollow(): void {
    if (this.stopped || this.refollowing) return;
    this.refollowing = true;
    void pRetry(() => (this.stopped ? Promise.resolve() : this.follow()), {
      retries: Number.POSITIVE_INFINITY,
      // A closed connection never comes back: the process is stopping, or gave up on a start.
      shouldRetry: ({ error }) => error.name !== "ClosedConnectionError",
      minTimeout: 500,
      maxTimeout: 5_000,
      onFailedAttempt: ({ error, attemptNumber }) => {
        if (error.name !== "ClosedConnectionError") this.log.warn({ bucket: this.name, err: String(error), attempt: attemptNumber }, "could not follow the bucket again; retrying");
      },
    })
      .catch((err: unknown) => this.log.warn({ bucket: this.name, err: String(err) }, "stopped following the bucket: its connection is closed"))
      .finally(() => (this.refollowing = false));
  }

  private apply(e: KvWatchEntry): void {
    if (e.revision > this.lastRevision) this.lastRevision = e.revision;
    const known = this.entries.get(e.key);
    if (known && known.revision >= e.revision) return;
    if (e.operation !== "PUT") {
      if (known) this.unset(e.key);
      return;
    }
    let value: T;
    try {
      value = e.json<T>();
    } catch {
      this.log.warn({ bucket: this.name, key: e.key }, "ignored a store entry that is not JSON");
      return;
    }
    this.set(e.key, { value, revision: e.revision, created: e.created.getTime() });
  }

  private set(key: string, entry: CachedEntry<T>): void {
    this.entries.set(key, entry);
    const parent = parentOf(key);
    let group = this.groups.get(parent);
    if (!group) {
      group = new Set();
      this.groups.set(parent, group);
    }
    group.add(key);
    for (const l of this.listeners) l(key, entry);
  }

  private unset(key: string): void {
    this.entries.delete(key);
    const parent = parentOf(key);
    const group = this.groups.get(parent);
    group?.delete(key);
    if (group?.size === 0) this.groups.delete(parent);
    for (const l of this.listeners) l(key, null);
  }

  /**
   * Takes a value this process just wrote, so that its own next read sees
   * it even before the watch brings it back.
   */
  remember(key: string, value: T, revision: number): void {
    const known = this.entries.get(key);
    if (known && known.revision >= revision) return;
    this.set(key, { value, revision, created: Date.now() });
  }

  /**
   * Reads one key from the server: after a compare-and-set lost, so that
   * the next attempt starts from what the server holds even when the watch
   * lags behind (it is being re-created after a server went away).
   */
  async refresh(key: string): Promise<void> {
    const e = await this.kv.get(key);
    const known = this.entries.get(key);
    // The server's answer is the truth here, whichever way the cache was off.
    if (!e || e.operation !== "PUT") {
      if (known) this.unset(key);
      return;
    }
    if (known?.revision !== e.revision) this.log.warn({ bucket: this.name, key, cached: known?.revision ?? null, server: e.revision }, "a cached entry was not the server's; read it again");
    let value: T;
    try {
      value = e.json<T>();
    } catch {
      this.log.warn({ bucket: this.name, key }, "ignored a store entry that is not JSON");
      return;
    }
    this.set(key, { value, revision: e.revision, created: e.created.getTime() });
  }

  forgetKey(key: string, revision: number): void {
    const known = this.entries.get(key);
    if (!known || known.revision >= revision) return;
    this.unset(key);
  }

  get(key: string): T | undefined {
    return this.entries.get(key)?.value;
  }

  entry(key: string): CachedEntry<T> | undefined {
    return this.entries.get(key);
  }

  /** Every entry whose key is `<parent>.<one more part>`, without walking the others. */
  *childrenOf(parent: string): IterableIterator<[string, CachedEntry<T>]> {
    for (const key of [...(this.groups.get(parent) ?? [])]) {
      const entry = this.entries.get(key);
      if (entry) yield [key, entry];
    }
  }

  /** Every entry whose key starts with the prefix. */
  *withPrefix(prefix: string): IterableIterator<[string, CachedEntry<T>]> {
    for (const [k, e] of this.entries) if (k.startsWith(prefix)) yield [k, e];
  }

  all(): IterableIterator<[string, CachedEntry<T>]> {
    return this.entries.entries();
  }

  get size(): number {
    return this.entries.size;
  }

  onChange(listener: ChangeListener<T>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stop(): void {
    this.stopped = true;
    if (this.lagTimer) clearInterval(this.lagTimer);
    this.stopWatch?.();
  }
}
