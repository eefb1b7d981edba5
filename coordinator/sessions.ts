import { randomNonce } from "../shared/index.js";

const CHALLENGE_TTL_MS = 30_000;

type Channel = "request" | "heartbeat";

interface Session {
  instance: string;
  lastSeq: Record<Channel, number>;
}

export type SessionCheck = "ok" | "unknown" | "replay";

/**
 * Challenges and sessions of the agents. A challenge is single use and short
 * lived; a session is one agent process (its instance id), and every message
 * in it carries a sequence number that must rise, so a captured message
 * cannot be played back.
 */
export class SessionRegistry {
  private readonly challenges = new Map<string, { cluster: string; node: string; expires: number }>();
  private readonly sessions = new Map<string, Session>();

  issueChallenge(cluster: string, node: string, now = Date.now()): { nonce: string; expiresInMs: number } {
    // Challenges are kept in the order they were issued, so the expired ones are at the front.
    for (const [nonce, c] of this.challenges) {
      if (c.expires >= now) break;
      this.challenges.delete(nonce);
    }
    const nonce = randomNonce(16);
    this.challenges.set(nonce, { cluster, node, expires: now + CHALLENGE_TTL_MS });
    return { nonce, expiresInMs: CHALLENGE_TTL_MS };
  }

  /** Uses up a challenge; false when it is unknown, expired, or was issued to someone else. */
  takeChallenge(nonce: string, cluster: string, node: string, now = Date.now()): boolean {
    const c = this.challenges.get(nonce);
    this.challenges.delete(nonce);
    return !!c && c.expires >= now && c.cluster === cluster && c.node === node;
  }

  open(cluster: string, node: string, instance: string): void {
    this.sessions.set(`${cluster}/${node}`, { instance, lastSeq: { request: 0, heartbeat: 0 } });
  }

  /**
   * Checks a message against the node's session. `persisted` is the instance
   * the store remembers, so that sessions survive a coordinator restart.
   */
  check(cluster: string, node: string, instance: string, seq: number, channel: Channel, persisted: string | null): SessionCheck {
    const key = `${cluster}/${node}`;
    let session = this.sessions.get(key);
    if (!session && persisted === instance) {
      session = { instance, lastSeq: { request: 0, heartbeat: 0 } };
      this.sessions.set(key, session);
    }
    if (!session || session.instance !== instance) return "unknown";
    if (seq <= session.lastSeq[channel]) return "replay";
    session.lastSeq[channel] = seq;
    return "ok";
  }

  instanceOf(cluster: string, node: string): string | null {
    return this.sessions.get(`${cluster}/${node}`)?.instance ?? null;
  }

  drop(cluster: string, node: string): void {
    this.sessions.delete(`${cluster}/${node}`);
  }
}
