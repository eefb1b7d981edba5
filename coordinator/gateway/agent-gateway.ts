import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  AgentMessage,
  AssignRequest,
  asFleetError,
  ChallengeRequest,
  ErrorCode,
  FleetError,
  Heartbeat,
  Hello,
  openMacFrame,
  parseAgentSubject,
  replyContext,
  Report,
  signedFrame,
  Subject,
  TimeRequest,
  WireCodec,
  type Assignment,
  type ClusterKeys,
  type Logger,
  type Nudge,
  type ServerTimes,
  type SigningKey,
} from "../../shared/index.js";
import type { Clock } from "../controller/clock.js";
import type { Metrics } from "../metrics.js";
import { isTransient } from "../store/jetstream-errors.js";
import type { Challenges } from "./challenges.js";
import type { AgentFacts } from "./agent-facts.js";
import { RateLimiter } from "./rate-limiter.js";
import type { Channel, SessionTable } from "./sessions.js";
import { SlicedQueue } from "./sliced-queue.js";

const codecs = {
  challenge: new WireCodec("ChallengeRequest", ChallengeRequest),
  hello: new WireCodec("Hello", Hello),
  assign: new WireCodec("AssignRequest", AssignRequest),
  report: new WireCodec("Report", Report),
  heartbeat: new WireCodec("Heartbeat", Heartbeat),
  time: new WireCodec("TimeRequest", TimeRequest),
};

/** What the gateway asks of the rest of the coordinator. */
export interface GatewayPorts {
  keysOf(cluster: string): ClusterKeys | null;
  /** Whether a node may speak for the cluster: in the spec, or a member Incus still lists. */
  knows(cluster: string, node: string): boolean;
  /** The node's assignment from the cluster's latest reconcile. */
  assignmentFor(cluster: string, node: string): Assignment;
  /** Resolves after the cluster's next reconcile has run (or the timeout). */
  reconciled(cluster: string, timeoutMs: number): Promise<void>;
  /** Resolves when the node's assignment changes (or the timeout). */
  assignmentChanged(cluster: string, node: string, timeoutMs: number): Promise<void>;
  epochOf(cluster: string): number | null;
  ownedSince(cluster: string): number;
  /**
   * A member the spec gives only by address (the Salt pillar's bootstrap
   * host) takes the name of the agent that enrolls from that address, whose
   * credential is bound to that name. False when there is nothing to name.
   */
  bindName(cluster: string, address: string, node: string): Promise<boolean>;
}

/** Heartbeats are handled this long at a stretch before requests get a turn. */
const HEARTBEAT_SLICE_MS = 5;
/** A heartbeat that waited this long is dropped: the agent's next one is already on its way. */
const HEARTBEAT_MAX_WAIT_MS = 1_000;
/** Two seconds of heartbeats from ten thousand agents, whatever the rate. */
const HEARTBEAT_BACKLOG_LIMIT = 20_000;
/** Per agent: twenty messages at once, five a second after that: several times what a well-behaved agent sends. */
export const PER_AGENT_RATE_LIMIT = { burst: 20, perSecond: 5 };
const DROP_LOG_EVERY_MS = 10_000;

interface QueuedHeartbeat {
  cluster: string;
  node: string;
  subject: string;
  text: string;
  /** Silence is measured from when a heartbeat arrived, not from when its turn came. */
  receivedAt: number;
}

/**
 * The coordinator's side of the agents' subjects, for the clusters it owns.
 * Each message is checked in an order that keeps junk cheap and harmless: is
 * the subject an agent's, is the sender within its rate, does the frame's
 * HMAC verify (before anything is parsed or changed), does the body match
 * the contract, is it fresh in its session. Only then does it record a fact
 * and wake the cluster's controller; pulls are answered from the latest
 * reconcile, and every answer is signed with the coordinators' key.
 */
