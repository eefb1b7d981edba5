import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** How long an agent has to answer a challenge. */
export const CHALLENGE_TTL_MS = 30_000;

/**
 * Challenges an agent proves the cluster password against. They carry
 * their own expiry and an HMAC made with a key every coordinator shares
 * (from the store), so any coordinator can check one another issued, and
 * nothing is kept per challenge but the few used ones, until they expire:
 * a flood of challenge requests costs no memory.
 */
export class Challenges {
  private readonly used = new Map<string, number>();

  constructor(private readonly key: Buffer) {}

  private mac(nonce: string, expires: number, cluster: string, node: string, instance: string): Buffer {
    return createHmac("sha256", this.key).update(`${nonce}.${expires}.${cluster}.${node}.${instance}`).digest();
  }

  issue(cluster: string, node: string, instance: string, now: number): { challenge: string; expiresInMs: number } {
    const nonce = randomBytes(16).toString("hex");
    const expires = now + CHALLENGE_TTL_MS;
    return { challenge: `${nonce}.${expires}.${this.mac(nonce, expires, cluster, node, instance).toString("hex")}`, expiresInMs: CHALLENGE_TTL_MS };
  }

  /** Whether the challenge was issued to this agent process, is unexpired and unused; using it uses it up. */
  take(challenge: string, cluster: string, node: string, instance: string, now: number): boolean {
    const [nonce, expiresText, mac] = challenge.split(".");
    const expires = Number(expiresText);
    if (!nonce || !mac || !Number.isFinite(expires) || expires < now || expires > now + CHALLENGE_TTL_MS * 2) return false;
    const expected = this.mac(nonce, expires, cluster, node, instance);
    const given = Buffer.from(mac, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    for (const [n, exp] of this.used) {
      if (exp >= now) break;
      this.used.delete(n);
    }
    if (this.used.has(nonce)) return false;
    this.used.set(nonce, expires);
    return true;
  }
}
