import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";

/**
 * System tools and daemons run with the system's PATH only: npm puts
 * node_modules/.bin first, and one package there ships a command named `nft`
 * that incusd would otherwise run instead of nftables.
 */
export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function systemEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: SYSTEM_PATH, ...extra };
}

/**
 * Every daemon the lab starts is tracked here and stopped by its own pid,
 * also when a test fails or the process exits abruptly.
 */
const running = new Set<ChildProcess>();

function killAll(): void {
  for (const child of running) {
    try {
      if (child.pid) process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
// Signals are left to the program (the demo cleans its namespaces up on Ctrl-C); whatever way it ends, its children go with it.
process.once("exit", killAll);

export interface Daemon {
  child: ChildProcess;
  pid: number;
  log: string;
  exited: Promise<number | null>;
}

export function startDaemon(command: string, args: string[], options: SpawnOptions & { log: string }): Daemon {
  const out: WriteStream = createWriteStream(options.log, { flags: "a" });
  const child = spawn(command, args, { ...options, env: options.env ?? systemEnv(), stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  running.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? (signal ? -1 : null));
    });
  });
  if (!child.pid) throw new Error(`could not start ${command}`);
  return { child, pid: child.pid, log: options.log, exited };
}

/** Sends a signal and waits for the exit; escalates to SIGKILL after the grace period. */
export async function stopDaemon(daemon: Daemon, signal: NodeJS.Signals = "SIGTERM", graceMs = 15_000): Promise<void> {
  if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
  try {
    process.kill(daemon.pid, signal);
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(daemon.pid, "SIGKILL");
    } catch {
      // gone
    }
  }, graceMs);
  await daemon.exited;
  clearTimeout(timer);
}

export function run(command: string, args: string[], options: { allowFail?: boolean; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: options.env ?? systemEnv() });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const result = { code: code ?? -1, stdout, stderr };
      if (code !== 0 && !options.allowFail) reject(new Error(`${command} ${args.join(" ")} failed (${code}): ${stderr.trim() || stdout.trim()}`));
      else resolve(result);
    });
    if (options.input) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`);
}
