import { randomUUID } from "node:crypto";
import pRetry from "p-retry";
import type { NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient } from "@nats-io/jetstream";
import { EventKinds, FleetEvent, Subject, WireCodec, type EventKind, type Logger } from "../../shared/index.js";
import { EVENT_DUPLICATE_WINDOW_MS } from "../store/buckets.js";
import { isTransient } from "../store/jetstream-errors.js";
import { RecentIds } from "./recent-ids.js";

export interface EventSpec {
  kind: EventKind;
  message: string;
  node?: string;
  data?: Record<string, unknown>;
  /**
   * Names the event for the stream's duplicate check: the same change
   * published twice (by a coordinator resuming another's operation) is kept
   * once. Random when not given.
   */
  id?: string;
}

export interface EventSink {
  publish(cluster: string, spec: EventSpec): void;
}

/** A sink that also tells whether an event is already out: published by this process, or seen in the stream lately. */
export interface KnowingEventSink extends EventSink {
  known(id: string): boolean;
}

/** The event as published; the stream adds `seq`. */
type Published = Omit<FleetEvent, "seq">;

const codec = new WireCodec("FleetEvent", FleetEvent);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
function decodeEvent(data: Uint8Array, seq: number): ReturnType<typeof codec.validate> {
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(data));
  } catch {
    return { ok: false, reason: "FleetEvent: not valid JSON" };
  }
  return codec.validate(body && typeof body === "object" ? { ...body, seq } : body);
}

/** How often the follower is checked against the stream. */
const LAG_CHECK_MS = 5_000;

/** Events every coordinator keeps at hand for the API, the page and the WebSocket's replay. */
const RECENT_LIMIT = 2_000;
/**
 * Most event ids remembered as taken, and as published: ids are kept for the
 * stream's duplicate window, and this many cover several hundred events a
 * second all through it.
 */
const RECENT_IDS_LIMIT = 50_000;

/**
 * Fleet events, persisted in a JetStream stream bounded by age and size.
 * Every coordinator publishes into the stream and follows it, so that the
 * API, `incus-fleet events --since` and the WebSocket give the same history
 * from any coordinator, after restarts, each event once (the stream drops a
 * second publish of the same event id).
 */
