import type { NatsConnection } from "@nats-io/transport-node";
import { runCommand } from "../../agent/commands.js";
import { CoordinatorLink } from "../../agent/coordinator-link.js";
import { ensureBootstrapped, ensureJoined } from "../../agent/formation.js";
import { probeRound } from "../../agent/heartbeat.js";
import { IncusClient } from "../../agent/incus-client.js";
import { WakeableSleep } from "../../agent/wakeable-sleep.js";
import {
  Command,
  FLEET_VERSION,
  MacPurpose,
  signed,
  Subject,
  verifyMac,
  WireCodec,
  type Assignment,
  type ClusterKeys,
  type CommandResult,
  type NodeFacts,
  type PreflightReport,
} from "../../shared/index.js";
import type { SimulatedMember } from "./incus-simulator.js";

const commandCodec = new WireCodec("Command", Command);
const encoder = new TextEncoder();

export interface SimulatedAgentOptions {
  heartbeatMs: number;
  pullIntervalMs: number;
  peersPerRound: number;
  requestTimeoutMs: number;
}

/**
 * A SIMULATED agent, for the scale benchmark only. It speaks the real NATS
 * protocol through the agent's own CoordinatorLink (enrollment proof,
 * signed pulls, reports, heartbeats), bootstraps and joins through the
 * agent's own formation code against a simulated Incus over its unix
 * socket, and runs the coordinator's commands with the agent's own handlers.
 * What it does not do is measure: its preflight, probes and heartbeat
 * contents come from the simulated cluster's state, without network traffic.
 */
