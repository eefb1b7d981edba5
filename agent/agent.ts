import type { KeyObject } from "node:crypto";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  Command,
  deriveClusterKeys,
  ErrorCode,
  FleetError,
  macFrame,
  Nudge,
  openSignedFrame,
  replyContext,
  Subject,
  WireCodec,
  type Assignment,
  type Capabilities,
  type ClusterKeys,
  type CommandResult,
  type Logger,
  type NodeFacts,
  type PreflightReport,
  type ReportOutcome,
} from "../shared/index.js";
import type { AgentConfig } from "./config.js";
import { runCommand } from "./commands/index.js";
import { candidateVersion } from "./commands/host-actions.js";
import { hostNetwork, type ClusterNetwork } from "./cluster-network.js";
import { CoordinatorLink } from "./coordinator-link.js";
import { ensureBootstrapped, ensureJoined } from "./formation.js";
import { HeartbeatCollector } from "./heartbeat.js";
import { IncusClient } from "./incus-client.js";
import { nodeFacts, readCapabilities, readIdentity, readIncusFacts, runningMembershipOperation } from "./node-facts.js";
import { runPreflight, type PortStandIn } from "./preflight.js";
import { WakeableSleep } from "./wakeable-sleep.js";

const commandCodec = new WireCodec("Command", Command);
const nudgeCodec = new WireCodec("Nudge", Nudge);

/** Commands older than this (by the coordinator's clock as the agent measures it) are refused as replays. */
const COMMAND_MAX_AGE_MS = 5 * 60_000;
const REPORT_RETRY_LIMIT_MS = 60_000;
/** How long the coordinator may hold a waiting agent's pull. */
const LONG_POLL_MS = 10_000;
/** The least time between two held pulls. */
const WAIT_LOOP_MS = 50;
/** How long an agent refused for its password or its name waits before asking again. */
const REJECTED_RETRY_MS = 10_000;
/** The host's certificate, capabilities and candidate version are read again this often. */
const HOST_FACTS_EVERY_MS = 60_000;
/** A time request that failed is tried again after this many heartbeats at the soonest. */
const CLOCK_RETRY_BEATS = 10;
/** Commands that take minutes: a second one for the same member while one runs waits for the same result. */
const LONG_COMMANDS = new Set(["evacuate", "restore", "remove-member", "host-action"]);

export interface AgentStatus {
  enrolled: boolean;
  lastAssignment: Assignment | null;
  droppedMessages: number;
}

/**
 * One agent per Incus host: enrolls, pulls its assignment, carries it out,
 * reports, heartbeats, and answers the coordinator's commands.
 */
