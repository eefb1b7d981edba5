/**
 * NATS subjects of the wire contract. Every subject an agent may use names
 * its cluster and node, so that nats-server's permissions can keep each
 * host's credential to its own subjects (see `natsPermissions`). The version
 * is part of every subject so that a v2 contract can run beside v1.
 */
export const WIRE_VERSION = "v1";
const ROOT = `fleet.${WIRE_VERSION}`;

/** What an agent sends to the coordinator that owns its cluster. */
export const AgentMessage = {
  /** A fresh nonce to prove the cluster password against. */
  Challenge: "challenge",
  /** Enrollment: the proof over the nonce; the reply is the first assignment. */
  Hello: "hello",
  /** The pull: the agent's current assignment. */
  Assign: "assign",
  /** The outcome of a bootstrap or join. */
  Report: "report",
  /** Health, latency and the member's view, once per interval. */
  Heartbeat: "heartbeat",
  /** The coordinator's clock, for the agent's clock-offset measurement. */
  Time: "time",
} as const;
export type AgentMessage = (typeof AgentMessage)[keyof typeof AgentMessage];

export const Subject = {
  fromAgent: (cluster: string, node: string, kind: AgentMessage) => `${ROOT}.in.${cluster}.${node}.${kind}`,
  /** Everything one agent may send. */
  fromAgentAll: (cluster: string, node: string) => `${ROOT}.in.${cluster}.${node}.>`,
  /** Everything the agents of one cluster send: the owner of the cluster subscribes to it. */
  fromCluster: (cluster: string) => `${ROOT}.in.${cluster}.>`,
  fromAllAgents: `${ROOT}.in.>`,
  /** Coordinator to one agent: a command to run against its local Incus. */
  command: (cluster: string, node: string) => `${ROOT}.out.${cluster}.${node}.command`,
  /** Everything addressed to one agent. */
  toAgent: (cluster: string, node: string) => `${ROOT}.out.${cluster}.${node}.>`,
  /** Coordinator to the agents of a cluster: something changed, pull again now. */
  nudge: (cluster: string) => `${ROOT}.nudge.${cluster}`,
  event: (cluster: string, kind: string) => `${ROOT}.events.${cluster}.${kind}`,
  eventsAll: `${ROOT}.events.>`,
  eventsOf: (cluster: string) => `${ROOT}.events.${cluster}.>`,
} as const;

/** Where an agent's replies arrive: under a prefix only its own credential may subscribe to. */
export const agentInboxPrefix = (cluster: string, node: string) => `_INBOX_fleet.${cluster}.${node}`;
export const AGENT_INBOXES = "_INBOX_fleet.>";

/** Splits `fleet.v1.in.<cluster>.<node>.<kind>`; null for anything else. */
export function parseAgentSubject(subject: string): { cluster: string; node: string; kind: string } | null {
  const parts = subject.split(".");
  if (parts.length !== 6 || parts[0] !== "fleet" || parts[1] !== WIRE_VERSION || parts[2] !== "in") return null;
  return { cluster: parts[3]!, node: parts[4]!, kind: parts[5]! };
}
