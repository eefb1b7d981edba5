import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, nkeyAuthenticator } from "@nats-io/transport-node";
import { stringify as toYaml } from "yaml";
import { hostCredentials } from "../coordinator/setup/setup.js";
import { COORDINATOR_ENV, COORDINATOR_NODE_FLAGS } from "../coordinator/node-flags.js";
import { incusdRunning, incusMember, killLeftovers, removeStateDir, startIncusd, stopIncusd, INCUSD, type IncusMember } from "./incus-member.js";
import { freePort, startSecureNats, type SecureNats } from "./nats-server.js";
import type { DelayedLink } from "./delayed-link.js";
import { createBridges, createHost, labNetwork, removeBridges, removeHost, removeStale, type HostLinks, type LabNetwork } from "./network.js";
import { startDaemon, stopDaemon, systemEnv, waitFor, type Daemon } from "./processes.js";

export const LAB_ROOT = "/tmp/incus-fleet-lab";
const DIST = fileURLToPath(new URL("..", import.meta.url));
export const AGENT_MAIN = join(DIST, "agent", "main.js");
export const COORDINATOR_MAIN = join(DIST, "coordinator", "main.js");
const INCUSD_CTL = join(DIST, "lab", "incusd-ctl.js");

export interface LabOptions {
  /** Which address slice this lab uses; labs that run at once need different slots. */
  slot: number;
  /** Names of bridges, namespaces and links start with this. */
  prefix: string;
  hosts: number;
  /** Hosts (by index, from 1) whose cluster link goes through a relay that can be slowed down. */
  delayedHosts?: number[];
  heartbeatIntervalMs?: number;
  /** Cluster names agents may belong to: each host gets a NATS credential for each (default: "lab"). */
  clusters?: string[];
  /** Three or more: a JetStream cluster of that many nats-servers. */
  natsServers?: number;
  /** NATS with TLS (a CA, server and client certificates). */
  tls?: boolean;
}

export interface AgentOptions {
  cluster?: string;
  password?: string;
  env?: Record<string, string>;
  /** Run as another host's agent would, with that host's credential (an attacker test). */
  credentialOf?: string;
}

