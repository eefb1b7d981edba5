import type { Clock } from "./clock.js";

export interface WorkResult {
  /** Look at the key again after this long, even if nothing asks for it. */
  requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  /** Keys handled at the same time; one key is never handled twice at once. */
  concurrency: number;
  /** First retry delay after a failure; doubles per failure in a row, up to `maxBackoffMs`. */
  baseBackoffMs: number;
  maxBackoffMs: number;
  onError?: (key: string, err: unknown, retryInMs: number) => void;
}

/**
 * A deduplicating work queue with per-key backoff, after controller-runtime's:
 * anything that might change a key's outcome only adds the key; a key added
 * while it is queued is queued once, and a key added while it is being
 * handled is handled once more afterwards. Handlers look at the state as it
 * is now, never at what woke them.
 */
export class WorkQueue {
  private readonly queued = new Set<string>();
  private readonly order: string[] = [];
  private readonly running = new Set<string>();
  private readonly again = new Set<string>();
  private readonly timers = new Map<string, { at: number; handle: unknown }>();
  private readonly failures = new Map<string, number>();
  private readonly idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly handle: (key: string) => Promise<WorkResult | void>,
    private readonly options: WorkQueueOptions,
    private readonly clock: Clock,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    // A key backing off after failures waits for its timer: a stream of facts must not turn backoff into a busy loop.
    if (this.failures.has(key) && this.timers.has(key)) return;
    if (this.running.has(key)) {
      this.again.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.order.push(key);
    this.pump();
  }

  /** Adds the key after a delay; an earlier pending delay for it wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.clock.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) this.clock.clearTimeout(pending.handle);
    const handle = this.clock.setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    this.timers.set(key, { at, handle });
  }

  /** Drops a key: queued work, timers and backoff (the key's owner changed). */
  remove(key: string): void {
    this.queued.delete(key);
    this.again.delete(key);
    this.failures.delete(key);
    const pending = this.timers.get(key);
    if (pending) this.clock.clearTimeout(pending.handle);
    this.timers.delete(key);
  }

  isBusy(key: string): boolean {
    return this.running.has(key);
  }

  get size(): number {
    return this.queued.size;
  }

  /** Resolves when nothing is queued or running (timers may still be pending). */
  idle(): Promise<void> {
    if (this.queued.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) this.clock.clearTimeout(t.handle);
    this.timers.clear();
    this.queued.clear();
    this.order.length = 0;
    this.again.clear();
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.options.concurrency && this.order.length > 0) {
      const key = this.order.shift()!;
      if (!this.queued.has(key)) continue;
      this.queued.delete(key);
      this.running.add(key);
      void this.run(key);
    }
    if (this.queued.size === 0 && this.running.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async run(key: string): Promise<void> {
    try {
      const result = await this.handle(key);
      this.failures.delete(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const delay = Math.min(this.options.baseBackoffMs * 2 ** (failures - 1), this.options.maxBackoffMs);
      this.options.onError?.(key, err, delay);
      this.addAfter(key, delay);
    } finally {
      this.running.delete(key);
      if (this.again.delete(key)) this.add(key);
      this.pump();
    }
  }
}
