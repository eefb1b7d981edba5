import { existsSync } from "node:fs";
import { FLEET_VERSION, type Capabilities, type IncusFacts, type NodeFacts } from "../shared/index.js";
import type { IncusClient, IncusOperation, IncusServer } from "./incus-client.js";

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
      ...(server.environment.server_pid ? { pid: server.environment.server_pid } : {}),
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
    const error = err instanceof Error ? err.message : String(err);
    // A daemon that runs but does not serve (starting, no quorum, waiting for an upgrade) says so on /internal/ready.
    const ready = await incus.ready(Math.min(timeoutMs, 2_000));
    return { observedAt, reachable: false, clustered: false, error, ...(!ready.ready && !/cannot reach Incus/.test(ready.reason) ? { notReady: ready.reason.slice(0, 256) } : {}) };
  }
}

/**
 * The SHA-256 of this host's own Incus server certificate: before clustering
 * it is the certificate `GET /1.0` shows; after, that one is the cluster's,
 * and the member's own is the server certificate listed under its name.
 */
export async function readIdentity(incus: IncusClient, server: IncusServer): Promise<string | undefined> {
  if (!server.environment.server_clustered) return server.environment.certificate_fingerprint;
  const own = (await incus.certificates({ timeoutMs: 5_000 })).find((c) => c.type === "server" && c.name === server.environment.server_name);
  return own?.fingerprint;
}

const DNSMASQ = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq", "/bin/dnsmasq"];
const OVS_DB = "/run/openvswitch/db.sock";

/** What this host's Incus can create, for the coordinator to check a pool or network against before anything is changed. */
export function readCapabilities(server: IncusServer): Capabilities {
  const storageDrivers = (server.environment.storage_supported_drivers ?? []).map((d) => d.Name);
  const networkTypes = ["macvlan", "sriov", "physical"];
  const missing: Record<string, string> = {};
  if (DNSMASQ.some((p) => existsSync(p))) networkTypes.push("bridge");
  else missing.bridge = "dnsmasq is not installed, and Incus needs it for managed bridges (apt-get install dnsmasq-base)";
  if (existsSync(OVS_DB) && (server.config["network.ovn.northbound_connection"] || existsSync("/run/ovn/ovnnb_db.sock"))) networkTypes.push("ovn");
  else missing.ovn = `OVN is not set up on this host (no Open vSwitch database at ${OVS_DB}, or no OVN northbound connection): install openvswitch-switch and ovn-host and set network.ovn.northbound_connection`;
  for (const driver of ["zfs", "btrfs", "lvm", "ceph", "cephfs", "cephobject", "lvmcluster", "linstor", "truenas"]) {
    if (!storageDrivers.includes(driver)) missing[driver] = `Incus on this host offers no ${driver} driver (its tools are not installed)`;
  }
  return { storageDrivers, networkTypes, missing };
}

export function nodeFacts(address: string, incus: IncusFacts, extra: Partial<Pick<NodeFacts, "fingerprint" | "capabilities" | "candidateVersion">> = {}): NodeFacts {
  return { address, agentVersion: FLEET_VERSION, ...extra, incus };
}
