import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AssignReply,
  Ack,
  ChallengeReply,
  ErrorCode,
  FleetError,
  MacPurpose,
  signed,
  Subject,
  TimeReply,
  verifyMac,
  WireCodec,
  type Assignment,
  type ClusterKeys,
  type Heartbeat,
  type NodeFacts,
  type PreflightReport,
  type Report,
} from "../shared/index.js";

const codecs = {
  challenge: new WireCodec("ChallengeReply", ChallengeReply),
  assign: new WireCodec("AssignReply", AssignReply),
  ack: new WireCodec("Ack", Ack),
  time: new WireCodec("TimeReply", TimeReply),
};

const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));

export interface ClockSample {
  offsetMs: number;
  rttMs: number;
}

/**
 * The agent's signed channel to the coordinator. The agent proves the cluster
 * password once per process over a fresh challenge; after that every message
 * carries this process's instance id, a rising sequence number and an HMAC,
 * so nothing can be replayed or forged without the password.
 */
export class CoordinatorLink {
  readonly instance = randomUUID();
  /** Requests and heartbeats are numbered apart: the coordinator handles them on separate subscriptions. */
  private seq = { request: 0, heartbeat: 0 };
  private enrolled = false;
  /** Messages that failed validation, by reason; exposed for tests and logs. */
  readonly dropped = new Map<string, number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly keys: ClusterKeys,
    readonly cluster: string,
    readonly node: string,
    private readonly timeoutMs: number,
  ) {}

  get isEnrolled(): boolean {
    return this.enrolled;
  }

  private nextSeq(channel: "request" | "heartbeat"): number {
    this.seq[channel] += 1;
    return this.seq[channel];
  }

  private async ask(subject: string, payload: unknown, extraMs = 0): Promise<Uint8Array> {
    try {
      const msg = await this.nc.request(subject, json(payload), { timeout: this.timeoutMs + extraMs });
      return msg.data;
    } catch (cause) {
      throw new FleetError(ErrorCode.Timeout, `no answer from the coordinator on ${subject}`, { cause });
    }
  }

  private drop(reason: string): never {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    throw new FleetError(ErrorCode.MessageInvalid, reason);
  }

  private openAssignment(data: Uint8Array, inReplyTo: string): Assignment {
    const decoded = codecs.assign.decode(data);
    if (!decoded.ok) this.drop(decoded.reason);
    const reply = decoded.value;
    if (!reply.ok) {
      if (reply.error.code === ErrorCode.SessionUnknown) this.enrolled = false;
      throw new FleetError(reply.error.code as ErrorCode, reply.error.message);
    }
    if (reply.inReplyTo !== inReplyTo || !verifyMac(this.keys.mac, MacPurpose.AssignReply, reply)) {
      this.drop("AssignReply: not signed with this cluster's key, or not an answer to this request");
    }
    return reply.assignment;
  }

  /** Proves the password over a fresh nonce and returns the first assignment. */
  async enroll(facts: NodeFacts): Promise<Assignment> {
    const challenge = codecs.challenge.decode(await this.ask(Subject.challenge, { cluster: this.cluster, node: this.node }));
    if (!challenge.ok) this.drop(challenge.reason);
    const { nonce } = challenge.value;
    const hello = signed(this.keys.mac, MacPurpose.Hello, { cluster: this.cluster, node: this.node, instance: this.instance, nonce, facts });
    const assignment = this.openAssignment(await this.ask(Subject.hello, hello), nonce);
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
    const body = { cluster: this.cluster, node: this.node, instance: this.instance, seq, facts, ...(preflight ? { preflight } : {}), ...(waitMs > 0 ? { waitMs } : {}) };
    try {
      return this.openAssignment(await this.ask(Subject.assign, signed(this.keys.mac, MacPurpose.Assign, body), waitMs), String(seq));
    } catch (err) {
      if (err instanceof FleetError && err.code === ErrorCode.SessionUnknown) return this.enroll(facts);
      throw err;
    }
  }

  async report(report: Omit<Report, "cluster" | "node" | "instance" | "seq" | "mac">): Promise<void> {
    const body = { ...report, cluster: this.cluster, node: this.node, instance: this.instance, seq: this.nextSeq("request") };
    const ack = codecs.ack.decode(await this.ask(Subject.report, signed(this.keys.mac, MacPurpose.Report, body)));
    if (!ack.ok) this.drop(ack.reason);
    if (!ack.value.ok) {
      if (ack.value.error.code === ErrorCode.SessionUnknown) this.enrolled = false;
      throw new FleetError(ack.value.error.code as ErrorCode, ack.value.error.message);
    }
  }

  publishHeartbeat(heartbeat: Omit<Heartbeat, "cluster" | "node" | "instance" | "seq" | "mac">): void {
    if (!this.enrolled) return;
    const body = { ...heartbeat, cluster: this.cluster, node: this.node, instance: this.instance, seq: this.nextSeq("heartbeat") };
    this.nc.publish(Subject.heartbeat(this.cluster, this.node), json(signed(this.keys.mac, MacPurpose.Heartbeat, body)));
  }

  /** NTP-style: the coordinator's clock read half way through the round trip. */
  async clock(): Promise<ClockSample> {
    const sent = Date.now();
    const data = await this.ask(Subject.time, {});
    const received = Date.now();
    const reply = codecs.time.decode(data);
    if (!reply.ok) this.drop(reply.reason);
    const rttMs = received - sent;
    return { offsetMs: reply.value.now - (sent + rttMs / 2), rttMs };
  }
}
