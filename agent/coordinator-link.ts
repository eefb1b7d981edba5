import { randomUUID, type KeyObject } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  Ack,
  AgentMessage,
  AssignReply,
  ChallengeReply,
  ErrorCode,
  FleetError,
  isErrorCode,
  macFrame,
  openSignedFrame,
  randomNonce,
  replyContext,
  Subject,
  TimeReply,
  WireCodec,
  type Assignment,
  type ClusterKeys,
  type Heartbeat,
  type NodeFacts,
  type PreflightReport,
  type Report,
  type ServerTimes,
} from "../shared/index.js";
import { ClockFilter, clockSampleFrom, wallLead, type ClockSample } from "./clock.js";

const codecs = {
  challenge: new WireCodec("ChallengeReply", ChallengeReply),
  assign: new WireCodec("AssignReply", AssignReply),
  ack: new WireCodec("Ack", Ack),
  time: new WireCodec("TimeReply", TimeReply),
};

type Channel = "request" | "heartbeat";

/** This host's clock as a request leaves, and the wall clock's lead then: a step during the exchange spoils its measurement. */
const sendingNow = () => ({ at: Date.now(), lead: wallLead() });

/**
 * The agent's channel to the coordinator that owns its cluster. Everything
 * it sends is framed with an HMAC made with the cluster key (the proof that
 * it knows the password), numbered, and stamped with the coordinators' time
 * as the agent reckons it; everything it accepts back must be signed with
 * the coordinators' key, which the agent can check but no host can make,
 * and must answer the very request it sent.
 */
