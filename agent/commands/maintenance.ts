import pRetry from "p-retry";
import { IncusError, type InstancePlacement } from "../../shared/index.js";
import type { IncusClient } from "../incus-client.js";

const ORIGIN = "volatile.evacuate.origin";

export async function placements(incus: IncusClient): Promise<InstancePlacement[]> {
  return (await incus.instances()).map((i) => ({
    name: i.name,
    project: i.project,
    location: i.location,
    status: i.status,
    ...(i.config?.[ORIGIN] ? { origin: i.config[ORIGIN] } : {}),
  }));
}

/** Right after a daemon restarts, calls through it fail for a few seconds: they are retried, not reported. */
function notReadyYet(err: unknown): boolean {
  return err instanceof IncusError && /isn't ready yet|not ready yet|Daemon is starting/i.test(err.message);
}

/** An evacuation or restore that is already running (started before this agent or coordinator restarted): waited for, not started again. */
async function waitRunning(incus: IncusClient, action: "evacuate" | "restore", member: string): Promise<boolean> {
  const pattern = action === "evacuate" ? /evacuat/i : /restor/i;
  const running = (await incus.operations()).find((op) => op.status_code === 103 && pattern.test(op.description) && (op.location === member || op.location === ""));
  if (!running) return false;
  await incus.waitOperation(running.id, 900_000);
  return true;
}

/**
 * Evacuates or restores a member, idempotently: a member already evacuated
 * (or restored) is reported as done, and one whose evacuation is running is
 * waited for. Before and after, where every instance is, with the origin an
 * evacuation left on it.
 */
export async function changeState(incus: IncusClient, action: "evacuate" | "restore", member: string, mode?: string): Promise<{ before: InstancePlacement[]; after: InstancePlacement[] }> {
  const before = await pRetry(() => placements(incus), { retries: 20, minTimeout: 500, maxTimeout: 2_000, shouldRetry: ({ error }) => notReadyYet(error) });
  if (!(await waitRunning(incus, action, member))) {
    await pRetry(
      async () => {
        try {
          await incus.changeMemberState(member, action, action === "evacuate" ? mode : undefined);
        } catch (err) {
          if (err instanceof IncusError && /already (evacuated|restored)/i.test(err.message)) return;
          throw err;
        }
      },
      { retries: 30, minTimeout: 500, maxTimeout: 2_000, shouldRetry: ({ error }) => notReadyYet(error) },
    );
  }
  const after = await pRetry(() => placements(incus), { retries: 20, minTimeout: 500, maxTimeout: 2_000, shouldRetry: ({ error }) => notReadyYet(error) });
  return { before, after };
}

/**
 * Clears the evacuation origin instances still carry for a member that is
 * gone: nothing but a restore of that member would clear it, and a later
 * restore must not send them anywhere wrong.
 */
export async function clearEvacuationOrigin(incus: IncusClient, member: string): Promise<string[]> {
  const stale = (await placements(incus)).filter((i) => i.origin === member);
  for (const i of stale) await incus.patchInstanceConfig(i.name, i.project, { [ORIGIN]: "" });
  return stale.map((i) => `${i.project}/${i.name}`);
}

export async function removeMember(incus: IncusClient, member: string, force: boolean): Promise<boolean> {
  const names = (await incus.members()).map((m) => m.server_name);
  if (!names.includes(member)) return false;
  await incus.removeMember(member, force);
  return true;
}
