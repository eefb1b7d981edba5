import { DelayedLink } from "./delayed-link.js";
import { run } from "./processes.js";

/**
 * Addresses for lab hosts, only ever on the documentation ranges, and only
 * on those the machine itself does not use: a host whose own network is
 * 192.0.2.0/24 (seen here) keeps it to itself. The ranges left are cut into
 * /28 slices; a lab slot takes two slices, one for the cluster network and
 * one for the management network that carries NATS. A slice holds the
 * bridge (.1) and up to 13 hosts.
 */
const DOCUMENTATION_RANGES = ["192.0.2", "198.51.100", "203.0.113"];
export const MAX_HOSTS = 13;
const PREFIX_LENGTH = 28;
/** Lab bridges carry this alias, so that a scan for the host's own networks passes over them. */
const LAB_ALIAS = "incus-fleet-lab";

export interface Subnet {
  base: string;
  offset: number;
}

interface IpAddr {
  ifname: string;
  ifalias?: string;
  addr_info?: { family: string; local: string }[];
}
interface IpRoute {
  dst: string;
  dev?: string;
  gateway?: string;
}

/** The documentation /24s that no address or route of the machine's own (non-lab) interfaces touches. */
export async function freeDocumentationRanges(): Promise<string[]> {
  const links = JSON.parse((await run("ip", ["-j", "-d", "addr", "show"])).stdout) as IpAddr[];
  const labLinks = new Set(links.filter((l) => l.ifalias === LAB_ALIAS).map((l) => l.ifname));
  const routes = JSON.parse((await run("ip", ["-j", "route", "show"])).stdout) as IpRoute[];
  const used = [
    ...links.filter((l) => !labLinks.has(l.ifname)).flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === "inet").map((a) => a.local)),
    ...routes.filter((r) => !r.dev || !labLinks.has(r.dev)).flatMap((r) => [r.dst, r.gateway ?? ""]),
  ];
  return DOCUMENTATION_RANGES.filter((range) => !used.some((u) => u.startsWith(`${range}.`)));
}

export async function labSlots(): Promise<number> {
  return (await freeDocumentationRanges()).length * 8;
}

function slice(ranges: string[], k: number): Subnet {
  const base = ranges[Math.floor(k / 16)];
  if (!base) throw new Error(`lab slice ${k} is beyond the documentation ranges this machine leaves free (${ranges.join(", ")})`);
  return { base, offset: (k % 16) * 16 };
}

export function hostAddress(subnet: Subnet, host: number): string {
  if (host < 1 || host > 14) throw new Error(`host ${host} is outside a /28`);
  return `${subnet.base}.${subnet.offset + host}`;
}

export function cidrOf(subnet: Subnet): string {
  return `${subnet.base}.${subnet.offset}/${PREFIX_LENGTH}`;
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

export async function labNetwork(slot: number, prefix: string): Promise<LabNetwork> {
  if (!/^[a-z][a-z0-9]{1,6}$/.test(prefix)) throw new Error(`lab prefix '${prefix}' must be 2-7 lowercase letters/digits`);
  const ranges = await freeDocumentationRanges();
  if (slot < 0 || slot >= ranges.length * 8) throw new Error(`lab slot ${slot} out of range 0..${ranges.length * 8 - 1} on this machine`);
  const cluster = slice(ranges, 2 * slot);
  const mgmt = slice(ranges, 2 * slot + 1);
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
  if (index < 1 || index > MAX_HOSTS) throw new Error(`a lab has hosts 1..${MAX_HOSTS}`);
  return {
    namespace: `${net.prefix}-h${index}`,
    clusterVeth: `${net.prefix}c${index}`,
    mgmtVeth: `${net.prefix}m${index}`,
    clusterAddress: hostAddress(net.cluster, 1 + index),
    mgmtAddress: hostAddress(net.mgmt, 1 + index),
  };
}

const ip = (...args: string[]) => run("ip", args);
const ipQuiet = (...args: string[]) => run("ip", args, { allowFail: true });

async function addBridge(name: string, address: string): Promise<void> {
  await ip("link", "add", name, "type", "bridge");
  await ip("link", "set", name, "alias", LAB_ALIAS);
  await ip("addr", "add", `${address}/${PREFIX_LENGTH}`, "dev", name);
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

/**
 * Creates a host: a namespace with a cluster link (eth0) and a management
 * link (mgmt0). With `delayed`, the cluster link goes through a relay that
 * can be made slow; otherwise both are plain veth pairs.
 */
export async function createHost(net: LabNetwork, index: number, delayed?: { logDir: string }): Promise<{ host: HostLinks; delay: DelayedLink | null }> {
  const h = hostLinks(net, index);
  await ip("netns", "add", h.namespace);
  await ip("-n", h.namespace, "link", "set", "lo", "up");
  let delay: DelayedLink | null = null;
  if (delayed) {
    delay = await DelayedLink.create({
      bridgeTap: h.clusterVeth,
      hostTap: `${net.prefix}d${index}`,
      bridge: net.clusterBridge,
      namespace: h.namespace,
      address: `${h.clusterAddress}/${PREFIX_LENGTH}`,
      logDir: delayed.logDir,
    });
  }
  const links = [
    ...(delay ? [] : [[h.clusterVeth, "eth0", net.clusterBridge, h.clusterAddress] as const]),
    [h.mgmtVeth, "mgmt0", net.mgmtBridge, h.mgmtAddress] as const,
  ];
  for (const [veth, inside, bridge, address] of links) {
    await ip("link", "add", veth, "type", "veth", "peer", "name", inside, "netns", h.namespace);
    await ip("link", "set", veth, "master", bridge, "up");
    await ip("-n", h.namespace, "addr", "add", `${address}/${PREFIX_LENGTH}`, "dev", inside);
    await ip("-n", h.namespace, "link", "set", inside, "up");
  }
  return { host: h, delay };
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

/**
 * Drops TCP to a port inside a host's namespace with nftables: "inbound"
 * blocks connections to the host's port, "both" also its connections out to
 * that port elsewhere; "none" lifts the block.
 */
export async function blockPort(h: HostLinks, port: number, direction: "none" | "inbound" | "both"): Promise<void> {
  await run("ip", ["netns", "exec", h.namespace, "nft", "delete", "table", "inet", "fleetlab"], { allowFail: true });
  if (direction === "none") return;
  const output = direction === "both" ? `\n  chain output { type filter hook output priority 0; policy accept; tcp dport ${port} drop; }` : "";
  const rules = `table inet fleetlab {\n  chain input { type filter hook input priority 0; policy accept; tcp dport ${port} drop; }${output}\n}\n`;
  await run("ip", ["netns", "exec", h.namespace, "nft", "-f", "-"], { input: rules });
}
