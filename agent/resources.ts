import { IncusError } from "../shared/index.js";
import type { IncusClient } from "./incus-client.js";

/** Keys Incus keeps per member for storage pools and networks; they go with `?target=`. */
const MEMBER_SPECIFIC_POOL_KEYS = new Set(["source", "size", "zfs.pool_name", "lvm.vg_name", "lvm.thinpool_name", "volatile.initial_source"]);
const MEMBER_SPECIFIC_NETWORK_KEYS = new Set(["bridge.external_interfaces", "parent"]);

export interface ClusterResource {
  name: string;
  description: string;
  config: Record<string, string>;
  memberConfig: Record<string, Record<string, string>>;
}

function split(config: Record<string, string>, memberKeys: Set<string>) {
  const shared: Record<string, string> = {};
  const perMember: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) (memberKeys.has(k) ? perMember : shared)[k] = v;
  return { shared, perMember };
}

function alreadyThere(err: unknown): boolean {
  return err instanceof IncusError && /already (exists|defined)/i.test(err.message);
}

/**
 * Creates a storage pool or network the way Incus wants it in a cluster: a
 * pending definition on every member with its own keys, then the final one.
 * Re-running it after a partial failure finishes what is missing.
 */
async function ensureClusterResource(
  members: string[],
  resource: ClusterResource,
  memberKeys: Set<string>,
  existing: { status: string; locations: string[] | null } | undefined,
  createOn: (config: Record<string, string>, target?: string) => Promise<void>,
): Promise<boolean> {
  if (existing && existing.status === "Created") return false;
  const { shared, perMember } = split(resource.config, memberKeys);
  const done = new Set(existing?.locations ?? []);
  for (const member of members) {
    if (done.has(member)) continue;
    try {
      await createOn({ ...perMember, ...(resource.memberConfig[member] ?? {}) }, member);
    } catch (err) {
      if (!alreadyThere(err)) throw err;
    }
  }
  await createOn(shared);
  return true;
}

export async function ensureStoragePool(incus: IncusClient, pool: ClusterResource & { driver: string }): Promise<boolean> {
  const members = (await incus.members()).map((m) => m.server_name);
  const existing = (await incus.storagePools()).find((p) => p.name === pool.name);
  return ensureClusterResource(members, pool, MEMBER_SPECIFIC_POOL_KEYS, existing, (config, target) =>
    incus.createStoragePool({ name: pool.name, driver: pool.driver, description: pool.description, config }, target),
  );
}

export async function ensureNetwork(incus: IncusClient, network: ClusterResource & { type: string }): Promise<boolean> {
  const members = (await incus.members()).map((m) => m.server_name);
  const existing = (await incus.networks()).find((n) => n.name === network.name && n.managed);
  return ensureClusterResource(members, network, MEMBER_SPECIFIC_NETWORK_KEYS, existing, (config, target) =>
    incus.createNetwork({ name: network.name, type: network.type, description: network.description, config }, target),
  );
}
