import { ErrorCode, FleetError } from "../../shared/index.js";
import type { KvCache } from "./kv-cache.js";
import { isCasConflict } from "./jetstream-errors.js";
import type { BootstrapClaim } from "./records.js";

const claimKey = (cluster: string) => `${cluster}.bootstrap`;
const encoder = new TextEncoder();

/**
 * Which member bootstraps each cluster. The key is created once, by a
 * compare-and-set, and never removed: whoever loses the race reads the
 * winner, so a second `cluster enable` cannot be decided, ever.
 */
export class ClaimStore {
  constructor(private readonly cache: KvCache<BootstrapClaim>) {}

  claimOf(cluster: string): BootstrapClaim | null {
    return this.cache.get(claimKey(cluster)) ?? null;
  }

  async claim(cluster: string, claim: BootstrapClaim): Promise<{ won: boolean; claim: BootstrapClaim }> {
    try {
      const revision = await this.cache.kv.create(claimKey(cluster), encoder.encode(JSON.stringify(claim)));
      this.cache.remember(claimKey(cluster), claim, revision);
      return { won: true, claim };
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      const entry = await this.cache.kv.get(claimKey(cluster));
      if (!entry || entry.operation !== "PUT") throw new FleetError(ErrorCode.Internal, `the bootstrap claim of ${cluster} is locked but unreadable`);
      const existing = entry.json<BootstrapClaim>();
      this.cache.remember(claimKey(cluster), existing, entry.revision);
      return { won: false, claim: existing };
    }
  }

  async complete(cluster: string, completedAt: string): Promise<BootstrapClaim | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await this.cache.kv.get(claimKey(cluster));
      if (!entry || entry.operation !== "PUT") return null;
      const existing = entry.json<BootstrapClaim>();
      if (existing.completedAt) return existing;
      const claim = { ...existing, completedAt };
      try {
        const revision = await this.cache.kv.update(claimKey(cluster), encoder.encode(JSON.stringify(claim)), entry.revision);
        this.cache.remember(claimKey(cluster), claim, revision);
        return claim;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
    throw new FleetError(ErrorCode.Busy, `could not record the bootstrap of ${cluster}: the claim keeps changing`);
  }

  onChange(listener: (cluster: string) => void): () => void {
    return this.cache.onChange((key) => {
      if (key.endsWith(".bootstrap")) listener(key.slice(0, -".bootstrap".length));
    });
  }
}
