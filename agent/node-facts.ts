import { FLEET_VERSION, type IncusFacts, type NodeFacts } from "../shared/index.js";
import type { IncusClient, IncusOperation } from "./incus-client.js";

const MEMBERSHIP_OPERATIONS: Record<string, IncusFacts["busy"]> = {
  "Joining cluster": "joining",
  "Creating bootstrap node": "bootstrapping",
};

/** A running bootstrap or join, started by this agent before it restarted. */
export async function runningMembershipOperation(incus: IncusClient): Promise<IncusOperation | null> {
  const ops = await incus.operations();
  return ops.find((op) => op.status_code === 103 && op.description in MEMBERSHIP_OPERATIONS) ?? null;
}

/**
 * What is true of this host right now, read from Incus. An agent that
 * restarts mid-way relies on this, not on memory, to know what is done.
 */
export async function readIncusFacts(incus: IncusClient, timeoutMs = 5_000, options: { members: boolean } = { members: true }): Promise<IncusFacts> {
  const observedAt = Date.now();
  try {
    const server = await incus.server({ timeoutMs });
    const facts: IncusFacts = {
      observedAt,
      reachable: true,
      version: server.environment.server_version,
      apiExtensions: server.api_extensions.length,
      serverName: server.environment.server_name,
      clustered: server.environment.server_clustered,
      httpsAddress: server.config["core.https_address"] ?? "",
    };
    if (facts.clustered && options.members) {
      try {
        facts.members = (await incus.members({ timeoutMs })).map((m) => m.server_name);
      } catch {
        // A clustered member cut off from the database still answers GET /1.0; its view comes with the heartbeat.
      }
    } else if (!facts.clustered) {
      const op = await runningMembershipOperation(incus);
      if (op) facts.busy = MEMBERSHIP_OPERATIONS[op.description];
    }
    return facts;
  } catch (err) {
    return { observedAt, reachable: false, clustered: false, error: err instanceof Error ? err.message : String(err) };
  }
}

export function nodeFacts(address: string, incus: IncusFacts): NodeFacts {
  return { address, agentVersion: FLEET_VERSION, incus };
}
