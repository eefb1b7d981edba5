import type { KV, KvEntry, KvWatchEntry } from "@nats-io/kv";

interface Stored {
  value: Uint8Array;
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
  created: Date;
}

class CasError extends Error {
  readonly code = 10071;
  constructor(last: number) {
    super(`wrong last sequence: ${last}`);
  }
}

const decoder = new TextDecoder();

/**
 * An in-memory stand-in for a JetStream key-value bucket, with the same
 * compare-and-set rules (create on absent, update and delete on a revision)
 * and a watch that gives the last values and then every change. For table
 * tests of the controllers in no real time; the real bucket is tested
 * against a real nats-server.
 */
export class MemoryKv {
  private readonly data = new Map<string, Stored>();
  private revision = 0;
  private readonly watchers = new Set<(e: KvWatchEntry) => void>();

  private entry(key: string, s: Stored, extra: { delta?: number; isUpdate?: boolean } = {}): KvWatchEntry {
    return {
      bucket: "memory",
      key,
      value: s.value,
      created: s.created,
      revision: s.revision,
      operation: s.operation,
      length: s.value.length,
      rawKey: key,
      delta: extra.delta ?? 0,
      isUpdate: extra.isUpdate ?? true,
      json: <T>() => JSON.parse(decoder.decode(s.value)) as T,
      string: () => decoder.decode(s.value),
    } as KvWatchEntry;
  }

  private write(key: string, value: Uint8Array, operation: Stored["operation"]): number {
    this.revision += 1;
    const s = { value, revision: this.revision, operation, created: new Date() };
    this.data.set(key, s);
    for (const w of this.watchers) w(this.entry(key, s));
    return this.revision;
  }

  private last(key: string): number {
    const s = this.data.get(key);
    return s && s.operation === "PUT" ? s.revision : 0;
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    if (this.last(key) !== 0) throw new CasError(this.last(key));
    return this.write(key, value, "PUT");
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    return this.write(key, value, "PUT");
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    if ((this.data.get(key)?.revision ?? 0) !== revision) throw new CasError(this.data.get(key)?.revision ?? 0);
    return this.write(key, value, "PUT");
  }

  async delete(key: string, options?: { previousSeq?: number }): Promise<void> {
    if (options?.previousSeq !== undefined && (this.data.get(key)?.revision ?? 0) !== options.previousSeq) throw new CasError(this.data.get(key)?.revision ?? 0);
    this.write(key, new Uint8Array(), "DEL");
  }

  async purge(key: string): Promise<void> {
    this.write(key, new Uint8Array(), "PURGE");
  }

  async get(key: string): Promise<KvEntry | null> {
    const s = this.data.get(key);
    return s ? this.entry(key, s) : null;
  }

  /** Calls to fail before the bucket answers again, as while a server is away or a stream elects its leader. */
  private failing = 0;
  private readonly watchStops = new Set<() => void>();

  /** Ends every watch, and fails the next `calls` status and watch calls with a timeout. */
  outage(calls: number): void {
    this.failing = calls;
    for (const stop of [...this.watchStops]) stop();
  }

  private ageOut = false;

  /** The entries age out (as a TTL bucket's do, with no marker) just before the next watch starts. */
  ageOutBeforeNextWatch(): void {
    this.ageOut = true;
  }

  private stalls = 0;
  private cut = false;

  /** The next `count` watches deliver nothing at all, as a push consumer the server does not deliver to. */
  stallNextWatches(count: number): void {
    this.stalls = count;
  }

  /** The next watch ends after its first entry, as one whose server went away while it caught up. */
  cutNextWatch(): void {
    this.cut = true;
  }

  private answer(): void {
    if (this.failing === 0) return;
    this.failing -= 1;
    throw Object.assign(new Error("timeout"), { name: "TimeoutError" });
  }

  async status(): Promise<{ values: number; streamInfo: { state: { messages: number; first_seq: number; last_seq: number } } }> {
    this.answer();
    return { values: this.data.size, streamInfo: { state: { messages: this.data.size, first_seq: this.data.size > 0 ? 1 : 0, last_seq: this.revision } } };
  }

  async watch(): Promise<AsyncIterable<KvWatchEntry> & { stop(): void }> {
    this.answer();
    if (this.ageOut) {
      this.ageOut = false;
      this.data.clear();
    }
    const stalled = this.stalls > 0;
    const cut = this.cut;
    this.stalls = Math.max(0, this.stalls - 1);
    this.cut = false;
    const queue: KvWatchEntry[] = [];
    let wake: (() => void) | null = null;
    let stopped = false;
    const initial = stalled ? [] : [...this.data].map(([k, s]) => [k, s] as const);
    initial.forEach(([k, s], i) => queue.push(this.entry(k, s, { delta: initial.length - 1 - i, isUpdate: false })));
    const push = (e: KvWatchEntry) => {
      queue.push(e);
      wake?.();
    };
    if (!stalled) this.watchers.add(push);
    const watchers = this.watchers;
    const stops = this.watchStops;
    const stop = () => {
      stopped = true;
      watchers.delete(push);
      stops.delete(stop);
      wake?.();
    };
    stops.add(stop);
    return {
      stop,
      async *[Symbol.asyncIterator]() {
        while (!stopped) {
          while (queue.length > 0) {
            yield queue.shift()!;
            if (cut) return stop();
          }
          await new Promise<void>((r) => (wake = r));
          wake = null;
        }
      },
    };
  }

  /** As the stores see it. */
  asKv(): KV {
    return this as unknown as KV;
  }
}
