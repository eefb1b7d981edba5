import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setupFleet, type SetupHost, type SetupResult } from "../coordinator/setup/setup.js";
import { startDaemon, stopDaemon, waitFor, type Daemon } from "./processes.js";

export interface NatsServer {
  name: string;
  url: string;
  host: string;
  port: number;
  daemon: Daemon;
  /** Stops it (SIGTERM), or kills it (SIGKILL, for failover tests); its JetStream store stays until the fleet is stopped. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and store, after a stop. */
  restart(): Promise<void>;
}

/** A NATS set-up as `incus-fleet setup` writes it, running: one server or a JetStream cluster of several. */
export interface SecureNats {
  servers: NatsServer[];
  /** Every server's URL, what clients are given. */
  urls: string[];
  setup: SetupResult;
  dir: string;
  stop(): Promise<void>;
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/** The daemon exited before it was ready: most often another process took its port after it was picked. */
class ExitedBeforeReady extends Error {}

/**
 * Waits for this daemon, not whatever else may listen on its port, to say it
 * is ready (in the part of its log written since `logFrom`) and to accept
 * connections. Ports are picked free before the servers start, so a process
 * elsewhere can take one in between: this server then exits, and another
 * answering on the port must not pass for it.
 */
async function ready(daemon: Daemon, name: string, host: string, port: number, logFrom: number): Promise<void> {
  const says = () => existsSync(daemon.log) && readFileSync(daemon.log, "utf8").slice(logFrom).includes("Server is ready");
  const waiting = waitFor(`${name} to accept connections`, async () => says() && (await listening(host, port)), 10_000, 20);
  const exited = daemon.exited.then(() => {
    throw new ExitedBeforeReady(`${name} exited before it was ready (see ${daemon.log})`);
  });
  // Whichever loses is let go: the daemon exits later anyway, when it is stopped.
  waiting.catch(() => undefined);
  exited.catch(() => undefined);
  await Promise.race([waiting, exited]);
}

export interface SecureNatsOptions {
  /** The address the servers listen on. */
  host?: string;
  hosts: SetupHost[];
  coordinators?: number;
  /** Three or more make a JetStream cluster. */
  servers?: number;
  tls?: boolean;
  /** Where the set-up and the stores go; a temp dir removed on stop when not given. */
  dir?: string;
}

/**
 * Real nats-servers locked down with the configuration `incus-fleet setup`
 * writes: the same users, nkeys and permissions an operator deploys, on
 * ports picked free, with JetStream stores removed on stop.
 */
export async function startSecureNats(options: SecureNatsOptions): Promise<SecureNats> {
  const host = options.host ?? "127.0.0.1";
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "fleet-nats-"));
  mkdirSync(dir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnFreePorts(options, host, dir);
    } catch (err) {
      // A port taken by another process between its pick and the server's start: pick again, with a fresh store.
      rmSync(join(dir, "js"), { recursive: true, force: true });
      if (err instanceof ExitedBeforeReady && attempt < 3) continue;
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
}

async function startOnFreePorts(options: SecureNatsOptions, host: string, dir: string): Promise<SecureNats> {
  const count = options.servers ?? 1;
  const ports: { client: number; route: number }[] = [];
  for (let i = 0; i < count; i++) ports.push({ client: await freePort(host), route: await freePort(host) });
  const setup = await setupFleet({
    out: join(dir, "setup"),
    hosts: options.hosts,
    coordinators: options.coordinators ?? 3,
    servers: ports.map((p, i) => ({ name: `nats-${i + 1}`, listen: `${host}:${p.client}`, ...(count > 1 ? { clusterListen: `${host}:${p.route}` } : {}) })),
    jetstreamDir: join(dir, "js"),
    tls: options.tls ? { hosts: [host], mutual: true } : null,
  });
  const servers: NatsServer[] = [];
  for (const [i, config] of setup.serverConfigs.entries()) {
    const name = `nats-${i + 1}`;
    const port = ports[i]!.client;
    const server: NatsServer = {
      name,
      url: setup.urls[i]!,
      host,
      port,
      daemon: null as unknown as Daemon,
      async stop(signal: NodeJS.Signals = "SIGTERM") {
        await stopDaemon(server.daemon, signal, 5_000);
      },
      async restart() {
        const log = join(dir, `${name}.log`);
        const logFrom = existsSync(log) ? statSync(log).size : 0;
        server.daemon = startDaemon("nats-server", ["-c", config], { log });
        await ready(server.daemon, name, host, port, logFrom);
      },
    };
    try {
      await server.restart();
    } catch (err) {
      for (const s of [...servers, server]) if (s.daemon) await s.stop("SIGKILL");
      throw err;
    }
    servers.push(server);
  }
  return {
    servers,
    urls: setup.urls,
    setup,
    dir,
    async stop() {
      for (const s of servers) await s.stop();
      if (!options.dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    },
  };
}
