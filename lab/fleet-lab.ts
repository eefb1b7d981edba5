import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { incusMember, killLeftovers, removeStateDir, startIncusd, stopIncusd, INCUSD, type IncusMember } from "./incus-member.js";
import { startNatsServer, type NatsServer } from "./nats-server.js";
import type { DelayedLink } from "./delayed-link.js";
import { createBridges, createHost, labNetwork, removeBridges, removeHost, removeStale, type HostLinks, type LabNetwork } from "./network.js";
import { startDaemon, stopDaemon, systemEnv, waitFor, type Daemon } from "./processes.js";
import { COORDINATOR_NODE_FLAGS } from "../coordinator/node-flags.js";

export const LAB_ROOT = "/tmp/incus-fleet-lab";
const DIST = fileURLToPath(new URL("..", import.meta.url));
export const AGENT_MAIN = join(DIST, "agent", "main.js");
export const COORDINATOR_MAIN = join(DIST, "coordinator", "main.js");

export interface LabOptions {
  /** Which address slice this lab uses; labs that run at once need different slots. */
  slot: number;
  /** Names of bridges, namespaces and links start with this. */
  prefix: string;
  hosts: number;
  /** Hosts (by index, from 1) whose cluster link goes through a relay that can be slowed down. */
  delayedHosts?: number[];
  heartbeatIntervalMs?: number;
}

export interface AgentOptions {
  cluster?: string;
  password?: string;
  env?: Record<string, string>;
}

