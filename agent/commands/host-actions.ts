import { execFile } from "node:child_process";
import { ErrorCode, FleetError, type HostAction } from "../../shared/index.js";

/** The commands this host runs for a rollout, from its own configuration: the coordinator names an action, never a command. */
export type HostActionCommands = Partial<Record<HostAction, string>>;

const ACTION_TIMEOUT_MS = 15 * 60_000;

function run(command: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("/bin/sh", ["-c", command], { env: { ...process.env, ...env }, timeout: ACTION_TIMEOUT_MS, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim().split("\n").slice(-5).join("\n");
      if (err) reject(new FleetError(ErrorCode.Incus, `'${command}' failed (${err.code ?? err.signal ?? err.message}): ${output}`));
      else resolve(output);
    });
  });
}

/**
 * Carries out a rollout's host action with the command configured for it on
 * this host. An action with no command configured is refused: the allow-list
 * is the configuration. A reboot is answered before it is started, since
 * it takes the agent with it.
 */
export async function hostAction(commands: HostActionCommands, action: HostAction, targetVersion?: string): Promise<string> {
  const command = commands[action];
  if (!command) throw new FleetError(ErrorCode.NotAllowed, `${action} is not allowed on this host: no command is configured for it (hostActions.${action})`);
  const env = targetVersion ? { INCUS_TARGET_VERSION: targetVersion } : {};
  if (action === "reboot") {
    setTimeout(() => void run(command, env).catch(() => undefined), 500).unref();
    return `rebooting with '${command}'`;
  }
  const output = await run(command, env);
  return `'${command}' done${output ? `: ${output}` : ""}`;
}

/** The Incus version this host's packages would install, by its configured command (the leading version number of its output). */
export async function candidateVersion(command: string | undefined): Promise<string | undefined> {
  if (!command) return undefined;
  try {
    return /\d+(?:\.\d+)+/.exec(await run(command, {}))?.[0];
  } catch {
    return undefined;
  }
}