export class AgentGateway {
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly limiter: RateLimiter;
  private readonly dropped = new Map<string, number>();
  private lastDropLog = 0;
  private readonly heartbeats: SlicedQueue<QueuedHeartbeat>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly signing: SigningKey,
    private readonly challenges: Challenges,
    private readonly sessions: SessionTable,
    private readonly facts: AgentFacts,
    private readonly ports: GatewayPorts,
    private readonly metrics: Metrics,
    private readonly clock: Clock,
    private readonly log: Logger,
    maxAgents = 100_000,
  ) {
    this.limiter = new RateLimiter(PER_AGENT_RATE_LIMIT, maxAgents);
    this.heartbeats = new SlicedQueue<QueuedHeartbeat>((hb) => this.handleHeartbeat(hb), {
      sliceMs: HEARTBEAT_SLICE_MS,
      maxAgeMs: HEARTBEAT_MAX_WAIT_MS,
      limit: HEARTBEAT_BACKLOG_LIMIT,
      onDrop: (n) => this.drop("heartbeat", "overload", n),
    });
    metrics.watchHeartbeatBacklog(() => this.heartbeats.length);
  }

  /** Starts answering a cluster's agents: this coordinator owns it now. */
  serve(cluster: string): void {
    if (this.subscriptions.has(cluster)) return;
    // Kept as text: the message's bytes are a view into the whole socket read, which a queued view would hold on to.
    const sub = this.nc.subscribe(Subject.fromCluster(cluster), { callback: (_err, msg) => this.receive(cluster, msg) });
    this.subscriptions.set(cluster, sub);
    // Agents that found nobody answering back off; once the server has the subscription, they are told to ask at once.
    void this.nc
      .flush()
      .then(() => {
        if (this.subscriptions.get(cluster) === sub) this.nudge(cluster, "a coordinator answers this cluster now");
      })
      .catch(() => undefined);
  }

  /** Tells every agent of the cluster to pull its assignment now rather than at its next idle pull. */
  nudge(cluster: string, reason: string): void {
    this.nc.publish(Subject.nudge(cluster), JSON.stringify({ cluster, reason } satisfies Nudge));
  }

  /** Stops answering a cluster's agents: another coordinator owns it now. */
  release(cluster: string): void {
    this.subscriptions.get(cluster)?.unsubscribe();
    this.subscriptions.delete(cluster);
    this.sessions.drop(cluster);
  }

  async stop(): Promise<void> {
    for (const cluster of [...this.subscriptions.keys()]) this.release(cluster);
    this.heartbeats.stop();
  }

  private drop(endpoint: string, result: string, count = 1): void {
    this.metrics.natsMessages.inc({ endpoint, result }, count);
    const key = `${endpoint}/${result}`;
    this.dropped.set(key, (this.dropped.get(key) ?? 0) + count);
    const now = this.clock.now();
    if (now - this.lastDropLog < DROP_LOG_EVERY_MS) return;
    this.lastDropLog = now;
    this.log.warn({ dropped: Object.fromEntries(this.dropped) }, "dropped messages from agents (counted in fleet_nats_messages_total)");
    this.dropped.clear();
  }

  private receive(cluster: string, msg: Msg): void {
    const now = this.clock.now();
    const parsed = parseAgentSubject(msg.subject);
    if (!parsed || parsed.cluster !== cluster) return this.drop("unknown", "invalid");
    const { node, kind } = parsed;
    // A host the spec does not name may still ask to enroll, and be told why it cannot.
    const enrolling = kind === AgentMessage.Challenge || kind === AgentMessage.Hello || kind === AgentMessage.Time;
    if (!enrolling && !this.ports.knows(cluster, node)) return this.drop(kind, "unknown-node");
    if (!this.limiter.allow(`${cluster}/${node}`, now)) return this.drop(kind, "rate-limited");
    if (kind === AgentMessage.Heartbeat) {
      this.heartbeats.push({ cluster, node, subject: msg.subject, text: msg.string(), receivedAt: now });
      return;
    }
    const started = performance.now();
    void this.request(cluster, node, kind, msg, now)
      .then((reply) => {
        this.metrics.natsMessages.inc({ endpoint: kind, result: "ok" });
        this.respond(msg, reply);
      })
      .catch((err: unknown) => {
        // A store leader election is a moment's wait for the agent, which asks again: not an error of ours.
        const e = isTransient(err) ? new FleetError(ErrorCode.Unavailable, "the fleet store is unavailable for a moment; ask again") : asFleetError(err);
        this.metrics.natsMessages.inc({ endpoint: kind, result: e.code === ErrorCode.AuthFailed || e.code === ErrorCode.SessionUnknown ? "unauthenticated" : "error" });
        if (e.code === ErrorCode.Internal) this.log.error({ endpoint: kind, cluster, node, err: e.message, stack: e.stack }, "request failed");
        else this.log.debug({ endpoint: kind, cluster, node, code: e.code, err: e.message }, "request refused");
        this.respond(msg, { ok: false, inReplyTo: "", error: { code: e.code, message: e.message } });
      })
      .finally(() => this.metrics.natsDuration.observe({ endpoint: kind }, (performance.now() - started) / 1000));
  }

  private respond(msg: Msg, body: unknown): void {
    if (msg.reply) msg.respond(signedFrame(this.signing, replyContext(msg.subject), body));
  }

  /** Opens the frame with the cluster key, then checks the body against its schema. */
  private open<T>(cluster: string, subject: string, data: Uint8Array | string, codec: { decodeText(text: string): { ok: true; value: T } | { ok: false; reason: string } }, node: string): T {
    const keys = this.ports.keysOf(cluster);
    if (!keys) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${cluster}' is not in the spec`);
    const opened = openMacFrame(keys.mac, subject, data);
    if (!opened.ok) {
      const message = `wrong cluster password: the proof from ${node} does not match cluster '${cluster}' (${opened.reason}); check the cluster password on that host`;
      this.facts.rejected(cluster, node, ErrorCode.AuthFailed, message);
      throw new FleetError(ErrorCode.AuthFailed, message);
    }
    const decoded = codec.decodeText(opened.json);
    if (!decoded.ok) throw new FleetError(ErrorCode.MessageInvalid, decoded.reason);
    const body = decoded.value as T & { cluster?: string; node?: string };
    // The subject is what nats-server's permissions bind to the sender's credential; the body must agree with it.
    if (body.cluster !== cluster || body.node !== node) throw new FleetError(ErrorCode.AuthFailed, `a message on ${subject} speaks for ${body.cluster}/${body.node}`);
    return body;
  }

  private authenticate(cluster: string, node: string, body: { instance: string; seq: number; sentAt: number }, channel: Channel): void {
    const stored = this.facts.sessionOf(cluster, node);
    const check = this.sessions.check(cluster, node, body, channel, stored, this.ports.ownedSince(cluster), this.clock.now());
    if (check === "unknown") throw new FleetError(ErrorCode.SessionUnknown, "this agent process is not enrolled; enroll again");
    if (check === "stale") throw new FleetError(ErrorCode.AuthFailed, "the message is too old, or was sent before this coordinator took the cluster over; enroll again if your clock is off");
    if (check === "replay") throw new FleetError(ErrorCode.AuthFailed, "replayed or reordered message");
  }

  /** `receivedAt`: when the request arrived, by this coordinator's clock; assignments carry it back for the agent's clock. */
  private async request(cluster: string, node: string, kind: string, msg: Msg, receivedAt: number): Promise<unknown> {
    switch (kind) {
      case AgentMessage.Challenge: {
        const req = this.open(cluster, msg.subject, msg.data, codecs.challenge, node);
        return { inReplyTo: req.instance, ...this.challenges.issue(cluster, node, req.instance, this.clock.now()) };
      }
      case AgentMessage.Time: {
        const req = this.open(cluster, msg.subject, msg.data, codecs.time, node);
        return { inReplyTo: req.nonce, now: this.clock.now() };
      }
      case AgentMessage.Hello:
        return this.hello(cluster, node, msg, receivedAt);
      case AgentMessage.Assign:
        return this.assign(cluster, node, msg, receivedAt);
      case AgentMessage.Report: {
        const report = this.open(cluster, msg.subject, msg.data, codecs.report, node);
        this.authenticate(cluster, node, report, "request");
        await this.facts.report(cluster, node, report);
        return { ok: true, inReplyTo: String(report.seq) };
      }
      default:
        this.drop(kind, "invalid");
        throw new FleetError(ErrorCode.MessageInvalid, `unknown message kind '${kind}'`);
    }
  }

  /** This coordinator's clock when a request arrived and now, as it is answered: the agent's clock is measured from them. */
  private times(receivedAt: number): ServerTimes {
    return { received: receivedAt, answered: this.clock.now() };
  }

  private async hello(cluster: string, node: string, msg: Msg, receivedAt: number): Promise<unknown> {
    const hello = this.open(cluster, msg.subject, msg.data, codecs.hello, node);
    if (!this.challenges.take(hello.challenge, cluster, node, hello.instance, this.clock.now())) {
      throw new FleetError(ErrorCode.AuthFailed, "the challenge is unknown, used or expired; ask for a new one");
    }
    await this.ports.bindName(cluster, hello.facts.address, node);
    await this.facts.enroll(cluster, node, hello.instance, hello.facts);
    this.sessions.open(cluster, node, hello.instance);
    const epoch = this.ports.epochOf(cluster) ?? 0;
    await this.ports.reconciled(cluster, 2_000);
    return { ok: true, inReplyTo: hello.challenge, epoch, assignment: this.ports.assignmentFor(cluster, node), times: this.times(receivedAt) };
  }

  private async assign(cluster: string, node: string, msg: Msg, receivedAt: number): Promise<unknown> {
    const req = this.open(cluster, msg.subject, msg.data, codecs.assign, node);
    this.authenticate(cluster, node, req, "request");
    const changed = await this.facts.pulled(cluster, node, req.facts, req.preflight);
    if (changed) await this.ports.reconciled(cluster, 2_000);
    let assignment = this.ports.assignmentFor(cluster, node);
    if (assignment.kind === "wait" && req.waitMs) {
      await this.ports.assignmentChanged(cluster, node, Math.min(req.waitMs, 30_000));
      assignment = this.ports.assignmentFor(cluster, node);
    }
    return { ok: true, inReplyTo: String(req.seq), epoch: this.ports.epochOf(cluster) ?? 0, assignment, times: this.times(receivedAt) };
  }

  private handleHeartbeat(hb: QueuedHeartbeat): void {
    try {
      const body = this.open(hb.cluster, hb.subject, hb.text, codecs.heartbeat, hb.node);
      this.authenticate(hb.cluster, hb.node, body, "heartbeat");
      this.facts.heartbeat(body, hb.receivedAt);
      this.metrics.natsMessages.inc({ endpoint: "heartbeat", result: "ok" });
    } catch (err) {
      const e = asFleetError(err);
      this.drop("heartbeat", e.code === ErrorCode.AuthFailed || e.code === ErrorCode.SessionUnknown ? "unauthenticated" : "invalid");
    }
  }
}
