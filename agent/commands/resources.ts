import { IncusError, MANAGED_KEY, MANAGED_VALUE, NETWORK_MEMBER_KEYS, POOL_MEMBER_KEYS, type Observation, type ObservedMember, type ObservedResource } from "../../shared/index.js";
import type { IncusClient, IncusMember, IncusNetwork, IncusStoragePool } from "../incus-client.js";
import { placements } from "./maintenance.js";

export interface ResourceWanted {
  kind: "pool" | "network";
  name: string;
  /** Driver of a pool, type of a network. */
  type: string;
  description: string;
  config: Record<string, string>;
  /** Every member's own keys (its defaults merged in already). */
  memberConfig: Record<string, Record<string, string>>;
  members: string[];
}

type Existing = IncusStoragePool | IncusNetwork;

function alreadyThere(err: unknown): boolean {
  return err instanceof IncusError && /already (exists|defined)|not in pending state/i.test(err.message);
}

const memberKeysOf = (kind: "pool" | "network") => (kind === "pool" ? POOL_MEMBER_KEYS : NETWORK_MEMBER_KEYS);
const kindOf = (r: Existing) => ("driver" in r ? r.driver : r.type);

function api(incus: IncusClient, kind: "pool" | "network") {
  return kind === "pool"
    ? {
        get: (name: string, target?: string) => incus.storagePool(name, target),
        create: (body: { name: string; type: string; description?: string; config?: Record<string, string> }, target?: string) => incus.createStoragePool({ name: body.name, driver: body.type, ...(body.description !== undefined ? { description: body.description } : {}), ...(body.config ? { config: body.config } : {}) }, target),
        patch: (name: string, body: { description?: string; config?: Record<string, string> }, target?: string) => incus.patchStoragePool(name, body, target),
        remove: (name: string) => incus.deleteStoragePool(name),
      }
    : {
        get: (name: string, target?: string) => incus.network(name, target),
        create: (body: { name: string; type: string; description?: string; config?: Record<string, string> }, target?: string) => incus.createNetwork(body, target),
        patch: (name: string, body: { description?: string; config?: Record<string, string> }, target?: string) => incus.patchNetwork(name, body, target),
        remove: (name: string) => incus.deleteNetwork(name),
      };
}

function only(config: Record<string, string>, keys: ReadonlySet<string>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).filter(([k]) => keys.has(k)));
}

function without(config: Record<string, string>, keys: ReadonlySet<string>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).filter(([k]) => !keys.has(k)));
}

/**
 * Brings one storage pool or network to the spec the way Incus wants it in
 * a cluster. Missing: a pending definition on every member with its own
 * keys, then the final create. Pending or errored (a member failed): each
 * member's own keys are set right, members not defined yet are, and the
 * final create runs again without config, which Incus takes as "finish".
 * Created: the description, the cluster-wide keys and each member's keys
 * are updated in place. Returns what it changed.
 */