export class EventLog implements KnowingEventSink {
  private readonly recentEvents: FleetEvent[] = [];
  private readonly listeners = new Set<(event: FleetEvent) => void>();
  private readonly localListeners = new Set<(event: Published) => void>();
  private readonly js: JetStreamClient;
  private follower: ConsumerMessages | null = null;
  /** The ids of the events taken lately. */
  private readonly takenIds = new RecentIds(EVENT_DUPLICATE_WINDOW_MS, RECENT_IDS_LIMIT);
  /** The ids of the events this process published lately, which the stream may not have given back yet. */
  private readonly publishedIds = new RecentIds(EVENT_DUPLICATE_WINDOW_MS, RECENT_IDS_LIMIT);
  private lastSeq = 0;
  private stopped = false;
  private laggingSince: number | null = null;
  private lagTimer: ReturnType<typeof setInterval> | null = null;
  private pending: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    private readonly log: Logger,
  ) {
    this.js = jetstream(nc, { timeout: 5_000 });
  }

  /**
   * Starts following the stream from its last events, and from every event
   * of the duplicate window however many that is: a coordinator that takes a
   * cluster over must know what its predecessor sent, or it sends it again
   * (see `known`). Resolves once they are read.
   */
  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.nc, { timeout: 5_000 });
    const info = await jsm.streams.info(this.stream);
    const lastFew = Math.max(info.state.first_seq, info.state.last_seq - RECENT_LIMIT + 1, 1);
    const windowStart = Date.now() - EVENT_DUPLICATE_WINDOW_MS;
    // Only a stream with more events than are kept at hand, some of them within the window, needs the window looked up.
    const lookUp = info.state.messages > RECENT_LIMIT && Date.parse(info.state.last_ts) >= windowStart;
    const from = lookUp ? Math.min(lastFew, await this.firstSeqSince(windowStart, lastFew)) : lastFew;
    const backlog = info.state.last_seq >= from ? info.state.last_seq - from + 1 : 0;
    let caughtUp: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    if (backlog === 0) caughtUp();
    void this.follow(from, () => caughtUp());
    await ready;
    this.lagTimer = setInterval(() => void this.checkLag(jsm).catch(() => undefined), LAG_CHECK_MS);
    this.lagTimer.unref();
  }

  /** The sequence of the first event stored at or after `at`; `otherwise` when there is none. */
  private async firstSeqSince(at: number, otherwise: number): Promise<number> {
    const consumer = await this.js.consumers.get(this.stream, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(at).toISOString() });
    try {
      return (await consumer.next({ expires: 2_000 }))?.seq ?? otherwise;
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  /**
   * The client re-creates a consumer whose server went away, which can take
   * a while: one that stays behind the stream for two checks in a row is
   * replaced, so that the API and the page do not go quiet after a
   * JetStream server restarts.
   */
  private async checkLag(jsm: Awaited<ReturnType<typeof jetstreamManager>>): Promise<void> {
    const state = (await jsm.streams.info(this.stream)).state;
    if (state.last_seq <= this.lastSeq || state.messages === 0) {
      this.laggingSince = null;
      return;
    }
    if (this.laggingSince === null) {
      this.laggingSince = Date.now();
      return;
    }
    this.laggingSince = null;
    this.log.warn({ at: this.lastSeq, streamAt: state.last_seq }, "the event stream's follower fell behind; following it again");
    await this.follower?.close().catch(() => undefined);
  }

  private async follow(from: number, caughtUp: () => void): Promise<void> {
    while (!this.stopped) {
      try {
        const consumer = await this.js.consumers.get(this.stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(from, this.lastSeq + 1) });
        this.follower = await consumer.consume();
        for await (const m of this.follower) {
          this.take(m.seq, m.data);
          if (m.info.pending === 0) caughtUp();
        }
      } catch (err) {
        if (!this.stopped) this.log.warn({ err: String(err) }, "following the event stream failed; following it again");
      }
      caughtUp();
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  private take(seq: number, data: Uint8Array): void {
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    const decoded = decodeEvent(data, seq);
    if (!decoded.ok) {
      this.log.warn({ seq, reason: decoded.reason }, "skipped an event that does not match the contract");
      return;
    }
    const event = decoded.value;
    // The stream drops a republished event within its duplicate window, but a publish retried across the loss of
    // its stream leader can slip through: an event already taken is not served twice.
    if (this.takenIds.has(event.id)) return;
    this.takenIds.add(event.id, Date.now());
    this.recentEvents.push(event);
    if (this.recentEvents.length > RECENT_LIMIT) this.recentEvents.splice(0, this.recentEvents.length - RECENT_LIMIT);
    for (const l of this.listeners) l(event);
  }

  publish(cluster: string, spec: EventSpec): void {
    const event: Published = {
      id: spec.id ?? randomUUID(),
      at: new Date().toISOString(),
      cluster,
      kind: spec.kind,
      severity: EventKinds[spec.kind].severity,
      ...(spec.node ? { node: spec.node } : {}),
      message: spec.message,
      data: spec.data ?? {},
    };
    const level = event.severity === "info" ? "info" : event.severity === "warning" ? "warn" : "error";
    this.log[level]({ event: { kind: event.kind, cluster, node: event.node, id: event.id, data: event.data } }, event.message);
    for (const l of this.localListeners) l(event);
    this.publishedIds.add(event.id, Date.now());
    // In order, and retried through a stream leader election: an event is never lost, and the stream keeps it once.
    this.pending = this.pending.then(() =>
      pRetry(() => this.js.publish(Subject.event(cluster, event.kind), encoder.encode(JSON.stringify(event)), { msgID: event.id }), {
        retries: 20,
        minTimeout: 200,
        maxTimeout: 2_000,
        shouldRetry: ({ error }) => !this.stopped && isTransient(error),
      }).catch((err: unknown) => this.log.error({ err: String(err), kind: event.kind, id: event.id }, "could not store a fleet event")),
    );
  }

  known(id: string): boolean {
    return this.takenIds.has(id) || this.publishedIds.has(id);
  }

  /** Waits until every event published so far is in the stream. */
  flushed(): Promise<unknown> {
    return this.pending;
  }

  recent(filter: { cluster?: string; kinds?: readonly EventKind[]; afterSeq?: number; sinceTime?: number; limit?: number } = {}): FleetEvent[] {
    const matched = this.recentEvents.filter(
      (e) =>
        (!filter.cluster || e.cluster === filter.cluster) &&
        (!filter.kinds || filter.kinds.includes(e.kind)) &&
        (filter.afterSeq === undefined || e.seq > filter.afterSeq) &&
        (filter.sinceTime === undefined || Date.parse(e.at) >= filter.sinceTime),
    );
    return filter.afterSeq !== undefined || filter.sinceTime !== undefined ? matched.slice(0, filter.limit ?? 100) : matched.slice(-(filter.limit ?? 100));
  }

  /** The oldest event still at hand: reads that go further back are read from the stream itself. */
  oldestRecent(): FleetEvent | undefined {
    return this.recentEvents[0];
  }

  /** Events from the stream itself, from a sequence number or a time on, oldest first. */
  async read(from: { seq?: number; time?: number }, filter: { cluster?: string; limit: number }): Promise<FleetEvent[]> {
    const consumer = await this.js.consumers.get(this.stream, {
      ...(from.seq !== undefined ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, from.seq) } : { opt_start_time: new Date(from.time ?? 0).toISOString() }),
      ...(filter.cluster ? { filter_subjects: Subject.eventsOf(filter.cluster) } : {}),
    });
    const out: FleetEvent[] = [];
    const ids = new Set<string>();
    try {
      const batch = await consumer.fetch({ max_messages: filter.limit, expires: 2_000 });
      for await (const m of batch) {
        const decoded = decodeEvent(m.data, m.seq);
        if (decoded.ok && !ids.has(decoded.value.id)) {
          ids.add(decoded.value.id);
          out.push(decoded.value);
        }
        if (m.info.pending === 0 || out.length >= filter.limit) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return out;
  }

  /** Every event as it reaches the stream, from any coordinator. */
  onEvent(listener: (event: FleetEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every event this coordinator publishes, at once (for its metrics). */
  onPublish(listener: (event: Published) => void): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.lagTimer) clearInterval(this.lagTimer);
    await this.pending;
    await this.follower?.close().catch(() => undefined);
  }
}
