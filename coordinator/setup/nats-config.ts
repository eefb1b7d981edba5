import { agentInboxPrefix, Subject } from "../../shared/index.js";

/** One identity on the bus: its nkey's public half, and what it may do. */
export interface NatsUser {
  /** What it is, for the comment in the configuration. */
  role: string;
  nkey: string;
  /** Null for coordinators: they use everything the fleet uses (JetStream, every agent's subjects, the events). */
  permissions: NatsPermissions | null;
}

export interface NatsPermissions {
  publish: { allow?: string[]; deny?: string[] };
  subscribe: { allow?: string[]; deny?: string[] };
  allowResponses: boolean;
}

/**
 * What one host's agent may do, and nothing more: publish on its own
 * subjects, receive its own commands, its cluster's nudges and the replies
 * to its own requests (under an inbox prefix only it may subscribe to), and
 * answer the commands it received. No JetStream, no key-value store, no
 * other host's subjects.
 */
export function agentPermissions(cluster: string, node: string): NatsPermissions {
  return {
    publish: { allow: [Subject.fromAgentAll(cluster, node)] },
    subscribe: { allow: [Subject.toAgent(cluster, node), Subject.nudge(cluster), `${agentInboxPrefix(cluster, node)}.>`] },
    allowResponses: true,
  };
}

/** An operator's read-only credential: the fleet's events, nothing else. */
export function observerPermissions(): NatsPermissions {
  return { publish: { deny: [">"] }, subscribe: { allow: [Subject.eventsAll] }, allowResponses: false };
}

export interface NatsServerOptions {
  listen: string;
  serverName?: string;
  jetstreamDir: string;
  users: NatsUser[];
  tls?: { certFile: string; keyFile: string; caFile: string; verifyClients: boolean };
  /** For a JetStream cluster: this server's route listener, every route, and the routes' own credentials. */
  cluster?: { name: string; listen: string; routes: string[]; user: string; password: string };
  /** Monitoring endpoint, on loopback by default. */
  httpPort?: number;
}

const q = (s: string) => JSON.stringify(s);
const list = (items: string[]) => `[${items.map(q).join(", ")}]`;

function permissionsBlock(p: NatsPermissions): string {
  const part = (name: string, x: { allow?: string[]; deny?: string[] }) =>
    `${name}: { ${[x.allow ? `allow: ${list(x.allow)}` : "", x.deny ? `deny: ${list(x.deny)}` : ""].filter(Boolean).join(", ")} }`;
  return `permissions: { ${part("publish", p.publish)}, ${part("subscribe", p.subscribe)}${p.allowResponses ? ", allow_responses: true" : ""} }`;
}

/**
 * A nats-server (2.9 and later) configuration that locks the bus down with
 * the server's own features: every client needs an nkey, each key has its
 * permissions, JetStream is on in the default account, and TLS is required
 * when certificates are given.
 */
export function natsServerConfig(o: NatsServerOptions): string {
  const lines = [
    "# Written by incus-fleet setup: one nkey per coordinator, per host and per observer, each with its own permissions.",
    `listen: ${q(o.listen)}`,
    ...(o.serverName ? [`server_name: ${q(o.serverName)}`] : []),
    ...(o.httpPort ? [`http: ${q(`127.0.0.1:${o.httpPort}`)}`] : []),
    `jetstream { store_dir: ${q(o.jetstreamDir)} }`,
    // A command's answer may be large (an evacuation lists every instance).
    "max_payload: 1048576",
  ];
  if (o.tls) {
    lines.push(`tls { cert_file: ${q(o.tls.certFile)}, key_file: ${q(o.tls.keyFile)}, ca_file: ${q(o.tls.caFile)}, verify: ${o.tls.verifyClients}, timeout: 5 }`);
  }
  if (o.cluster) {
    lines.push(
      `cluster { name: ${q(o.cluster.name)}, listen: ${q(o.cluster.listen)}, routes: ${list(o.cluster.routes)}, authorization { user: ${q(o.cluster.user)}, password: ${q(o.cluster.password)} } }`,
    );
  }
  lines.push("authorization {", "  users = [");
  for (const u of o.users) lines.push(`    # ${u.role}`, `    { nkey: ${q(u.nkey)}${u.permissions ? `, ${permissionsBlock(u.permissions)}` : ""} }`);
  lines.push("  ]", "}", "");
  return lines.join("\n");
}
