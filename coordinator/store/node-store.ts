import type { KvCache } from "./kv-cache.js";
import type { NodeRecord } from "./records.js";

const nodeKey = (cluster: string, node: string) => `${cluster}.${node}`;
const encoder = new TextEncoder();

/** What must outlive a coordinator about each host: identity, session, facts, join history. */
export class NodeStore {
  constructor(private readonly cache: KvCache<NodeRecord>) {}

  get(cluster: string, node: string): NodeRecord | undefined {
    return this.cache.get(nodeKey(cluster, node));
  }

  ofCluster(cluster: string): NodeRecord[] {
    return [...this.cache.childrenOf(cluster)].map(([, e]) => e.value).filter((r) => r.cluster === cluster);
  }

  all(): NodeRecord[] {
    return [...this.cache.all()].map(([, e]) => e.value);
  }

  async put(record: NodeRecord): Promise<void> {
    const key = nodeKey(record.cluster, record.node);
    const revision = await this.cache.kv.put(key, encoder.encode(JSON.stringify(record)));
    this.cache.remember(key, record, revision);
  }

  async delete(cluster: string, node: string): Promise<void> {
    await this.cache.kv.delete(nodeKey(cluster, node));
  }

  onChange(listener: (cluster: string, node: string) => void): () => void {
    return this.cache.onChange((key, e) => {
      const dot = key.indexOf(".");
      if (e) listener(e.value.cluster, e.value.node);
      else if (dot > 0) listener(key.slice(0, dot), key.slice(dot + 1));
    });
  }
}
