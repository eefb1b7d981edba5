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
    // A clustered member lists every member's operations, so only an unclustered one can read its own join from them;
    // the agent marks itself busy while it runs one (see FleetAgent).
    const [op] = await Promise.all([
      facts.clustered ? null : runningMembershipOperation(incus).catch(() => null),
      facts.clustered && options.members
        ? incus.members({ timeoutMs }).then(
            (members) => void (facts.members = members.map((m) => m.server_name)),
            // A clustered member cut off from the database still answers GET /1.0; its view comes with the heartbeat.
            () => undefined,
          )
        : undefined,
    ]);
    if (op) facts.busy = MEMBERSHIP_OPERATIONS[op.description];
    return facts;
  } catch (err) {
    return { observedAt, reachable: false, clustered: false, error: err instanceof Error ? err.message : String(err) };
  }
}

export function nodeFacts(address: string, incus: IncusFacts): NodeFacts {
  return { address, agentVersion: FLEET_VERSION, incus };
}