/** Fails loudly when the lab cannot run here: end-to-end tests are never skipped. */
export function assertLabPrerequisites(): void {
  if (process.getuid?.() !== 0) throw new Error("the Incus lab needs root (network namespaces, incusd)");
  if (!existsSync(INCUSD)) throw new Error(`${INCUSD} is missing: install Incus 6.0 (apt-get install -t bookworm-backports incus-base)`);
  if (!existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run 'npm run build' first`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export interface SpecMember {
  name: string;
  present?: boolean;
  force?: boolean;
  failureDomain?: string;
  groups?: string[];
  description?: string;
}

/**
 * A lab of real hosts on one machine: a cluster and a management bridge,
 * one network namespace per host with a real incusd, a real nats-server, the
 * coordinator and the agents as real processes.
 */
export class FleetLab {
  readonly hosts: HostLinks[] = [];
  readonly members: IncusMember[] = [];
  readonly agents = new Map<string, Daemon>();
  readonly delays = new Map<string, DelayedLink>();
  coordinator: Daemon | null = null;
  coordinatorUrl = "";
  private coordinatorPort = 0;
  private coordinatorStarts = 0;

  private constructor(
    readonly options: LabOptions,
    readonly net: LabNetwork,
    readonly nats: NatsServer,
    readonly root: string,
  ) {}

  static async create(options: LabOptions): Promise<FleetLab> {
    assertLabPrerequisites();
    const net = await labNetwork(options.slot, options.prefix);
    mkdirSync(LAB_ROOT, { recursive: true });
    for (const stale of readdirSync(LAB_ROOT).filter((d) => d.startsWith(`${options.prefix}-`))) {
      await killLeftovers(join(LAB_ROOT, stale));
      await removeStateDir(join(LAB_ROOT, stale));
    }
    await removeStale(net);
    const root = mkdtempSync(join(LAB_ROOT, `${options.prefix}-`));
    // Unprivileged containers run as a mapped root that must be able to traverse down to their rootfs.
    chmodSync(LAB_ROOT, 0o755);
    chmodSync(root, 0o711);
    await createBridges(net);
    let nats: NatsServer | null = null;
    try {
      nats = await startNatsServer({ host: net.mgmtGateway });
      const lab = new FleetLab(options, net, nats, root);
      for (let i = 1; i <= options.hosts; i++) {
        const { host, delay } = await createHost(net, i, options.delayedHosts?.includes(i) ? { logDir: root } : undefined);
        lab.hosts.push(host);
        lab.members.push(incusMember(`node${i}`, host, root));
        if (delay) lab.delays.set(`node${i}`, delay);
      }
      return lab;
    } catch (err) {
      await nats?.stop();
      await removeBridges(net);
      throw err;
    }
  }

  member(name: string): IncusMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no lab member ${name}`);
    return m;
  }

  /** The cluster address of a member, host:8443. */
  address(name: string): string {
    return `${this.member(name).host.clusterAddress}:8443`;
  }

  async startIncus(names: string[] = this.members.map((m) => m.name)): Promise<void> {
    await Promise.all(names.map((n) => startIncusd(this.member(n))));
  }

  async startCoordinator(env: Record<string, string> = {}): Promise<string> {
    this.coordinatorPort ||= await freePort();
    this.coordinatorStarts += 1;
    const log = join(this.root, `coordinator-${this.coordinatorStarts}.log`);
    this.coordinator = startDaemon(process.execPath, [...COORDINATOR_NODE_FLAGS, COORDINATOR_MAIN], {
      env: systemEnv({
        FLEET_NATS_SERVERS: this.nats.url,
        FLEET_HTTP_HOST: "127.0.0.1",
        FLEET_HTTP_PORT: String(this.coordinatorPort),
        FLEET_HEARTBEAT_INTERVAL_MS: String(this.options.heartbeatIntervalMs ?? 1_000),
        FLEET_LOG_LEVEL: "debug",
        ...env,
      }),
      log,
    });
    this.coordinatorUrl = `http://127.0.0.1:${this.coordinatorPort}`;
    await waitFor("the coordinator to answer", async () => (await fetch(`${this.coordinatorUrl}/v1/health`)).ok, 20_000, 50);
    return this.coordinatorUrl;
  }

  async stopCoordinator(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.coordinator) await stopDaemon(this.coordinator, signal, 10_000);
    this.coordinator = null;
  }

  startAgent(name: string, options: AgentOptions = {}): Daemon {
    const m = this.member(name);
    const log = join(this.root, `agent-${name}.log`);
    const daemon = startDaemon("ip", ["netns", "exec", m.host.namespace, process.execPath, AGENT_MAIN], {
      env: systemEnv({
        FLEET_NATS_SERVERS: this.nats.url,
        FLEET_CLUSTER: options.cluster ?? "lab",
        FLEET_CLUSTER_PASSWORD: options.password ?? "lab-password-1",
        FLEET_NODE_NAME: name,
        FLEET_NODE_ADDRESS: this.address(name),
        FLEET_INCUS_SOCKET: m.socket,
        FLEET_HEARTBEAT_INTERVAL_MS: String(this.options.heartbeatIntervalMs ?? 1_000),
        FLEET_PULL_INTERVAL_MS: "2000",
        FLEET_LOG_LEVEL: "debug",
        ...options.env,
      }),
      log,
    });
    this.agents.set(name, daemon);
    return daemon;
  }

  async stopAgent(name: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const daemon = this.agents.get(name);
    if (daemon) await stopDaemon(daemon, signal, 10_000);
    this.agents.delete(name);
  }

  agentLog(name: string): string {
    const file = join(this.root, `agent-${name}.log`);
    return existsSync(file) ? readFileSync(file, "utf8") : "";
  }

  coordinatorLogs(): string {
    return readdirSync(this.root).filter((f) => f.startsWith("coordinator-")).map((f) => readFileSync(join(this.root, f), "utf8")).join("");
  }

  specYaml(cluster: string, password: string, members: SpecMember[], extra: Record<string, unknown> = {}): string {
    const doc = {
      clusters: {
        [cluster]: {
          cluster_password: password,
          ...extra,
          members: Object.fromEntries(
            members.map((m) => [
              m.name,
              {
                address: this.address(m.name),
                ...(m.description ? { description: m.description } : {}),
                ...(m.failureDomain ? { failure_domain: m.failureDomain } : {}),
                ...(m.groups ? { groups: m.groups } : {}),
                ...(m.present === false ? { present: false } : {}),
                ...(m.force ? { force: true } : {}),
              },
            ]),
          ),
        },
      },
    };
    return toYaml(doc);
  }

  async api<T = unknown>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.coordinatorUrl}${path}`, init);
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (metrics)
    }
    return { status: res.status, body: body as T };
  }

  async putSpec(yaml: string): Promise<{ status: number; body: { revision?: number; error?: { code: string; message: string } } }> {
    return this.api("/v1/spec", { method: "PUT", headers: { "Content-Type": "application/yaml" }, body: yaml });
  }

  /** Polls a cluster's status until the predicate holds. */
  async waitForCluster<T = true>(cluster: string, what: string, predicate: (status: ClusterStatusBody) => T | false | null | undefined, timeoutMs = 60_000): Promise<T> {
    return waitFor(what, async () => {
      const { status, body } = await this.api<ClusterStatusBody>(`/v1/clusters/${cluster}`);
      return status === 200 ? predicate(body) : false;
    }, timeoutMs, 100);
  }

  /** Stops everything this lab started, by pid, and removes namespaces, links and directories, even after a failure. */
  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (err) {
        errors.push(err);
      }
    };
    await Promise.all([...this.agents.keys()].map((n) => attempt(() => this.stopAgent(n, "SIGKILL"))));
    await attempt(() => this.stopCoordinator("SIGKILL"));
    // One at a time: clustered daemons stopping together wait on each other's role handover.
    for (const m of [...this.members].reverse()) await attempt(() => stopIncusd(m, "graceful"));
    await attempt(() => this.nats.stop());
    for (const d of this.delays.values()) await attempt(() => d.close());
    for (const h of this.hosts) await attempt(() => removeHost(h));
    await attempt(() => removeBridges(this.net));
    await attempt(() => killLeftovers(this.root));
    await attempt(() => removeStateDir(this.root));
    if (existsSync(this.root)) rmSync(this.root, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, "lab cleanup had errors");
  }
}

export interface ClusterStatusBody {
  name: string;
  phase: string;
  health: string;
  held: boolean;
  quorum: { voters: number; onlineVoters: number; majority: number; hasQuorum: boolean; failuresTolerated: number; standby: number } | null;
  reasons: { code: string; message: string }[];
  holdReasons: string[];
  guidance: string[];
  bootstrap: { node: string; completedAt?: string; adopted?: boolean } | null;
  operation: { kind: string; node: string } | null;
  memberList: {
    name: string;
    state: string;
    reason: string;
    status: string | null;
    roles: string[];
    present: boolean;
    agent: { online: boolean };
    incus: { reachable: boolean | null; clustered: boolean | null; version: string | null };
    preflight: { name: string; ok: boolean; detail: string; fix?: string }[] | null;
    instances: { total: number; running: number } | null;
  }[];
  links: { from: string; to: string; rttMs: number | null; state: string }[];
  plan: { action: string; detail: string }[];
  recentActions: { kind: string; message: string; node?: string }[];
}
