import type { ClusterStatusRecord } from "../status/cluster-status.js";
import type { KvCache } from "./kv-cache.js";

const encoder = new TextEncoder();

/** Each cluster's latest status, as its owner wrote it: what every coordinator's API reads. */
export class StatusStore {
  constructor(private readonly cache: KvCache<ClusterStatusRecord>) {}

  get(cluster: string): ClusterStatusRecord | undefined {
    return this.cache.get(cluster);
  }

  all(): ClusterStatusRecord[] {
    return [...this.cache.all()].map(([, e]) => e.value);
  }

  async put(record: ClusterStatusRecord): Promise<void> {
    const revision = await this.cache.kv.put(record.cluster, encoder.encode(JSON.stringify(record)));
    this.cache.remember(record.cluster, record, revision);
  }

  async delete(cluster: string): Promise<void> {
    await this.cache.kv.delete(cluster);
  }
}
