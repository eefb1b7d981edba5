import type { NodeRecord } from "./store.js";

/** The node registry in memory, indexed by cluster: a decision about one cluster reads only its own nodes. */
export class NodeRecords {
  private readonly byCluster = new Map<string, Map<string, NodeRecord>>();

  get(cluster: string, node: string): NodeRecord | undefined {
    return this.byCluster.get(cluster)?.get(node);
  }

  set(record: NodeRecord): void {
    let nodes = this.byCluster.get(record.cluster);
    if (!nodes) {
      nodes = new Map();
      this.byCluster.set(record.cluster, nodes);
    }
    nodes.set(record.node, record);
  }

  delete(cluster: string, node: string): void {
    this.byCluster.get(cluster)?.delete(node);
  }

  ofCluster(cluster: string): IterableIterator<NodeRecord> {
    return (this.byCluster.get(cluster) ?? new Map<string, NodeRecord>()).values();
  }

  all(): NodeRecord[] {
    return [...this.byCluster.values()].flatMap((m) => [...m.values()]);
  }
}
