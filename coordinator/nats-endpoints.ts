import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { Svcm, type Service } from "@nats-io/services";
import {
  AssignRequest,
  asFleetError,
  ChallengeRequest,
  COORDINATOR_QUEUE,
  ErrorCode,
  FLEET_VERSION,
  Heartbeat,
  Hello,
  Report,
  Subject,
  WireCodec,
  type Logger,
} from "../shared/index.js";
import type { Metrics } from "./metrics.js";
import type { Reconciler } from "./reconciler.js";
import { SlicedQueue } from "./sliced-queue.js";

const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));

const codecs = {
  challenge: new WireCodec("ChallengeRequest", ChallengeRequest),
  hello: new WireCodec("Hello", Hello),
  assign: new WireCodec("AssignRequest", AssignRequest),
  report: new WireCodec("Report", Report),
  heartbeat: new WireCodec("Heartbeat", Heartbeat),
};

/** Heartbeats are handled this long at a stretch before requests get a turn. */
const HEARTBEAT_SLICE_MS = 5;
/** A heartbeat that waited this long is dropped: the agent's next one is already on its way. */
const HEARTBEAT_MAX_WAIT_MS = 1_000;
/** A bound on memory whatever the rate: two seconds of heartbeats from ten thousand agents. */
const HEARTBEAT_BACKLOG_LIMIT = 20_000;

interface QueuedHeartbeat {
  text: string;
  /** Silence is measured from when a heartbeat arrived, not from when its turn in the queue came. */
  receivedAt: number;
}

/** Errors that mean "who are you?", counted apart from plain failures. */
const AUTH_CODES = new Set<string>([ErrorCode.AuthFailed, ErrorCode.SessionUnknown, ErrorCode.NotInSpec, ErrorCode.UnknownCluster]);

/**
 * The coordinator's NATS side: request endpoints (as a NATS micro service, so
 * `$SRV.STATS` shows their figures) and the heartbeat subscription. Every
 * message is checked against its schema first; one that fails is dropped,
 * counted and logged with the reason, and never reaches the reconciler.
 */
export class NatsEndpoints {
  private service: Service | null = null;
  private heartbeats: Subscription | null = null;
  private readonly heartbeatQueue = new SlicedQueue<QueuedHeartbeat>((hb) => this.handleHeartbeat(hb), {
    sliceMs: HEARTBEAT_SLICE_MS,
    maxAgeMs: HEARTBEAT_MAX_WAIT_MS,
    limit: HEARTBEAT_BACKLOG_LIMIT,
    onDrop: (n) => {
      this.metrics.natsMessages.inc({ endpoint: "heartbeat", result: "overload" }, n);
      this.overloadLog();
    },
  });
  private lastOverloadLog = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly reconciler: Reconciler,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    metrics.watchHeartbeatBacklog(() => this.heartbeatQueue.length);
  }

  private overloadLog(): void {
    if (Date.now() - this.lastOverloadLog < 10_000) return;
    this.lastOverloadLog = Date.now();
    this.log.warn({ backlog: this.heartbeatQueue.length, limit: HEARTBEAT_BACKLOG_LIMIT }, "heartbeats arrive faster than they are processed; stale ones are dropped");
  }

  async start(): Promise<void> {
    this.service = await new Svcm(this.nc).add({
      name: "incus-fleet-coordinator",
      version: FLEET_VERSION,
      description: "incus-fleet enrollment, assignments and reports",
      queue: COORDINATOR_QUEUE,
    });
    this.endpoint("challenge", Subject.challenge, codecs.challenge, async (req) => this.reconciler.challenge(req));
    this.endpoint("hello", Subject.hello, codecs.hello, (req) => this.reconciler.hello(req));
    this.endpoint("assign", Subject.assign, codecs.assign, (req) => this.reconciler.assign(req));
    this.endpoint("report", Subject.report, codecs.report, async (req) => {
      await this.reconciler.report(req);
      return { ok: true };
    });
    this.service.addEndpoint("time", { subject: Subject.time, handler: (_err, msg) => void msg.respond(json({ now: Date.now() })) });
    // Every coordinator sees every heartbeat (no queue group): health lives in memory.
    // Kept as text: the message's bytes are a view into the whole socket read, which a queued view would hold on to.
    this.heartbeats = this.nc.subscribe(Subject.heartbeatAll, { callback: (_err, msg) => this.heartbeatQueue.push({ text: msg.string(), receivedAt: Date.now() }) });
  }

  private handleHeartbeat({ text, receivedAt }: QueuedHeartbeat): void {
    const decoded = codecs.heartbeat.decodeText(text);
    if (!decoded.ok) return this.invalid("heartbeat", decoded.reason);
    try {
      this.reconciler.heartbeat(decoded.value, receivedAt);
      this.metrics.natsMessages.inc({ endpoint: "heartbeat", result: "ok" });
    } catch (err) {
      const e = asFleetError(err);
      this.metrics.natsMessages.inc({ endpoint: "heartbeat", result: AUTH_CODES.has(e.code) ? "unauthenticated" : "error" });
      this.log.debug({ node: decoded.value.node, code: e.code, err: e.message }, "heartbeat refused");
    }
  }

  async stop(): Promise<void> {
    this.heartbeats?.unsubscribe();
    this.heartbeatQueue.stop();
    await this.service?.stop().catch(() => undefined);
  }

  private invalid(endpoint: string, reason: string): void {
    this.metrics.natsMessages.inc({ endpoint, result: "invalid" });
    this.log.warn({ endpoint, reason }, "dropped an invalid message");
  }

  private endpoint<T>(name: string, subject: string, codec: { decode(d: Uint8Array): { ok: true; value: T } | { ok: false; reason: string } }, handle: (value: T) => Promise<unknown>): void {
    this.service!.addEndpoint(name, {
      subject,
      handler: (_err, msg: Msg) => {
        const started = performance.now();
        const decoded = codec.decode(msg.data);
        if (!decoded.ok) {
          this.invalid(name, decoded.reason);
          msg.respond(json({ ok: false, error: { code: ErrorCode.MessageInvalid, message: decoded.reason } }));
          return;
        }
        handle(decoded.value)
          .then((reply) => {
            this.metrics.natsMessages.inc({ endpoint: name, result: "ok" });
            msg.respond(json(reply));
          })
          .catch((err: unknown) => {
            const e = asFleetError(err);
            this.metrics.natsMessages.inc({ endpoint: name, result: AUTH_CODES.has(e.code) ? "unauthenticated" : "error" });
            if (e.code === ErrorCode.Internal) this.log.error({ endpoint: name, err: e.message, stack: e.stack }, "request failed");
            else this.log.debug({ endpoint: name, code: e.code, err: e.message }, "request refused");
            msg.respond(json({ ok: false, error: { code: e.code, message: e.message } }));
          })
          .finally(() => this.metrics.natsDuration.observe({ endpoint: name }, (performance.now() - started) / 1000));
      },
    });
  }
}