/** Fails loudly when the lab cannot run here: end-to-end tests are never skipped. */
export function assertLabPrerequisites(): void {
  if (process.getuid?.() !== 0) throw new Error("the Incus lab needs root (network namespaces, incusd)");
  if (!existsSync(INCUSD)) throw new Error(`${INCUSD} is missing: install Incus 6.0 (apt-get install -t bookworm-backports incus-base)`);
  if (!existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run 'npm run build' first`);
}

export interface SpecMember {
  name: string;
  present?: boolean;
  force?: boolean;
  failureDomain?: string;
  groups?: string[];
  description?: string;
}

/** One coordinator process of the lab. */
export interface LabCoordinator {
  index: number;
  url: string;
  port: number;
  daemon: Daemon | null;
}

/**
 * A lab of real hosts on one machine: a cluster and a management bridge,
 * one network namespace per host with a real incusd, real nats-servers
 * locked down as `incus-fleet setup` writes them, the coordinators and the
 * agents as real processes with their own credentials.
 */
export class FleetLab {
  /** Labs created and not destroyed yet: what a script interrupted by a signal has to clean up. */
  static readonly live = new Set<FleetLab>();
  readonly hosts: HostLinks[] = [];
  readonly members: IncusMember[] = [];
  readonly agents = new Map<string, Daemon>();
  readonly delays = new Map<string, DelayedLink>();
  readonly coordinators: LabCoordinator[] = [];
  private coordinatorStarts = 0;
  readonly apiToken: string;

  private constructor(
    readonly options: LabOptions,
    readonly net: LabNetwork,
    readonly nats: SecureNats,
    readonly root: string,
  ) {
    this.apiToken = readFileSync(nats.setup.apiTokenFile, "utf8").trim();
  }

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
    let nats: SecureNats | null = null;
    try {
      const names = Array.from({ length: options.hosts }, (_, i) => `node${i + 1}`);
      const hosts = (options.clusters ?? ["lab"]).flatMap((cluster) => names.map((node, i) => ({ cluster, node, address: `${net.cluster.base}.${net.cluster.offset + 2 + i}:8443` })));
      nats = await startSecureNats({ host: net.mgmtGateway, hosts, servers: options.natsServers ?? 1, tls: options.tls ?? false, dir: join(root, "nats") });
      const lab = new FleetLab(options, net, nats, root);
      for (let i = 1; i <= options.hosts; i++) {
        const { host, delay } = await createHost(net, i, options.delayedHosts?.includes(i) ? { logDir: root } : undefined);
        lab.hosts.push(host);
        lab.members.push(incusMember(`node${i}`, host, root));
        if (delay) lab.delays.set(`node${i}`, delay);
      }
      FleetLab.live.add(lab);
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

  async stopIncus(name: string, how: "graceful" | "kill" = "graceful"): Promise<void> {
    await stopIncusd(this.member(name), how);
  }

  incusRunning(name: string): boolean {
    return incusdRunning(this.member(name));
  }

  /** NATS settings a process of the lab connects with, as environment variables. */
  private natsEnv(nkeyFile: string, tls: { caFile?: string; certFile?: string; keyFile?: string } | null): Record<string, string> {
    return {
      FLEET_NATS_SERVERS: this.nats.urls.join(","),
      FLEET_NATS_NKEY_FILE: nkeyFile,
      ...(tls?.caFile ? { FLEET_NATS_TLS_CA: tls.caFile } : {}),
      ...(tls?.certFile ? { FLEET_NATS_TLS_CERT: tls.certFile, FLEET_NATS_TLS_KEY: tls.keyFile! } : {}),
    };
  }

  /** The API of the first coordinator that is running (tests talk to it unless they pick another). */
  get coordinatorUrl(): string {
    return (this.coordinators.find((c) => c.daemon) ?? this.coordinators[0])?.url ?? "";
  }

  /** Starts coordinator `index` (1, 2, 3…), or restarts it on its port after a stop. */
  async startCoordinator(env: Record<string, string> = {}, index = 1): Promise<string> {
    const credentials = this.nats.setup.coordinators[index - 1];
    if (!credentials) throw new Error(`the lab's NATS set-up has no credential for coordinator ${index}`);
    let c = this.coordinators.find((x) => x.index === index);
    if (!c) {
      const port = await freePort();
      c = { index, port, url: `http://127.0.0.1:${port}`, daemon: null };
      this.coordinators.push(c);
      this.coordinators.sort((a, b) => a.index - b.index);
    }
    this.coordinatorStarts += 1;
    const log = join(this.root, `coordinator-${index}-${this.coordinatorStarts}.log`);
    c.daemon = startDaemon(process.execPath, [...COORDINATOR_NODE_FLAGS, COORDINATOR_MAIN], {
      env: systemEnv({
        ...COORDINATOR_ENV,
        ...this.natsEnv(credentials.nkeyFile, credentials.tls),
        FLEET_SIGNING_KEY_FILE: credentials.signingKeyFile,
        FLEET_API_TOKEN_FILE: this.nats.setup.apiTokenFile,
        FLEET_HTTP_HOST: "127.0.0.1",
        FLEET_HTTP_PORT: String(c.port),
        FLEET_HEARTBEAT_INTERVAL_MS: String(this.options.heartbeatIntervalMs ?? 1_000),
        FLEET_OBSERVE_EVERY_MS: "5000",
        FLEET_LOG_LEVEL: "debug",
        ...((this.options.natsServers ?? 1) > 1 ? { FLEET_STORE_REPLICAS: "3" } : {}),
        ...env,
      }),
      log,
    });
    const url = c.url;
    // The store may still be electing its leaders after a NATS server came back: the coordinator retries for a minute.
    await waitFor("the coordinator to answer", async () => (await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(5_000) })).ok, 60_000, 50).catch((err: unknown) => {
      const tail = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").slice(-15).join("\n") : "(no log)";
      throw new Error(`${String(err)}\n--- the last lines of ${log}:\n${tail}`);
    });
    return url;
  }

  /** Deletes every bucket and stream of the lab's NATS: the next coordinator starts a fleet from nothing. */
  async wipeStore(): Promise<void> {
    const credentials = this.nats.setup.coordinators[0]!;
    const nc = await connect({ servers: this.nats.urls, authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(credentials.nkeyFile, "utf8").trim())), ...(credentials.tls ? { tls: credentials.tls } : {}) });
    try {
      const jsm = await jetstreamManager(nc);
      for await (const name of jsm.streams.names()) await jsm.streams.delete(name);
    } finally {
      await nc.close();
    }
  }

  async stopCoordinator(signal: NodeJS.Signals = "SIGTERM", index = 1): Promise<void> {
    const c = this.coordinators.find((x) => x.index === index);
    if (c?.daemon) await stopDaemon(c.daemon, signal, 10_000);
    if (c) c.daemon = null;
  }

  startAgent(name: string, options: AgentOptions = {}): Daemon {
    const m = this.member(name);
    const cluster = options.cluster ?? "lab";
    const credentials = hostCredentials(this.nats.setup, cluster, options.credentialOf ?? name);
    const log = join(this.root, `agent-${name}.log`);
    const daemon = startDaemon("ip", ["netns", "exec", m.host.namespace, process.execPath, AGENT_MAIN], {
      env: systemEnv({
        ...this.natsEnv(credentials.nkeyFile, credentials.tls),
        FLEET_COORDINATOR_KEY_FILE: credentials.coordinatorKeyFile,
        FLEET_CLUSTER: cluster,
        FLEET_CLUSTER_PASSWORD: options.password ?? "lab-password-1",
        FLEET_NODE_NAME: name,
        FLEET_NODE_ADDRESS: this.address(name),
        FLEET_INCUS_SOCKET: m.socket,
        FLEET_HEARTBEAT_INTERVAL_MS: String(this.options.heartbeatIntervalMs ?? 1_000),
        FLEET_LOG_LEVEL: "debug",
        // The lab's service manager, as systemctl is on a real host.
        FLEET_ACTION_RESTART_INCUS: this.restartIncusCommand(name),
        FLEET_ACTION_UPGRADE_INCUS: this.restartIncusCommand(name),
        FLEET_ACTION_REBOOT: "",
        FLEET_CANDIDATE_VERSION_COMMAND: `${INCUSD} --version`,
        ...options.env,
      }),
      log,
    });
    this.agents.set(name, daemon);
    return daemon;
  }

  /** What restarts a member's incusd here, as `systemctl restart incus` does on a real host. */
  restartIncusCommand(name: string): string {
    const m = this.member(name);
    return `${process.execPath} ${INCUSD_CTL} restart --name ${name} --namespace ${m.host.namespace} --dir ${m.dir}`;
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

  /** A call to a coordinator's API, with the lab's token unless told otherwise. */
  async api<T = unknown>(path: string, init: RequestInit & { coordinator?: number; token?: string | null } = {}): Promise<{ status: number; body: T }> {
    const base = init.coordinator ? this.coordinators.find((c) => c.index === init.coordinator)!.url : this.coordinatorUrl;
    const token = init.token === undefined ? this.apiToken : init.token;
    const headers = new Headers(init.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    // A coordinator that stops answering is a failure to report, never a test that hangs.
    const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(30_000), ...init, headers });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (metrics, YAML)
    }
    return { status: res.status, body: body as T };
  }

  async putSpec(yaml: string, query = ""): Promise<{ status: number; body: { revision?: number; error?: { code: string; message: string; problems?: { path: string; message: string }[] } } }> {
    return this.api(`/v1/spec${query}`, { method: "PUT", headers: { "Content-Type": "application/yaml" }, body: yaml });
  }

  /** Polls a cluster's status until the predicate holds. */
  async waitForCluster<T = true>(cluster: string, what: string, predicate: (status: ClusterStatusBody) => T | false | null | undefined, timeoutMs = 60_000, coordinator?: number): Promise<T> {
    return waitFor(
      what,
      async () => {
        const { status, body } = await this.api<ClusterStatusBody>(`/v1/clusters/${cluster}`, coordinator ? { coordinator } : {});
        return status === 200 ? predicate(body) : false;
      },
      timeoutMs,
      100,
    );
  }

  /** Stops everything this lab started, by pid, and removes namespaces, links and directories, even after a failure. */
  async destroy(): Promise<void> {
    FleetLab.live.delete(this);
    const errors: unknown[] = [];
    const attempt = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (err) {
        errors.push(err);
      }
    };
    await Promise.all([...this.agents.keys()].map((n) => attempt(() => this.stopAgent(n, "SIGKILL"))));
    for (const c of this.coordinators) await attempt(() => this.stopCoordinator("SIGKILL", c.index));
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
  convergence: { state: string; reason: string };
  owner: string | null;
  quorum: { voters: number; onlineVoters: number; majority: number; hasQuorum: boolean; failuresTolerated: number; standby: number } | null;
  reasons: { code: string; message: string; member?: string; expected?: boolean }[];
  holdReasons: string[];
  guidance: string[];
  bootstrap: { node: string; completedAt?: string; adopted?: boolean } | null;
  operation: { id: string; kind: string; member: string | null; phase: string; state: string; reason: string } | null;
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
    worstLinkMs: number | null;
  }[];
  links: { from: string; to: string; rttMs: number | null; state: string }[];
  plan: { object: string; action: string; status: string; reason: string; now: unknown; wanted: unknown }[];
  driftItems: string[];
  failures: { object: string; error: string; at: number; count: number }[];
  observed: { at: string; via: string; config: Record<string, string>; pools: { name: string; status: string }[]; networks: { name: string; status: string }[] } | null;
  recentActions: { kind: string; message: string; node?: string }[];
}
