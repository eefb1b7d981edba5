import { readFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { agentPermissions, natsServerConfig, observerPermissions, type NatsUser } from "./nats-config.js";
import { nkeyAt, secretAt, signingKeyAt, writePublic, writeSecret } from "./credentials.js";
import { ensureCa, ensureCertificate, type TlsFiles } from "./tls.js";

export interface SetupHost {
  cluster: string;
  node: string;
  address: string;
}

export interface SetupServer {
  name: string;
  /** host:port clients connect to. */
  listen: string;
  /** host:port of its route listener, for a JetStream cluster of several servers. */
  clusterListen?: string;
}

export interface SetupOptions {
  /** Everything is written below this directory; running setup again keeps what it made before. */
  out: string;
  hosts: SetupHost[];
  /** How many coordinators get a credential of their own. */
  coordinators: number;
  /** The nats-server(s): one, or three (or more) for a JetStream cluster. */
  servers: SetupServer[];
  jetstreamDir: string;
  /** Generate a CA and certificates, for these server names and addresses; `mutual`: the servers verify clients too. */
  tls: { hosts: string[]; mutual: boolean } | null;
  /** Where the files will be on the hosts, for the configuration files written (default: /etc/incus-fleet). */
  installDir?: string;
}

export interface Credentials {
  nkeyFile: string;
  tls: Partial<TlsFiles> | null;
}

export interface SetupResult {
  serverConfigs: string[];
  /** What each client connects to. */
  urls: string[];
  coordinators: (Credentials & { signingKeyFile: string; configFile: string })[];
  hosts: Map<string, Credentials & { coordinatorKeyFile: string; configFile: string }>;
  observer: Credentials;
  apiTokenFile: string;
  coordinatorKeyFile: string;
}

const hostKey = (cluster: string, node: string) => `${cluster}/${node}`;

/**
 * Writes a locked-down NATS set-up for a fleet: a nats-server configuration
 * with one nkey per coordinator, per host (bound to its node name by its
 * permissions) and per observer; the coordinators' signing key and its
 * public half for the hosts; an API token; optionally a CA and certificates;
 * and a configuration file per coordinator and per host pointing at them.
 */
export async function setupFleet(o: SetupOptions): Promise<SetupResult> {
  const install = o.installDir ?? "/etc/incus-fleet";
  const ca = o.tls ? await ensureCa(join(o.out, "tls")) : null;
  const scheme = o.tls ? "tls" : "nats";
  const urls = o.servers.map((s) => `${scheme}://${s.listen}`);
  const users: NatsUser[] = [];
  const signingKeyFile = join(o.out, "coordinators", "signing.key");
  const coordinatorKeyFile = join(o.out, "coordinator.pub");
  signingKeyAt(signingKeyFile, coordinatorKeyFile);
  const apiTokenFile = join(o.out, "api-token");
  secretAt(apiTokenFile);

  const clientTls = async (dir: string, name: string): Promise<Partial<TlsFiles> | null> => {
    if (!ca) return null;
    if (!o.tls?.mutual) return { caFile: ca.caFile };
    return ensureCertificate(dir, name, ca, "client");
  };

  const coordinators: SetupResult["coordinators"] = [];
  for (let i = 1; i <= o.coordinators; i++) {
    const dir = join(o.out, "coordinators", `coordinator-${i}`);
    const key = nkeyAt(join(dir, "nats.nk"));
    users.push({ role: `coordinator ${i}`, nkey: key.publicKey, permissions: null });
    const tls = await clientTls(dir, `coordinator-${i}`);
    const configFile = join(dir, "coordinator.yaml");
    writePublic(
      configFile,
      stringify({
        nats: { servers: urls, nkeyFile: `${install}/nats.nk`, ...(tls ? { tls: installedTls(tls, install) } : {}) },
        signingKeyFile: `${install}/coordinator/signing.key`,
        http: { tokenFile: `${install}/api-token` },
        ...(o.servers.length > 1 ? { store: { replicas: Math.min(3, o.servers.length) } } : {}),
      }),
    );
    coordinators.push({ nkeyFile: join(dir, "nats.nk"), tls, signingKeyFile, configFile });
  }

  const observerDir = join(o.out, "observer");
  const observerKey = nkeyAt(join(observerDir, "nats.nk"));
  users.push({ role: "observer: reads fleet events", nkey: observerKey.publicKey, permissions: observerPermissions() });
  const observer = { nkeyFile: join(observerDir, "nats.nk"), tls: await clientTls(observerDir, "observer") };

  const hosts: SetupResult["hosts"] = new Map();
  for (const h of o.hosts) {
    const dir = join(o.out, "hosts", h.cluster, h.node);
    const key = nkeyAt(join(dir, "nats.nk"));
    users.push({ role: `agent of ${h.node} in cluster ${h.cluster}`, nkey: key.publicKey, permissions: agentPermissions(h.cluster, h.node) });
    const tls = await clientTls(dir, h.node);
    writePublic(join(dir, "coordinator.pub"), readFileSync(coordinatorKeyFile, "utf8"));
    const configFile = join(dir, "agent.yaml");
    writePublic(
      configFile,
      stringify({
        nats: { servers: urls, nkeyFile: `${install}/nats.nk`, ...(tls ? { tls: installedTls(tls, install) } : {}) },
        coordinatorKeyFile: `${install}/coordinator.pub`,
        cluster: { name: h.cluster, passwordFile: `${install}/cluster-password` },
        node: { name: h.node, address: h.address },
      }),
    );
    hosts.set(hostKey(h.cluster, h.node), { nkeyFile: join(dir, "nats.nk"), tls, coordinatorKeyFile: join(dir, "coordinator.pub"), configFile });
  }

  const routePassword = o.servers.length > 1 ? secretAt(join(o.out, "nats", "route-password")) : "";
  const serverConfigs: string[] = [];
  for (const [i, s] of o.servers.entries()) {
    const serverTls = ca ? await ensureCertificate(join(o.out, "tls"), `server-${s.name}`, ca, "server", o.tls!.hosts) : null;
    const config = natsServerConfig({
      listen: s.listen,
      serverName: s.name,
      jetstreamDir: o.servers.length > 1 ? join(o.jetstreamDir, s.name) : o.jetstreamDir,
      users,
      ...(serverTls ? { tls: { ...serverTls, verifyClients: o.tls!.mutual } } : {}),
      ...(o.servers.length > 1
        ? { cluster: { name: "incus-fleet", listen: s.clusterListen!, routes: o.servers.map((x) => `nats-route://incus-fleet:${routePassword}@${x.clusterListen}`), user: "incus-fleet", password: routePassword } }
        : {}),
    });
    const path = join(o.out, "nats", o.servers.length > 1 ? `nats-server-${i + 1}.conf` : "nats-server.conf");
    writeSecret(path, config);
    serverConfigs.push(path);
  }
  return { serverConfigs, urls, coordinators, hosts, observer, apiTokenFile, coordinatorKeyFile };
}

function installedTls(tls: Partial<TlsFiles>, install: string): Record<string, string> {
  return { ...(tls.caFile ? { caFile: `${install}/nats-ca.crt` } : {}), ...(tls.certFile ? { certFile: `${install}/nats-client.crt`, keyFile: `${install}/nats-client.key` } : {}) };
}

export function hostCredentials(result: SetupResult, cluster: string, node: string) {
  const c = result.hosts.get(hostKey(cluster, node));
  if (!c) throw new Error(`setup made no credential for ${node} in ${cluster}`);
  return c;
}

