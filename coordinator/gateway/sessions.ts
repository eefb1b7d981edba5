export type Channel = "request" | "heartbeat";

export type SessionCheck = "ok" | "unknown" | "stale" | "replay";

interface Session {
  instance: string;
  lastSeq: Record<Channel, number>;
  /** Messages sent before this (by the coordinators' clock) are not accepted: replays from before this coordinator took over. */
  acceptAfter: number;
}

/** How far an agent's idea of the coordinators' clock may be off, and how old a message may be. */
export const MESSAGE_MAX_AGE_MS = 30_000;
const CLOCK_SLACK_MS = 1_000;

/**
 * Agent sessions of the clusters this coordinator owns. A session is one
 * agent process (its instance id, recorded in the store by its verified
 * hello, so that any coordinator taking the cluster over knows it). Each
 * message carries a rising sequence number and the time it was sent: a
 * message played back later is refused because its number was seen, or,
 * after a restart or a takeover, because it was sent before this
 * coordinator took the cluster.
 */
export class SessionTable {
  private readonly sessions = new Map<string, Session>();

  /** A verified hello: the session starts now. */
  open(cluster: string, node: string, instance: string): void {
    this.sessions.set(`${cluster}/${node}`, { instance, lastSeq: { request: 0, heartbeat: 0 }, acceptAfter: 0 });
  }

  drop(cluster: string, node?: string): void {
    if (node !== undefined) {
      this.sessions.delete(`${cluster}/${node}`);
      return;
    }
    for (const key of [...this.sessions.keys()]) if (key.startsWith(`${cluster}/`)) this.sessions.delete(key);
  }

  /**
   * Checks a message against the agent's session. `stored` is the instance
   * the store holds for the node and `ownedSince` when this coordinator took
   * the cluster: a session learnt from the store accepts only what was sent
   * after that.
   */
  check(cluster: string, node: string, msg: { instance: string; seq: number; sentAt: number }, channel: Channel, stored: string | null, ownedSince: number, now: number): SessionCheck {
    const key = `${cluster}/${node}`;
    let session = this.sessions.get(key);
    if (!session || session.instance !== msg.instance) {
      if (stored !== msg.instance) return "unknown";
      session = { instance: msg.instance, lastSeq: { request: 0, heartbeat: 0 }, acceptAfter: ownedSince - CLOCK_SLACK_MS };
      this.sessions.set(key, session);
    }
    if (Math.abs(now - msg.sentAt) > MESSAGE_MAX_AGE_MS || msg.sentAt < session.acceptAfter) return "stale";
    if (msg.seq <= session.lastSeq[channel]) return "replay";
    session.lastSeq[channel] = msg.seq;
    return "ok";
  }

  instanceOf(cluster: string, node: string): string | null {
    return this.sessions.get(`${cluster}/${node}`)?.instance ?? null;
  }
}
