import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { IncusClient } from "../agent/incus-client.js";
import type { HostLinks } from "./network.js";
import { run, systemEnv, waitFor } from "./processes.js";

export const INCUSD = "/usr/libexec/incus/incusd";

export interface IncusMember {
  name: string;
  host: HostLinks;
  dir: string;
  socket: string;
  client(): IncusClient;
}

export function incusMember(name: string, host: HostLinks, root: string): IncusMember {
  const dir = join(root, name);
  return { name, host, dir, socket: join(dir, "unix.socket"), client: () => new IncusClient(join(dir, "unix.socket"), 30_000) };
}

const pidFile = (m: { dir: string }) => join(m.dir, "incusd.pid");

function pidOf(m: { dir: string }): number | null {
  try {
    const pid = Number(readFileSync(pidFile(m), "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z");
  } catch {
    return false;
  }
}

/**
 * Starts a real incusd in the host's network namespace with its own host
 * name and state directory, the way a service manager would: detached, its
 * pid in the state directory. The lab, the agent's host actions (a rollout
 * restarting Incus) and cleanup all go through that pid.
 */
export async function startIncusd(member: { name: string; host: { namespace: string }; dir: string; socket: string }): Promise<number> {
  mkdirSync(member.dir, { recursive: true });
  const log = openSync(join(member.dir, "..", `${member.name}-incusd.log`), "a");
  const child = spawn("ip", ["netns", "exec", member.host.namespace, "unshare", "--uts", "sh", "-c", `hostname ${member.name} && exec ${INCUSD} --group root`], {
    env: systemEnv({ INCUS_DIR: member.dir }),
    stdio: ["ignore", log, log],
    detached: true,
  });
  closeSync(log);
  child.unref();
  if (!child.pid) throw new Error(`could not start incusd of ${member.name}`);
  writeFileSync(pidFile(member), `${child.pid}\n`);
  const client = new IncusClient(member.socket, 30_000);
  try {
    await waitFor(`incusd of ${member.name} to answer`, async () => {
      if (!alive(child.pid!)) throw new Error(`incusd of ${member.name} exited; see ${member.name}-incusd.log`);
      return (await client.server({ timeoutMs: 1_000 })).environment.server_version;
    }, 60_000, 100);
  } finally {
    client.close();
  }
  return child.pid;
}

/** Stops the running instances first (their monitors outlive a killed daemon), then the daemon itself, by its pid. */
export async function stopIncusd(member: { name: string; dir: string; socket: string }, how: "graceful" | "kill" = "graceful"): Promise<void> {
  const pid = pidOf(member);
  if (pid === null || !alive(pid)) return;
  if (how === "graceful") {
    const client = new IncusClient(member.socket, 30_000);
    try {
      const instances = await client.instances({ timeoutMs: 3_000 }).catch(() => []);
      for (const i of instances.filter((i) => i.location === member.name || i.location === "none" || i.location === "")) {
        if (i.status === "Running") await client.run("PUT", `/1.0/instances/${i.name}/state?project=${i.project}`, { action: "stop", force: true, timeout: -1 }, { timeoutMs: 20_000 }).catch(() => undefined);
      }
    } finally {
      client.close();
    }
  }
  process.kill(pid, how === "kill" ? "SIGKILL" : "SIGTERM");
  const deadline = Date.now() + 20_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid, "SIGKILL");
  while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
  await killLeftovers(member.dir);
}

export function incusdRunning(member: { dir: string }): boolean {
  const pid = pidOf(member);
  return pid !== null && alive(pid);
}

/** Whether a path names the directory or something below it (node1 is not below node10). */
function under(text: string, dir: string): boolean {
  let i = text.indexOf(dir);
  while (i >= 0) {
    const next = text[i + dir.length];
    if (next === undefined || next === "/" || next === "\0") return true;
    i = text.indexOf(dir, i + 1);
  }
  return false;
}

/** This process and the ones that started it: a restart run by an agent's host action names the member's directory too. */
function selfAndAncestors(): Set<number> {
  const chain = new Set<number>();
  for (let pid = process.pid; pid > 1 && !chain.has(pid); ) {
    chain.add(pid);
    try {
      pid = Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
    } catch {
      break;
    }
  }
  return chain;
}

/** Kills processes still running from this member's state directory (container monitors, dnsmasq). */
export async function killLeftovers(dir: string): Promise<void> {
  const spared = selfAndAncestors();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    if (spared.has(Number(pid))) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const env = readFileSync(`/proc/${pid}/environ`, "utf8");
      const incusDir = env.split("\0").find((e) => e.startsWith("INCUS_DIR="))?.slice("INCUS_DIR=".length);
      if (under(cmdline, dir) || (incusDir !== undefined && under(incusDir, dir)) || under(readlinkSync(`/proc/${pid}/cwd`), dir)) {
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
