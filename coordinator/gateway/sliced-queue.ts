/**
 * A FIFO worked off in short slices of the event loop. Heartbeats go through
 * it: the NATS client hands over every message of a socket read in one go,
 * and thousands of heartbeats handled there and then would hold an agent's
 * assignment request, read in the same chunk, behind all of them. Queued,
 * they cost a push each on arrival, and the requests are answered between
 * slices.
 *
 * Items that waited longer than `maxAgeMs` are dropped unhandled: a newer
 * heartbeat from the same agent supersedes them, and a coordinator that has
 * fallen behind catches up at once instead of working through stale ones.
 */
export class SlicedQueue<T> {
  private items: T[] = [];
  private times: number[] = [];
  private head = 0;
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly handle: (item: T) => void,
    private readonly options: {
      /** Longest stretch of handling before other work gets the event loop back. */
      sliceMs: number;
      /** Oldest an item may be when its turn comes. */
      maxAgeMs: number;
      /** Most items waiting; past it the oldest are dropped. */
      limit: number;
      onDrop: (dropped: number) => void;
      /** The clock slices are measured with (tests give one that moves by item). */
      now?: () => number;
    },
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  private readonly now: () => number;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T, now = this.now()): void {
    if (this.stopped) return;
    if (this.length >= this.options.limit) {
      this.head += 1;
      this.options.onDrop(1);
    }
    this.items.push(item);
    this.times.push(now);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  stop(): void {
    this.stopped = true;
    this.items = [];
    this.times = [];
    this.head = 0;
  }

  private drain(): void {
    this.scheduled = false;
    const started = this.now();
    const until = started + this.options.sliceMs;
    const stale = started - this.options.maxAgeMs;
    let dropped = 0;
    while (this.head < this.items.length && this.times[this.head]! < stale) {
      this.head += 1;
      dropped += 1;
    }
    if (dropped > 0) this.options.onDrop(dropped);
    // The clock is read every few items: reading it costs about as much as a small item.
    while (this.head < this.items.length && !this.stopped) {
      for (let i = 0; i < 8 && this.head < this.items.length; i++) this.handle(this.items[this.head++]!);
      if (this.now() >= until) break;
    }
    if (this.head === this.items.length) {
      this.items = [];
      this.times = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
    if (this.length > 0 && !this.stopped) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }
}
