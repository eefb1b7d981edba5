import { randomBytes } from "node:crypto";
import type { ClusterKeys } from "../../shared/index.js";
import type { KvCache } from "./kv-cache.js";
import { isCasConflict } from "./jetstream-errors.js";
import type { ClusterSecrets } from "./records.js";

const CHALLENGE_KEY = "coordinators.challenge";
const clusterKey = (cluster: string) => `cluster.${cluster}`;
const encoder = new TextEncoder();

/**
 * Keys that let their holder check agents' proofs and open sealed tokens.
 * Their bucket is reachable with a coordinator's NATS credential only:
 * agents' credentials have no JetStream permission at all.
 */
export class SecretStore {
  private readonly decoded = new Map<string, { revision: number; keys: ClusterKeys }>();

  constructor(private readonly cache: KvCache<ClusterSecrets | { key: string }>) {}

  keysOf(cluster: string): ClusterKeys | null {
    const e = this.cache.entry(clusterKey(cluster));
    if (!e) return null;
    const known = this.decoded.get(cluster);
    if (known && known.revision === e.revision) return known.keys;
    const s = e.value as ClusterSecrets;
    const keys = { mac: Buffer.from(s.mac, "base64"), seal: Buffer.from(s.seal, "base64") };
    this.decoded.set(cluster, { revision: e.revision, keys });
    return keys;
  }

  async putKeys(cluster: string, keys: ClusterKeys): Promise<void> {
    const value: ClusterSecrets = { mac: keys.mac.toString("base64"), seal: keys.seal.toString("base64") };
    const revision = await this.cache.kv.put(clusterKey(cluster), encoder.encode(JSON.stringify(value)));
    this.cache.remember(clusterKey(cluster), value, revision);
  }

  /** The key that signs challenges, shared by every coordinator so that any of them can check one; made once. */
  async challengeKey(): Promise<Buffer> {
    const known = this.cache.get(CHALLENGE_KEY) as { key: string } | undefined;
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
