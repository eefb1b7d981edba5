import { ErrorCode, FleetError, type ClusterKeys } from "../../shared/index.js";
import type { KvCache } from "./kv-cache.js";
import { isCasConflict } from "./jetstream-errors.js";
import type { StoredSpec } from "./records.js";

const KEY = "current";
const encoder = new TextEncoder();

/** The one source of truth for what the fleet should look like. */
export class SpecStore {
  private readonly decoded = new Map<string, { revision: number; keys: ClusterKeys }>();

  constructor(private readonly cache: KvCache<StoredSpec>) {}

  /** The keys of a cluster's password, as stored with the current spec. */
  keysOf(cluster: string): ClusterKeys | null {
    const e = this.cache.entry(KEY);
    const s = e?.value.keys?.[cluster];
    if (!e || !s) return null;
    const known = this.decoded.get(cluster);
    if (known && known.revision === e.revision) return known.keys;
    const keys = { mac: Buffer.from(s.mac, "base64"), seal: Buffer.from(s.seal, "base64") };
    this.decoded.set(cluster, { revision: e.revision, keys });
    return keys;
  }

  current(): { stored: StoredSpec; revision: number } | null {
    const e = this.cache.entry(KEY);
    return e ? { stored: e.value, revision: e.revision } : null;
  }

  /**
   * Stores a spec. With `expectedRevision` the write only lands if nobody
   * changed the spec since that revision (0: there is no spec yet).
   */
  async put(stored: StoredSpec, expectedRevision?: number): Promise<number> {
    const data = encoder.encode(JSON.stringify(stored));
    let revision: number;
    try {
      if (expectedRevision === undefined) revision = await this.cache.kv.put(KEY, data);
      else if (expectedRevision === 0) revision = await this.cache.kv.create(KEY, data);
      else revision = await this.cache.kv.update(KEY, data, expectedRevision);
    } catch (err) {
      if (isCasConflict(err)) {
        await this.cache.refresh(KEY).catch(() => undefined);
        throw new FleetError(ErrorCode.SpecConflict, `the spec changed since revision ${expectedRevision}; fetch it again and re-apply`);
      }
      throw err;
    }
    this.cache.remember(KEY, stored, revision);
    return revision;
  }

  onChange(listener: (stored: StoredSpec, revision: number) => void): () => void {
    return this.cache.onChange((key, e) => {
      if (key === KEY && e) listener(e.value, e.revision);
    });
  }
}
