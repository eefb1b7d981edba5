import { mkdtempSync, readFileSync, rmSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { startDaemon, stopDaemon, waitFor, type Daemon } from "./processes.js";

export interface NatsServer {
  url: string;
  host: string;
  port: number;
  dir: string;
  daemon: Daemon;
  stop(): Promise<void>;
}

/**
 * A real nats-server with JetStream, on a port the kernel picks (`-p -1`),
 * read back from its ports file. Its store lives in a temp dir removed on stop.
 */
export async function startNatsServer(options: { host?: string; jetstream?: boolean } = {}): Promise<NatsServer> {
  const host = options.host ?? "127.0.0.1";
  const dir = mkdtempSync(join(tmpdir(), "fleet-nats-"));
  const args = ["-a", host, "-p", "-1", "--ports_file_dir", dir];
  if (options.jetstream !== false) args.push("-js", "-sd", join(dir, "js"));
  const daemon = startDaemon("nats-server", args, { log: join(dir, "nats.log") });
  const portsFile = await waitFor("the nats-server ports file", () => readdirSync(dir).find((f) => f.endsWith(".ports")) ?? null, 10_000, 20);
  const ports = JSON.parse(readFileSync(join(dir, portsFile), "utf8")) as { nats: string[] };
  const url = ports.nats[0]!;
  const port = Number(new URL(url).port);
  await waitFor("nats-server to accept connections", () => new Promise<boolean>((resolve) => {
    const s = connect({ host, port }, () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
  }), 10_000, 20);
  return {
    url: `nats://${host}:${port}`,
    host,
    port,
    dir,
    daemon,
    async stop() {
      await stopDaemon(daemon, "SIGTERM", 5_000);
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    },
  };
}
