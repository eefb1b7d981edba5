import { randomBytes } from "node:crypto";
import type { KvCache } from "./kv-cache.js";
import { isCasConflict } from "./jetstream-errors.js";

const CHALLENGE_KEY = "coordinators.challenge";
const encoder = new TextEncoder();

/**
 * Secrets the coordinators share among themselves. Their bucket is reachable
 * with a coordinator's NATS credential only: agents' credentials have no
 * JetStream permission at all.
 */
export class SecretStore {
  constructor(private readonly cache: KvCache<{ key: string }>) {}

  /** The key that signs challenges, shared by every coordinator so that any of them can check one; made once. */
  async challengeKey(): Promise<Buffer> {
    const known = this.cache.get(CHALLENGE_KEY);
    if (known) return Buffer.from(known.key, "base64");
    const value = { key: randomBytes(32).toString("base64") };
    try {
      const revision = await this.cache.kv.create(CHALLENGE_KEY, encoder.encode(JSON.stringify(value)));
      this.cache.remember(CHALLENGE_KEY, value, revision);
      return Buffer.from(value.key, "base64");
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      const other = await this.cache.kv.get(CHALLENGE_KEY);
      return Buffer.from(other!.json<{ key: string }>().key, "base64");
    }
  }
}