export async function convergeResource(incus: IncusClient, wanted: ResourceWanted): Promise<string[]> {
  const a = api(incus, wanted.kind);
  const memberKeys = memberKeysOf(wanted.kind);
  const changes: string[] = [];
  const existing = await a.get(wanted.name);
  if (existing && kindOf(existing) !== wanted.type) throw new IncusError(409, `${wanted.name} exists as ${kindOf(existing)}, not ${wanted.type}; Incus cannot change that`);
  if (!existing || existing.status !== "Created") {
    const defined: string[] = [];
    for (const member of wanted.members) {
      const own = wanted.memberConfig[member] ?? {};
      const there = existing ? await a.get(wanted.name, member).catch(() => null) : null;
      if (there && there.status !== "Unknown") {
        const differ = Object.fromEntries(Object.entries(own).filter(([k, v]) => there.config[k] !== v));
        if (Object.keys(differ).length > 0) {
          await a.patch(wanted.name, { config: differ }, member);
          changes.push(`set ${Object.keys(differ).join(", ")} on ${member}`);
        }
        continue;
      }
      try {
        await a.create({ name: wanted.name, type: wanted.type, config: own }, member);
        defined.push(member);
      } catch (err) {
        if (!alreadyThere(err)) throw err;
      }
    }
    // Re-running the final create of a partly created object must not give its global config again.
    try {
      await a.create(existing ? { name: wanted.name, type: wanted.type } : { name: wanted.name, type: wanted.type, description: wanted.description, config: { ...wanted.config, [MANAGED_KEY]: MANAGED_VALUE } });
    } catch (err) {
      // Failed on every member, nothing is left pending to finish: Incus only lets it be deleted, and the next round creates it anew.
      if (!existing || !/not pending on any node/i.test(String(err))) throw err;
      await a.remove(wanted.name);
      throw new IncusError(409, `${wanted.name} had failed on every member and could not be finished; it was deleted to be created again`);
    }
    changes.push(existing ? `finished creating it (it was ${existing.status.toLowerCase()})` : `created on ${wanted.members.join(", ")}`);
    if (!existing) return changes;
  }
  const now = await a.get(wanted.name);
  if (!now) throw new IncusError(404, `${wanted.name} vanished while it was being converged`);
  const global = without(wanted.config, memberKeys);
  const changed = Object.fromEntries(Object.entries(global).filter(([k, v]) => now.config[k] !== v));
  const patch = { ...(now.description !== wanted.description ? { description: wanted.description } : {}), ...(Object.keys(changed).length > 0 ? { config: changed } : {}) };
  if (Object.keys(patch).length > 0) {
    await a.patch(wanted.name, patch);
    changes.push([...(patch.description !== undefined ? ["description"] : []), ...Object.keys(changed)].map((k) => `set ${k}`).join(", "));
  }
  for (const member of wanted.members) {
    const own = wanted.memberConfig[member] ?? {};
    if (Object.keys(own).length === 0) continue;
    const there = await a.get(wanted.name, member);
    const differ = Object.fromEntries(Object.entries(only(own, memberKeys)).filter(([k, v]) => there?.config[k] !== v));
    if (Object.keys(differ).length === 0) continue;
    await a.patch(wanted.name, { config: differ }, member);
    changes.push(`set ${Object.keys(differ).join(", ")} on ${member}`);
  }
  return changes;
}

export async function deleteResource(incus: IncusClient, kind: "pool" | "network", name: string): Promise<boolean> {
  const a = api(incus, kind);
  if (!(await a.get(name))) return false;
  await a.remove(name);
  return true;
}

async function observeOne(incus: IncusClient, kind: "pool" | "network", r: Existing, members: string[], detailed: boolean): Promise<ObservedResource> {
  const a = api(incus, kind);
  const memberKeys = memberKeysOf(kind);
  const out: ObservedResource = { name: r.name, kind: kindOf(r), managed: "managed" in r ? r.managed : true, status: r.status, description: r.description, config: without(r.config, memberKeys), members: {} };
  if (!detailed) return out;
  for (const member of members) {
    const there = await a.get(r.name, member).catch((err: unknown) => (err instanceof IncusError ? null : Promise.reject(err)));
    out.members[member] = there ? { status: there.status, config: only(there.config, memberKeys) } : { status: "Unknown", config: {} };
  }
  return out;
}

/** One pool or network as it is now on each of `members`, read back after converging it; undefined when it is gone. */
export async function observeResource(incus: IncusClient, kind: "pool" | "network", name: string, members: string[]): Promise<ObservedResource | undefined> {
  const r = await api(incus, kind).get(name);
  return r ? observeOne(incus, kind, r, members, members.length > 0) : undefined;
}

export const observedMember = (m: IncusMember): ObservedMember => ({ name: m.server_name, description: m.description, failureDomain: m.failure_domain, groups: m.groups ?? [] });

/**
 * What the spec manages, as Incus has it: cluster settings, pools and
 * networks (the named ones with each member's own state and keys) and where
 * every instance is.
 */
export async function observe(incus: IncusClient, names: { pools: string[]; networks: string[] }): Promise<Observation> {
  const [server, pools, networks, instances] = await Promise.all([incus.server(), incus.storagePools(), incus.networks(), placements(incus)]);
  const listed = server.environment.server_clustered ? await incus.members() : [];
  const members = listed.map((m) => m.server_name);
  const detailed = (r: Existing, wanted: string[]) => members.length > 0 && (wanted.includes(r.name) || r.config[MANAGED_KEY] !== undefined);
  return {
    config: server.config,
    members: listed.map(observedMember),
    pools: await Promise.all(pools.map((p) => observeOne(incus, "pool", p, members, detailed(p, names.pools)))),
    networks: await Promise.all(networks.filter((n) => n.managed).map((n) => observeOne(incus, "network", n, members, detailed(n, names.networks)))),
    instances,
  };
}