export class FleetAgent {
  readonly keys: ClusterKeys;
  readonly incus: IncusClient;
  readonly link: CoordinatorLink;
  private readonly collector: HeartbeatCollector;
  private readonly subs: Subscription[] = [];
  private stopping = false;
  private readonly sleeper = new WakeableSleep();
  private lastAssignment: Assignment | null = null;
  private clockAsked = { pending: false, at: -Infinity };
  private readonly seenCommands = new Map<string, number>();
  private dropped = 0;
  private loops: Promise<void>[] = [];
  private serverName: string;
  /**
   * The membership operation this process is running. Incus says "clustered"
   * as soon as a join starts, so until the join returns the agent itself
   * says it is busy.
   */
  private working: "bootstrapping" | "joining" | null = null;
  /** Listens on the cluster port while the member waits to join, for the cluster's reverse check. */
  private standIn: PortStandIn | null = null;
  private firstFacts = true;
  private hostFacts: { at: number; fingerprint?: string; capabilities?: Capabilities; candidateVersion?: string } = { at: 0 };
  private readonly running = new Map<string, Promise<CommandResult>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly config: AgentConfig,
    private readonly coordinatorKey: KeyObject,
    private readonly log: Logger,
    keys?: ClusterKeys,
    private readonly network: ClusterNetwork = hostNetwork,
  ) {
    this.keys = keys ?? deriveClusterKeys(config.cluster, config.password);
    this.incus = new IncusClient(config.incusSocket, config.incusTimeoutMs);
    this.link = new CoordinatorLink(nc, this.keys, coordinatorKey, config.cluster, config.node, config.requestTimeoutMs);
    this.serverName = config.node;
    this.collector = new HeartbeatCollector(this.incus, this.network.probe, () => this.serverName, {
      intervalMs: config.heartbeatIntervalMs,
      peersPerRound: config.probePeersPerRound,
      // Every part of a beat must fit in the interval, or a slow daemon would make the agent look lost.
      probeTimeoutMs: Math.min(config.probeTimeoutMs, Math.max(200, config.heartbeatIntervalMs * 0.8)),
      viewTimeoutMs: Math.max(200, config.heartbeatIntervalMs * 0.8),
      viewEvery: Math.max(1, config.viewEvery),
    });
  }

  status(): AgentStatus {
    return { enrolled: this.link.isEnrolled, lastAssignment: this.lastAssignment, droppedMessages: this.dropped + [...this.link.dropped.values()].reduce((a, b) => a + b, 0) };
  }

  start(): void {
    const commands = Subject.command(this.config.cluster, this.config.node);
    this.subs.push(this.nc.subscribe(commands, { callback: (_err, msg) => void this.onCommand(commands, msg.data, (d) => msg.respond(d)) }));
    this.subs.push(
      this.nc.subscribe(Subject.nudge(this.config.cluster), {
        callback: (_err, msg) => {
          const nudge = nudgeCodec.decode(msg.data);
          if (!nudge.ok) return this.dropMessage(nudge.reason);
          this.collector.resendView();
          this.sleeper.wake();
        },
      }),
    );
    this.loops = [this.assignmentLoop(), this.heartbeatLoop()];
    this.log.info({ cluster: this.config.cluster, node: this.config.node, address: this.config.address, instance: this.link.instance }, "agent started");
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.sleeper.wake();
    for (const sub of this.subs) sub.unsubscribe();
    await Promise.allSettled(this.loops);
    await this.releasePort();
    this.incus.close();
  }

  private dropMessage(reason: string): void {
    this.dropped += 1;
    this.log.warn({ reason }, "dropped an invalid message");
  }

  /** Sleeps, but wakes early when the coordinator nudges this cluster or the agent stops. */
  private pause(ms: number): Promise<void> {
    return this.stopping ? Promise.resolve() : this.sleeper.sleep(ms);
  }

  /** Reads the facts, first letting a bootstrap or join that was running when this agent (re)started finish. */
  private async facts(): Promise<NodeFacts> {
    let incus = await readIncusFacts(this.incus);
    if (this.firstFacts && incus.clustered) {
      // Restarted in the middle of our own join: Incus may already say clustered while the join still runs.
      const op = await runningMembershipOperation(this.incus).catch(() => null);
      if (op?.description === "Joining cluster" && op.location === "none") incus.busy = "joining";
    }
    this.firstFacts = false;
    if (incus.busy) {
      this.log.info({ busy: incus.busy }, "a membership operation is already running in Incus; waiting for it instead of starting another");
      const op = await runningMembershipOperation(this.incus).catch(() => null);
      if (op) await this.incus.waitOperation(op.id, 180_000).catch((err: unknown) => this.log.warn({ err: String(err) }, "the running membership operation failed"));
      incus = await readIncusFacts(this.incus);
    }
    if (incus.serverName && incus.clustered) this.serverName = incus.serverName;
    return nodeFacts(this.config.address, incus, await this.readHostFacts(incus.reachable));
  }

  /** What changes rarely: the host's own certificate, what its Incus can create, the version its packages offer. */
  private async readHostFacts(reachable: boolean): Promise<Partial<Pick<NodeFacts, "fingerprint" | "capabilities" | "candidateVersion">>> {
    if (reachable && (Date.now() - this.hostFacts.at > HOST_FACTS_EVERY_MS || !this.hostFacts.fingerprint)) {
      try {
        const server = await this.incus.server();
        const [fingerprint, version] = await Promise.all([readIdentity(this.incus, server), candidateVersion(this.config.candidateVersionCommand)]);
        this.hostFacts = { at: Date.now(), capabilities: readCapabilities(server), ...(fingerprint ? { fingerprint } : {}), ...(version ? { candidateVersion: version } : {}) };
      } catch (err) {
        this.log.debug({ err: String(err) }, "could not read the host's certificate and capabilities yet");
      }
    }
    const { at: _at, ...facts } = this.hostFacts;
    return facts;
  }

  private async assignmentLoop(): Promise<void> {
    let preflight: PreflightReport | undefined;
    let backoffMs = 100;
    let lastError = "";
    let held = false;
    let pulledAt = 0;
    while (!this.stopping) {
      let assignment: Assignment;
      try {
        const facts = await this.facts();
        // While waiting its turn, the agent lets the coordinator hold its pull and answer the moment the turn comes.
        held = this.lastAssignment?.kind === "wait" && !preflight;
        pulledAt = Date.now();
        assignment = await this.link.pull(facts, preflight, held ? LONG_POLL_MS : 0);
        backoffMs = 100;
        lastError = "";
      } catch (err) {
        const e = err instanceof FleetError ? err : new FleetError(ErrorCode.Internal, String(err));
        if (e.message !== lastError) this.log.warn({ code: e.code, err: e.message }, "could not get an assignment");
        lastError = e.message;
        const refused = e.code === ErrorCode.AuthFailed || e.code === ErrorCode.NotInSpec;
        if (refused) this.lastAssignment = { kind: "rejected", code: e.code, reason: e.message, retryAfterMs: REJECTED_RETRY_MS };
        await this.pause(refused ? REJECTED_RETRY_MS : backoffMs);
        backoffMs = Math.min(backoffMs * 2, 2_000);
        continue;
      }
      preflight = undefined;
      if (assignment.kind !== "wait" && assignment.kind !== "prepare") await this.releasePort();
      if (this.lastAssignment?.kind !== assignment.kind) this.log.info({ assignment: assignment.kind, reason: "reason" in assignment ? assignment.reason : undefined }, "assignment");
      this.lastAssignment = assignment;
      switch (assignment.kind) {
        case "bootstrap":
          await this.carryOut("bootstrap", () => ensureBootstrapped(this.incus, assignment));
          break;
        case "join":
          await this.carryOut("join", () => ensureJoined(this.incus, this.keys, this.config.cluster, assignment));
          break;
        case "prepare":
          preflight = await this.prepare(assignment);
          break;
        case "wait":
          // The next pull is held by the coordinator until the turn comes, so it goes at once; only a held pull
          // answered straight away pauses, to keep a busy loop from forming.
          if (held) {
            const left = Math.min(assignment.retryAfterMs, WAIT_LOOP_MS - (Date.now() - pulledAt));
            if (left > 0) await this.pause(left);
          }
          break;
        case "held":
        case "rejected":
          await this.pause(assignment.retryAfterMs);
          break;
        case "member":
        case "retired":
          await this.pause(this.config.pullIntervalMs);
          break;
      }
    }
  }

  private async releasePort(): Promise<void> {
    await this.standIn?.close();
    this.standIn = null;
  }

  private async prepare(assignment: Extract<Assignment, { kind: "prepare" }>): Promise<PreflightReport> {
    this.standIn ??= await this.network.standIn(this.config.address);
    const own = await readIncusFacts(this.incus);
    const report = await runPreflight(this.network.probe, {
      target: assignment.target,
      expectedVersion: assignment.expectedVersion,
      ownVersion: own.version,
      clockOffsetMs: this.link.clockSample?.offsetMs ?? null,
      limits: assignment.limits,
    });
    if (this.standIn.problem) report.checks.unshift(this.standIn.problem);
    const failed = report.checks.filter((c) => !c.ok);
    if (failed.length > 0) this.log.warn({ failed }, "preflight failed");
    return report;
  }

  private async carryOut(what: "bootstrap" | "join", action: () => Promise<{ done: "now" | "already" }>): Promise<void> {
    const started = Date.now();
    let outcome: ReportOutcome;
    let detail: string;
    let code: string | undefined;
    this.working = what === "bootstrap" ? "bootstrapping" : "joining";
    try {
      const result = await action();
      outcome = what === "bootstrap" ? "bootstrapped" : "joined";
      detail = result.done === "already" ? `already ${outcome}` : `${outcome} in ${Date.now() - started} ms`;
      this.log.info({ outcome, durationMs: Date.now() - started }, detail);
    } catch (err) {
      const e = err instanceof FleetError ? err : new FleetError(ErrorCode.Incus, String(err));
      outcome = "failed";
      detail = e.message;
      code = e.code;
      this.log.error({ assignment: what, code: e.code, err: e.message }, `${what} failed`);
    } finally {
      this.working = null;
    }
    const deadline = Date.now() + REPORT_RETRY_LIMIT_MS;
    let delay = 100;
    while (!this.stopping) {
      try {
        // The next member waits for this report: GET /1.0 and the running operations are all it needs.
        const facts = nodeFacts(this.config.address, await readIncusFacts(this.incus, this.config.incusTimeoutMs, { members: false }), await this.readHostFacts(true));
        await this.link.report({ outcome, assignment: what, detail, ...(code ? { code } : {}), durationMs: Date.now() - started, facts });
        return;
      } catch (err) {
        // The facts travel with the next hello too, so a report that never arrives loses nothing.
        if (Date.now() > deadline) return;
        this.log.debug({ err: String(err) }, "report not acknowledged yet");
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  /**
   * Every assignment measures the clock too: a member that pulls often enough
   * never asks for the time on its own. When it is due, the time is asked
   * beside the beats, not before one, and a request that fails is not
   * repeated on every beat.
   */
  private measureClockIfDue(): void {
    const interval = this.config.heartbeatIntervalMs;
    if (this.clockAsked.pending || this.link.clockAgeMs() < this.config.clockEvery * interval) return;
    if (performance.now() - this.clockAsked.at < CLOCK_RETRY_BEATS * interval) return;
    this.clockAsked = { pending: true, at: performance.now() };
    void this.link
      .clock()
      .catch(() => null)
      .finally(() => (this.clockAsked.pending = false));
  }

  private async heartbeatLoop(): Promise<void> {
    let wasEnrolled = false;
    while (!this.stopping) {
      const started = Date.now();
      // Enrolled again (the coordinator lost the session): the coordinator may have lost the view too.
      if (this.link.isEnrolled && !wasEnrolled) this.collector.resendView();
      wasEnrolled = this.link.isEnrolled;
      if (this.link.isEnrolled) {
        try {
          this.measureClockIfDue();
          const clock = this.link.clockSample;
          const body = await this.collector.collect(() => this.nc.rtt().catch(() => null), { offsetMs: clock?.offsetMs ?? null, rttMs: clock?.rttMs ?? null });
          if (this.working) body.incus.busy = this.working;
          if (!this.stopping) this.link.publishHeartbeat(body);
        } catch (err) {
          this.log.warn({ err: String(err) }, "heartbeat failed");
        }
      }
      const wait = this.config.heartbeatIntervalMs - (Date.now() - started);
      await new Promise((r) => setTimeout(r, Math.max(10, wait)));
    }
  }

  /**
   * A command from the cluster's owner. It must be signed with the
   * coordinators' key for this very subject, be meant for this agent process,
   * come from an owner no older than one this agent has heard from, be
   * fresh and not seen before. Only then is it run; the answer is framed
   * with the cluster key.
   */
  private async onCommand(subject: string, data: Uint8Array, respond: (data: Uint8Array) => boolean): Promise<void> {
    const opened = openSignedFrame(this.coordinatorKey, subject, data);
    if (!opened.ok) return this.dropMessage(`Command: ${opened.reason}`);
    const decoded = commandCodec.decodeText(opened.json);
    if (!decoded.ok) return this.dropMessage(decoded.reason);
    const command = decoded.value;
    if (command.cluster !== this.config.cluster || command.node !== this.config.node) return this.dropMessage("Command: for another host");
    if (command.instance !== this.link.instance) return this.dropMessage("Command: meant for an earlier run of this agent");
    if (command.epoch < this.link.epoch) return this.dropMessage(`Command: from a coordinator whose lease (${command.epoch}) is older than the owner's (${this.link.epoch})`);
    if (Math.abs(this.link.now() - command.issuedAt) > COMMAND_MAX_AGE_MS || this.seenCommands.has(command.id)) return this.dropMessage("Command: replayed or too old");
    this.link.epoch = command.epoch;
    this.seenCommands.set(command.id, Date.now());
    for (const [id, at] of this.seenCommands) if (Date.now() - at > COMMAND_MAX_AGE_MS * 2) this.seenCommands.delete(id);

    let reply: { ok: true; inReplyTo: string; result: CommandResult } | { ok: false; inReplyTo: string; error: { code: string; message: string } };
    const started = Date.now();
    try {
      const result = await this.runOnce(command.body);
      this.log.debug({ command: command.body.kind, ms: Date.now() - started }, "command done");
      reply = { ok: true, inReplyTo: command.id, result };
    } catch (err) {
      const e = err instanceof FleetError ? err : new FleetError(ErrorCode.Incus, String(err));
      this.log.warn({ command: command.body.kind, code: e.code, err: e.message }, "command failed");
      reply = { ok: false, inReplyTo: command.id, error: { code: e.code, message: e.message } };
    }
    respond(macFrame(this.keys.mac, replyContext(subject), reply));
  }

  /** Long commands for one member run once at a time: a coordinator that took over and asks again gets the same result. */
  private runOnce(body: Command["body"]): Promise<CommandResult> {
    const run = () => runCommand({ incus: this.incus, keys: this.keys, cluster: this.config.cluster, address: this.config.address, hostActions: this.config.hostActions, probe: this.network.probe }, body);
    if (!LONG_COMMANDS.has(body.kind)) return run();
    const key = `${body.kind}/${"member" in body ? body.member : this.config.node}`;
    const known = this.running.get(key);
    if (known) return known;
    const promise = run().finally(() => this.running.delete(key));
    this.running.set(key, promise);
    return promise;
  }
}