export class SimulatedAgent {
  readonly link: CoordinatorLink;
  private readonly incus: IncusClient;
  private running = true;
  private cursor = 0;
  private beats = 0;
  private sentVersion = -1;
  private readonly sleeper = new WakeableSleep();
  /** Round trips of assignment pulls that were not held by the coordinator (milliseconds). */
  readonly pullRtts: number[] = [];
  clustered = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly keys: ClusterKeys,
    readonly cluster: string,
    readonly member: SimulatedMember,
    private readonly options: SimulatedAgentOptions,
  ) {
    this.link = new CoordinatorLink(nc, keys, cluster, member.name, options.requestTimeoutMs);
    this.incus = new IncusClient(member.socketPath, 10_000);
  }

  start(): void {
    this.nc.subscribe(Subject.command(this.cluster, this.member.name), { callback: (_e, m) => void this.onCommand(m.data, (d) => m.respond(d)) });
    this.nc.subscribe(Subject.nudge(this.cluster), { callback: () => this.sleeper.wake() });
    void this.loop();
    setTimeout(() => this.heartbeatTimer(), Math.random() * this.options.heartbeatMs);
  }

  stop(): void {
    this.running = false;
    this.sleeper.wake();
    this.incus.close();
  }

  private pause(ms: number): Promise<void> {
    return this.sleeper.sleep(ms);
  }

  private memberNames: { version: number; names: string[] } | null = null;

  private facts(): NodeFacts {
    const m = this.member;
    const c = m.clusterPlan;
    if (m.clustered && this.memberNames?.version !== c.version) this.memberNames = { version: c.version, names: c.members.map((x) => x.name) };
    return {
      address: m.address,
      agentVersion: FLEET_VERSION,
      incus: {
        observedAt: Date.now(),
        reachable: true,
        version: "6.0.4",
        apiExtensions: 450,
        serverName: m.name,
        clustered: m.clustered,
        ...(m.clustered ? { members: this.memberNames!.names } : {}),
      },
    };
  }

  private preflight(target: string): PreflightReport {
    return {
      target,
      at: new Date().toISOString(),
      checks: [
        { name: "port", ok: true, detail: `${target} reachable (simulated)` },
        { name: "latency", ok: true, detail: "0.3 ms (simulated)" },
        { name: "version", ok: true, detail: "Incus 6.0.4" },
        { name: "clock", ok: true, detail: "in step (simulated)" },
      ],
    };
  }

  private async loop(): Promise<void> {
    let preflight: PreflightReport | undefined;
    let last: Assignment | null = null;
    while (this.running) {
      let a: Assignment;
      const waiting = last?.kind === "wait" && !preflight;
      const started = performance.now();
      try {
        a = await this.link.pull(this.facts(), preflight, waiting ? 10_000 : 0);
      } catch {
        await this.pause(250 + Math.random() * 500);
        continue;
      }
      if (!waiting) this.pullRtts.push(performance.now() - started);
      preflight = undefined;
      last = a;
      switch (a.kind) {
        case "bootstrap":
          await this.carryOut("bootstrap", () => ensureBootstrapped(this.incus, a));
          break;
        case "join":
          await this.carryOut("join", () => ensureJoined(this.incus, this.keys, this.cluster, a));
          break;
        case "prepare":
          preflight = this.preflight(a.target.address);
          break;
        case "wait":
          await this.pause(20);
          break;
        case "member":
        case "retired":
          this.clustered = this.member.clustered;
          await this.pause(this.options.pullIntervalMs * (0.75 + Math.random() / 2));
          break;
        case "held":
        case "rejected":
          await this.pause(a.retryAfterMs);
          break;
      }
    }
  }

  private async carryOut(what: "bootstrap" | "join", action: () => Promise<unknown>): Promise<void> {
    const started = Date.now();
    let outcome: "bootstrapped" | "joined" | "failed" = what === "bootstrap" ? "bootstrapped" : "joined";
    let detail = "ok";
    try {
      await action();
    } catch (err) {
      outcome = "failed";
      detail = err instanceof Error ? err.message : String(err);
    }
    for (let attempt = 0; attempt < 5 && this.running; attempt++) {
      try {
        await this.link.report({ outcome, assignment: what, detail, durationMs: Date.now() - started, facts: this.facts() });
        return;
      } catch {
        await this.pause(200);
      }
    }
  }

  private heartbeatTimer(): void {
    if (!this.running) return;
    this.heartbeat();
    setTimeout(() => this.heartbeatTimer(), this.options.heartbeatMs);
  }

  /** The heartbeat a real agent of this member would send, made from the simulated cluster's state. */
  private heartbeat(): void {
    if (!this.link.isEnrolled) return;
    this.beats += 1;
    const m = this.member;
    const c = m.clusterPlan;
    // Like a real agent: the view goes out when it changed, and every tenth beat.
    const changed = m.clustered && this.sentVersion !== c.version;
    const sendView = m.clustered && (changed || this.beats % 10 === 1);
    if (sendView) this.sentVersion = c.version;
    const view = sendView
      ? { ok: true, members: c.view().map((v) => ({ name: v.server_name, status: v.status, message: v.message, roles: v.roles, url: v.url, failureDomain: v.failure_domain, groups: v.groups, description: v.description })) }
      : undefined;
    const peers = m.clustered ? c.members.filter((p) => p !== m) : [];
    const { round, next } = probeRound(peers, this.cursor, this.options.peersPerRound);
    this.cursor = next;
    this.link.publishHeartbeat({
      intervalMs: this.options.heartbeatMs,
      incus: { ...this.facts().incus, members: undefined },
      ...(sendView ? { view } : {}),
      pools: [],
      instances: { total: 0, running: 0 },
      latency: { natsMs: 0.4, peers: round.map((p) => ({ node: p.name, address: p.address, rttMs: 0.3, at: Date.now() })) },
      clock: { offsetMs: 0.5, rttMs: 1 },
    });
  }

  private async onCommand(data: Uint8Array, respond: (d: Uint8Array) => boolean): Promise<void> {
    const decoded = commandCodec.decode(data);
    if (!decoded.ok || !verifyMac(this.keys.mac, MacPurpose.Command, decoded.value) || decoded.value.instance !== this.link.instance) return;
    const command = decoded.value;
    let reply: { ok: true; inReplyTo: string; result: CommandResult } | { ok: false; inReplyTo: string; error: { code: string; message: string } };
    try {
      // Probes are simulated: the network between simulated members does not exist.
      const result: CommandResult =
        command.body.kind === "probe"
          ? { kind: "probe", reachable: true, rttMs: 0.3 }
          : await runCommand({ incus: this.incus, keys: this.keys, cluster: this.cluster, address: this.member.address }, command.body);
      reply = { ok: true, inReplyTo: command.id, result };
    } catch (err) {
      reply = { ok: false, inReplyTo: command.id, error: { code: "FLEET_INCUS_ERROR", message: err instanceof Error ? err.message : String(err) } };
    }
    respond(encoder.encode(JSON.stringify(signed(this.keys.mac, MacPurpose.CommandReply, reply))));
  }
}
