import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { IncusClient } from "../agent/incus-client.js";
import type { HostLinks } from "./network.js";
import { run, startDaemon, stopDaemon, systemEnv, waitFor, type Daemon } from "./processes.js";

export const INCUSD = "/usr/libexec/incus/incusd";

export interface IncusMember {
  name: string;
  host: HostLinks;
  dir: string;
  socket: string;
  daemon: Daemon | null;
  client(): IncusClient;
}

/** Starts a real incusd in the host's network namespace with its own hostname and state directory. */
export async function startIncusd(member: IncusMember): Promise<void> {
  mkdirSync(member.dir, { recursive: true });
  member.daemon = startDaemon(
    "ip",
    ["netns", "exec", member.host.namespace, "unshare", "--uts", "sh", "-c", `hostname ${member.name} && exec ${INCUSD} --group root`],
    { env: systemEnv({ INCUS_DIR: member.dir }), log: join(member.dir, "..", `${member.name}-incusd.log`) },
  );
  const client = member.client();
  try {
    const exited = member.daemon.exited.then((code) => {
      throw new Error(`incusd of ${member.name} exited with ${code}; see ${member.daemon?.log}`);
    });
    await Promise.race([exited, waitFor(`incusd of ${member.name} to answer`, async () => (await client.server({ timeoutMs: 1_000 })).environment.server_version, 60_000, 100)]);
    exited.catch(() => undefined);
  } finally {
    client.close();
  }
}

export function incusMember(name: string, host: HostLinks, root: string): IncusMember {
  const dir = join(root, name);
  return { name, host, dir, socket: join(dir, "unix.socket"), daemon: null, client: () => new IncusClient(join(dir, "unix.socket"), 30_000) };
}

/** Stops containers first (their monitors outlive a killed daemon), then the daemon itself. */
export async function stopIncusd(member: IncusMember, how: "graceful" | "kill" = "graceful"): Promise<void> {
  if (!member.daemon) return;
  if (how === "graceful") {
    const client = member.client();
    try {
      const instances = await client.instances({ timeoutMs: 3_000 }).catch(() => []);
      for (const i of instances.filter((i) => i.location === member.name || i.location === "none" || i.location === "")) {
        if (i.status === "Running") await client.run("PUT", `/1.0/instances/${i.name}/state?project=${i.project}`, { action: "stop", force: true, timeout: -1 }, { timeoutMs: 20_000 }).catch(() => undefined);
      }
    } finally {
      client.close();
    }
  }
  await stopDaemon(member.daemon, how === "kill" ? "SIGKILL" : "SIGTERM", 20_000);
  member.daemon = null;
  await killLeftovers(member.dir);
}

/** Kills processes still running from this member's state directory (container monitors, dnsmasq). */
export async function killLeftovers(dir: string): Promise<void> {
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const env = cmdline.includes(dir) ? "" : readFileSync(`/proc/${pid}/environ`, "utf8");
      if (cmdline.includes(dir) || env.includes(`INCUS_DIR=${dir}\0`) || readlinkSync(`/proc/${pid}/cwd`).startsWith(dir)) {
        process.kill(Number(pid), "SIGKILL");
      }
    } catch {
      // the process ended, or is not ours to read
    }
  }
}

/** Unmounts anything incusd mounted below a directory, then removes it. */
export async function removeStateDir(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(dir))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run("umount", ["-l", m], { allowFail: true });
  rmSync(dir, { recursive: true, force: true });
}
