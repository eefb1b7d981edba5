import { run } from "./processes.js";

/**
 * Addresses for lab hosts, only ever on the documentation ranges. The three
 * /24s are cut into /27 slices; a lab slot takes two slices, one for the
 * cluster network and one for the management network that carries NATS.
 */
const RANGES = ["192.0.2", "198.51.100", "203.0.113"];
export const LAB_SLOTS = 12;

export interface Subnet {
  base: string;
  offset: number;
  prefix: 27;
}

function slice(k: number): Subnet {
  return { base: RANGES[Math.floor(k / 8)]!, offset: (k % 8) * 32, prefix: 27 };
}

export function hostAddress(subnet: Subnet, host: number): string {
  if (host < 1 || host > 30) throw new Error(`host ${host} is outside a /27`);
  return `${subnet.base}.${subnet.offset + host}`;
}

export interface LabNetwork {
  slot: number;
  prefix: string;
  cluster: Subnet;
  mgmt: Subnet;
  clusterBridge: string;
  mgmtBridge: string;
  /** The root namespace's address on the management bridge: where NATS listens. */
  mgmtGateway: string;
}

export function labNetwork(slot: number, prefix: string): LabNetwork {
  if (slot < 0 || slot >= LAB_SLOTS) throw new Error(`lab slot ${slot} out of range 0..${LAB_SLOTS - 1}`);
  if (!/^[a-z][a-z0-9]{1,6}$/.test(prefix)) throw new Error(`lab prefix '${prefix}' must be 2-7 lowercase letters/digits`);
  const cluster = slice(2 * slot);
  const mgmt = slice(2 * slot + 1);
  return { slot, prefix, cluster, mgmt, clusterBridge: `${prefix}c`, mgmtBridge: `${prefix}m`, mgmtGateway: hostAddress(mgmt, 1) };
}

export interface HostLinks {
  namespace: string;
  /** Host-side end of the cluster link (inside the namespace it is eth0). */
  clusterVeth: string;
  mgmtVeth: string;
  clusterAddress: string;
  mgmtAddress: string;
}

export function hostLinks(net: LabNetwork, index: number): HostLinks {
  return {
    namespace: `${net.prefix}-h${index}`,
    clusterVeth: `${net.prefix}c${index}`,
    mgmtVeth: `${net.prefix}m${index}`,
    clusterAddress: hostAddress(net.cluster, 10 + index),
    mgmtAddress: hostAddress(net.mgmt, 10 + index),
  };
}

const ip = (...args: string[]) => run("ip", args);
const ipQuiet = (...args: string[]) => run("ip", args, { allowFail: true });

async function addBridge(name: string, address: string): Promise<void> {
  await ip("link", "add", name, "type", "bridge");
  await ip("addr", "add", `${address}/27`, "dev", name);
  await ip("link", "set", name, "up");
}

/** Removes whatever an earlier, interrupted run with the same prefix left behind. */
export async function removeStale(net: LabNetwork): Promise<void> {
  const namespaces = (await ipQuiet("netns", "list")).stdout.split("\n").map((l) => l.split(" ")[0]!).filter((n) => n.startsWith(`${net.prefix}-h`));
  for (const ns of namespaces) await ipQuiet("netns", "del", ns);
  const links = (await ipQuiet("-o", "link", "show")).stdout.split("\n").map((l) => l.split(": ")[1]?.split("@")[0] ?? "").filter((n) => n.startsWith(net.prefix));
  for (const link of links) await ipQuiet("link", "del", link);
}

export async function createBridges(net: LabNetwork): Promise<void> {
  await addBridge(net.clusterBridge, hostAddress(net.cluster, 1));
  await addBridge(net.mgmtBridge, net.mgmtGateway);
}

export async function createHost(net: LabNetwork, index: number): Promise<HostLinks> {
  const h = hostLinks(net, index);
  await ip("netns", "add", h.namespace);
  await ip("-n", h.namespace, "link", "set", "lo", "up");
  for (const [veth, inside, bridge, address] of [
    [h.clusterVeth, "eth0", net.clusterBridge, h.clusterAddress],
    [h.mgmtVeth, "mgmt0", net.mgmtBridge, h.mgmtAddress],
  ] as const) {
    await ip("link", "add", veth, "type", "veth", "peer", "name", inside, "netns", h.namespace);
    await ip("link", "set", veth, "master", bridge, "up");
    await ip("-n", h.namespace, "addr", "add", `${address}/27`, "dev", inside);
    await ip("-n", h.namespace, "link", "set", inside, "up");
  }
  return h;
}

export async function removeHost(h: HostLinks): Promise<void> {
  await ipQuiet("netns", "del", h.namespace);
  await ipQuiet("link", "del", h.clusterVeth);
  await ipQuiet("link", "del", h.mgmtVeth);
}

export async function removeBridges(net: LabNetwork): Promise<void> {
  await ipQuiet("link", "del", net.clusterBridge);
  await ipQuiet("link", "del", net.mgmtBridge);
}

/** Takes a host's cluster link down (a partition) or back up; its management link, and so its agent, stays. */
export async function setClusterLink(h: HostLinks, up: boolean): Promise<void> {
  await ip("link", "set", h.clusterVeth, up ? "up" : "down");
}

/** Drops TCP to a port inside a host's namespace with nftables, in one direction or both. */
export async function blockPort(h: HostLinks, port: number, blocked: boolean): Promise<void> {
  if (!blocked) {
    await run("ip", ["netns", "exec", h.namespace, "nft", "delete", "table", "inet", "fleetlab"], { allowFail: true });
    return;
  }
  const rules = `table inet fleetlab {
  chain input { type filter hook input priority 0; policy accept; tcp dport ${port} drop; }
  chain output { type filter hook output priority 0; policy accept; tcp dport ${port} drop; }
}
`;
  await run("ip", ["netns", "exec", h.namespace, "nft", "-f", "-"], { input: rules });
}