export class CoordinatorLink {
  readonly instance = randomUUID();
  /** Requests and heartbeats are numbered apart: the coordinator handles them on separate queues. */
  private seq = { request: 0, heartbeat: 0 };
  private enrolled = false;
  /** The highest lease epoch heard from the cluster's owner: commands from an older owner are refused. */
  epoch = 0;
  /** The coordinators' clock minus this host's, as last measured. */
  offsetMs = 0;
  private readonly clockFilter = new ClockFilter();
  /** Messages that failed checks, by reason; exposed for tests and logs. */
  readonly dropped = new Map<string, number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly keys: ClusterKeys,
    private readonly coordinatorKey: KeyObject,
    readonly cluster: string,
    readonly node: string,
    private readonly timeoutMs: number,
  ) {}

  get isEnrolled(): boolean {
    return this.enrolled;
  }

  private nextSeq(channel: Channel): number {
    this.seq[channel] += 1;
    return this.seq[channel];
  }

  private subject(kind: AgentMessage): string {
    return Subject.fromAgent(this.cluster, this.node, kind);
  }

  /** A request to the cluster's owner; its answer opened and checked against the coordinators' key. */
  private async ask(kind: AgentMessage, body: unknown, extraMs = 0): Promise<string> {
    const subject = this.subject(kind);
    let data: Uint8Array;
    try {
      data = (await this.nc.request(subject, macFrame(this.keys.mac, subject, body), { timeout: this.timeoutMs + extraMs })).data;
    } catch (cause) {
      const noOwner = /no responders/i.test(String((cause as { message?: string })?.message ?? cause));
      throw new FleetError(
        noOwner ? ErrorCode.NoCoordinator : ErrorCode.Timeout,
        noOwner ? `no coordinator serves cluster '${this.cluster}' right now (is it in the spec? is a coordinator running?)` : `no answer from the coordinator on ${kind}`,
        { cause },
      );
    }
    const opened = openSignedFrame(this.coordinatorKey, replyContext(subject), data);
    if (!opened.ok) this.drop(`${kind} reply: ${opened.reason}`);
    // A refusal has one shape whatever was asked; it is signed like any answer.
    if (opened.json.startsWith('{"ok":false')) {
      const refused = codecs.ack.decodeText(opened.json);
      if (!refused.ok || refused.value.ok) this.drop(`${kind} reply: a refusal that does not match the contract`);
      if (refused.value.error.code === ErrorCode.SessionUnknown) this.enrolled = false;
      // Refused as too old, most likely: whatever the clock measurements said, they are measured again.
      if (refused.value.error.code === ErrorCode.AuthFailed) this.clockFilter.forget();
      throw new FleetError(isErrorCode(refused.value.error.code) ? refused.value.error.code : ErrorCode.Internal, refused.value.error.message);
    }
    return opened.json;
  }

  private drop(reason: string): never {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    throw new FleetError(ErrorCode.MessageInvalid, reason);
  }

  /** Asks for an assignment and opens it; the times it carries measure the clock. */
  private async askAssignment(kind: AgentMessage, body: unknown, inReplyTo: string, extraMs = 0): Promise<Assignment> {
    const sent = sendingNow();
    const json = await this.ask(kind, body, extraMs);
    const received = Date.now();
    const decoded = codecs.assign.decodeText(json);
    if (!decoded.ok) this.drop(decoded.reason);
    const reply = decoded.value;
    if (!reply.ok) this.drop("AssignReply: a refusal that does not match the contract");
    if (reply.inReplyTo !== inReplyTo) this.drop("AssignReply: not an answer to this request");
    this.epoch = Math.max(this.epoch, reply.epoch);
    if (reply.times) this.measure(sent, reply.times, received);
    return reply.assignment;
  }

  private measure(sent: { at: number; lead: number }, times: ServerTimes, received: number): ClockSample {
    const sample = clockSampleFrom(sent.at, times, received);
    this.clockFilter.add(sample, sent.lead);
    this.offsetMs = this.clockFilter.best?.offsetMs ?? this.offsetMs;
    return sample;
  }

  /** The clock offset the recent measurements (time requests and assignments) agree on best. */
  get clockSample(): ClockSample | null {
    return this.clockFilter.best;
  }

  /** How long ago the clock was last measured; forever when it never was, or the host's clock was stepped since. */
  clockAgeMs(): number {
    return this.clockFilter.ageMs();
  }


  /** The coordinators' time, read half way through the round trip: sent messages carry it, so that old ones can be told from new. */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Proves the password over a fresh challenge and returns the first assignment. */
  async enroll(facts: NodeFacts): Promise<Assignment> {
    await this.clock().catch(() => null);
    const challenge = codecs.challenge.decodeText(await this.ask(AgentMessage.Challenge, { cluster: this.cluster, node: this.node, instance: this.instance }));
    if (!challenge.ok) this.drop(challenge.reason);
    if (challenge.value.inReplyTo !== this.instance) this.drop("ChallengeReply: not for this agent process");
    const hello = { cluster: this.cluster, node: this.node, instance: this.instance, challenge: challenge.value.challenge, sentAt: this.now(), facts };
    const assignment = await this.askAssignment(AgentMessage.Hello, hello, challenge.value.challenge);
    this.enrolled = true;
    this.seq = { request: 0, heartbeat: 0 };
    return assignment;
  }

  /**
   * Pulls the current assignment, enrolling first when the coordinator does
   * not know this process. With `waitMs`, a "wait" may be held by the
   * coordinator and answered as soon as something changes.
   */
  async pull(facts: NodeFacts, preflight?: PreflightReport, waitMs = 0): Promise<Assignment> {
    if (!this.enrolled) return this.enroll(facts);
    const seq = this.nextSeq("request");
    const body = { cluster: this.cluster, node: this.node, instance: this.instance, seq, sentAt: this.now(), facts, ...(preflight ? { preflight } : {}), ...(waitMs > 0 ? { waitMs } : {}) };
    try {
      return await this.askAssignment(AgentMessage.Assign, body, String(seq), waitMs);
    } catch (err) {
      if (err instanceof FleetError && err.code === ErrorCode.SessionUnknown) return this.enroll(facts);
      throw err;
    }
  }

  async report(report: Omit<Report, "cluster" | "node" | "instance" | "seq" | "sentAt">): Promise<void> {
    const seq = this.nextSeq("request");
    const body = { ...report, cluster: this.cluster, node: this.node, instance: this.instance, seq, sentAt: this.now() };
    const ack = codecs.ack.decodeText(await this.ask(AgentMessage.Report, body));
    if (!ack.ok) this.drop(ack.reason);
    if (ack.value.inReplyTo !== String(seq)) this.drop("Ack: not an answer to this report");
  }

  publishHeartbeat(heartbeat: Omit<Heartbeat, "cluster" | "node" | "instance" | "seq" | "sentAt">): void {
    if (!this.enrolled) return;
    const subject = this.subject(AgentMessage.Heartbeat);
    const body = { ...heartbeat, cluster: this.cluster, node: this.node, instance: this.instance, seq: this.nextSeq("heartbeat"), sentAt: this.now() };
    this.nc.publish(subject, macFrame(this.keys.mac, subject, body));
  }

  /** NTP-style: the coordinator's clock read half way through the round trip. */
  async clock(): Promise<ClockSample> {
    const nonce = randomNonce(16);
    const sent = sendingNow();
    const json = await this.ask(AgentMessage.Time, { cluster: this.cluster, node: this.node, nonce });
    const received = Date.now();
    const reply = codecs.time.decodeText(json);
    if (!reply.ok) this.drop(reply.reason);
    if (reply.value.inReplyTo !== nonce) this.drop("TimeReply: not an answer to this request");
    return this.measure(sent, { received: reply.value.now, answered: reply.value.now }, received);
  }
}
