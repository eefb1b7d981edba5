/**
 * NATS subjects of the wire contract. The version is part of every subject so
 * that a v2 contract can run beside v1 during an upgrade.
 */
export const WIRE_VERSION = "v1";
const ROOT = `fleet.${WIRE_VERSION}`;

export const Subject = {
  /** Agent asks for a fresh nonce to prove the cluster password against. */
  challenge: `${ROOT}.enroll.challenge`,
  /** Agent introduces itself with a proof over the nonce; the reply is its first assignment. */
  hello: `${ROOT}.enroll.hello`,
  /** Enrolled agent pulls its current assignment. */
  assign: `${ROOT}.assign`,
  /** Agent reports the outcome of an assignment. */
  report: `${ROOT}.report`,
  /** Coordinator clock, for the agents' clock-offset measurement. */
  time: `${ROOT}.time`,
  heartbeat: (cluster: string, node: string) => `${ROOT}.heartbeat.${cluster}.${node}`,
  heartbeatAll: `${ROOT}.heartbeat.>`,
  /** Coordinator to one agent: a command to run against its local Incus. */
  command: (cluster: string, node: string) => `${ROOT}.agent.${cluster}.${node}.command`,
  /** Coordinator to the agents of a cluster: something changed, pull again now. */
  nudge: (cluster: string) => `${ROOT}.nudge.${cluster}`,
  event: (cluster: string, kind: string) => `${ROOT}.events.${cluster}.${kind}`,
  eventsAll: `${ROOT}.events.>`,
  eventsOf: (cluster: string) => `${ROOT}.events.${cluster}.>`,
} as const;

/** Queue group shared by coordinators, so that each request is served once. */
export const COORDINATOR_QUEUE = "fleet-coordinators";
