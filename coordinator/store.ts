import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, KvWatchInclude, type KV, type KvEntry } from "@nats-io/kv";
import { ErrorCode, FleetError, type FleetSpec, type NodeFacts, type PreflightReport, type Problem } from "../shared/index.js";

/** The spec as stored: passwords are replaced by the keys derived from them. */
export interface StoredSpec {
  spec: FleetSpec;
  keys: Record<string, { mac: string; seal: string }>;
  appliedAt: string;
  warnings: Problem[];
}

export interface BootstrapClaim {
  node: string;
  claimedAt: string;
  completedAt?: string;
  /** The cluster already existed when incus-fleet first saw it. */
  adopted?: boolean;
}

export type MembershipOpKind = "join" | "remove" | "evacuate" | "restore";

export interface MembershipOp {
  id: string;
  kind: MembershipOpKind;
  node: string;
  startedAt: string;
  /** For joins: the member whose agent minted the token. */
  sponsor?: string;
  force?: boolean;
  phase?: string;
}

export const NodeState = {
  Enrolled: "enrolled",
  Waiting: "waiting",
  Bootstrapping: "bootstrapping",
  Joining: "joining",
  Member: "member",
  Held: "held",
  Failed: "failed",
  Removing: "removing",
  Retired: "retired",
  Rejected: "rejected",
} as const;
export type NodeState = (typeof NodeState)[keyof typeof NodeState];

export interface NodeRecord {
  cluster: string;
  node: string;
  /** The agent process holding the session; set only by a verified hello. */
  instance: string | null;
  state: NodeState;
  reason: string;
  since: string;
  facts: NodeFacts | null;
  preflight: PreflightReport | null;
  failures: number;
  lastFailure: string | null;
  lastFailureAt: string | null;
}

/** Per-cluster bookkeeping of what has been applied, so a restarted coordinator does not redo it. */
export interface ClusterMeta {
  settingsApplied: string | null;
  resourcesApplied: string[];
}

const CAS_CONFLICT = 10071;

function isCasConflict(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: unknown } } | null;
  return e?.code === CAS_CONFLICT || e?.api_error?.err_code === CAS_CONFLICT || /wrong last sequence/.test(String(err));
}

const encoder = new TextEncoder();
function encode(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}
function decode<T>(entry: KvEntry | null): T | null {
  if (!entry || entry.operation !== "PUT") return null;
  return entry.json<T>();
}

export interface StoreOptions {
  prefix?: string;
  replicas?: number;
}

/**
 * The coordinator's state in JetStream key-value buckets. Anything that must
 * happen at most once (the bootstrap claim, a membership change) is guarded
 * by a compare-and-set on a key, not by timing, so a restarted coordinator or
 * a second one sharing the store cannot repeat it.
 */
export class FleetStore {
  private constructor(
    private readonly specKv: KV,
    private readonly clustersKv: KV,
    private readonly nodesKv: KV,
  ) {}

  static async open(nc: NatsConnection, options: StoreOptions = {}): Promise<FleetStore> {
    const prefix = options.prefix ?? "fleet";
    const kvm = new Kvm(nc);
    const opts = { replicas: options.replicas ?? 1 };
    const [spec, clusters, nodes] = await Promise.all([
      kvm.create(`${prefix}-spec`, { ...opts, history: 10 }),
      kvm.create(`${prefix}-clusters`, { ...opts, history: 5 }),
      kvm.create(`${prefix}-nodes`, { ...opts, history: 1 }),
    ]);
    return new FleetStore(spec, clusters, nodes);
  }

  // ------------------------------------------------------------ watches

  /**
   * Follows changes another coordinator makes to the spec and to the
   * clusters' claims and locks, so that coordinators sharing the store
   * decide from the same facts. Returns a function that stops watching.
   */
  async watch(handlers: {
    spec: (stored: StoredSpec, revision: number) => void;
    cluster: (cluster: string, key: "bootstrap" | "op" | "meta", value: unknown) => void;
  }): Promise<() => void> {
    const specWatch = await this.specKv.watch({ key: "current", include: KvWatchInclude.UpdatesOnly });
    const clusterWatch = await this.clustersKv.watch({ include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const e of specWatch) {
        const stored = decode<StoredSpec>(e);
        if (stored) handlers.spec(stored, e.revision);
      }
    })();
    void (async () => {
      for await (const e of clusterWatch) {
        const dot = e.key.lastIndexOf(".");
        const kind = e.key.slice(dot + 1);
        if (kind === "bootstrap" || kind === "op" || kind === "meta") handlers.cluster(e.key.slice(0, dot), kind, decode(e));
      }
    })();
    return () => {
      specWatch.stop();
      clusterWatch.stop();
    };
  }

  // ------------------------------------------------------------ spec

  async getSpec(): Promise<{ stored: StoredSpec; revision: number } | null> {
    const entry = await this.specKv.get("current");
    const stored = decode<StoredSpec>(entry);
    return stored && entry ? { stored, revision: entry.revision } : null;
  }

  /**
   * Stores a spec. With `expectedRevision` the write only lands if nobody
   * changed the spec since that revision (0 means "there is no spec yet").
   */
  async putSpec(stored: StoredSpec, expectedRevision?: number): Promise<number> {
    try {
      if (expectedRevision === undefined) return await this.specKv.put("current", encode(stored));
      if (expectedRevision === 0) return await this.specKv.create("current", encode(stored));
      return await this.specKv.update("current", encode(stored), expectedRevision);
    } catch (err) {
      if (isCasConflict(err)) {
        throw new FleetError(ErrorCode.SpecConflict, `the spec changed since revision ${expectedRevision}; fetch it again and re-apply`);
      }
      throw err;
    }
  }

  // ------------------------------------------------------------ bootstrap claim

  async getBootstrap(cluster: string): Promise<{ claim: BootstrapClaim; revision: number } | null> {
    const entry = await this.clustersKv.get(`${cluster}.bootstrap`);
    const claim = decode<BootstrapClaim>(entry);
    return claim && entry ? { claim, revision: entry.revision } : null;
  }

  /**
   * Claims the bootstrap of a cluster for one member. The key is created
   * once and never deleted: whoever loses the race reads the winner.
   */
  async claimBootstrap(cluster: string, claim: BootstrapClaim): Promise<{ won: boolean; claim: BootstrapClaim }> {
    try {
      await this.clustersKv.create(`${cluster}.bootstrap`, encode(claim));
      return { won: true, claim };
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      const existing = await this.getBootstrap(cluster);
      if (!existing) throw new FleetError(ErrorCode.Internal, `bootstrap claim of ${cluster} is locked but unreadable`);
      return { won: false, claim: existing.claim };
    }
  }

  async completeBootstrap(cluster: string, completedAt: string): Promise<BootstrapClaim | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await this.getBootstrap(cluster);
      if (!existing) return null;
      if (existing.claim.completedAt) return existing.claim;
      const claim = { ...existing.claim, completedAt };
      try {
        await this.clustersKv.update(`${cluster}.bootstrap`, encode(claim), existing.revision);
        return claim;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
    throw new FleetError(ErrorCode.Busy, `could not record the bootstrap of ${cluster}: the claim keeps changing`);
  }

  // ------------------------------------------------------------ membership lock

  async getOp(cluster: string): Promise<MembershipOp | null> {
    return decode<MembershipOp>(await this.clustersKv.get(`${cluster}.op`));
  }

  /** Takes the cluster's membership lock; false when another change holds it. */
  async beginOp(cluster: string, op: MembershipOp): Promise<boolean> {
    try {
      await this.clustersKv.create(`${cluster}.op`, encode(op));
      return true;
    } catch (err) {
      if (isCasConflict(err)) return false;
      throw err;
    }
  }

  async updateOp(cluster: string, op: MembershipOp): Promise<boolean> {
    const entry = await this.clustersKv.get(`${cluster}.op`);
    const current = decode<MembershipOp>(entry);
    if (!current || !entry || current.id !== op.id) return false;
    try {
      await this.clustersKv.update(`${cluster}.op`, encode(op), entry.revision);
      return true;
    } catch (err) {
      if (isCasConflict(err)) return false;
      throw err;
    }
  }

  /** Releases the lock, but only if it still holds the given operation. */
  async endOp(cluster: string, opId: string): Promise<boolean> {
    const entry = await this.clustersKv.get(`${cluster}.op`);
    const current = decode<MembershipOp>(entry);
    if (!current || !entry || current.id !== opId) return false;
    try {
      await this.clustersKv.delete(`${cluster}.op`, { previousSeq: entry.revision });
      return true;
    } catch (err) {
      if (isCasConflict(err)) return false;
      throw err;
    }
  }

  // ------------------------------------------------------------ cluster meta

  async getMeta(cluster: string): Promise<ClusterMeta> {
    return decode<ClusterMeta>(await this.clustersKv.get(`${cluster}.meta`)) ?? { settingsApplied: null, resourcesApplied: [] };
  }

  async putMeta(cluster: string, meta: ClusterMeta): Promise<void> {
    await this.clustersKv.put(`${cluster}.meta`, encode(meta));
  }

  // ------------------------------------------------------------ node registry

  async getNode(cluster: string, node: string): Promise<NodeRecord | null> {
    return decode<NodeRecord>(await this.nodesKv.get(`${cluster}.${node}`));
  }

  async putNode(record: NodeRecord): Promise<void> {
    await this.nodesKv.put(`${record.cluster}.${record.node}`, encode(record));
  }

  async deleteNode(cluster: string, node: string): Promise<void> {
    await this.nodesKv.delete(`${cluster}.${node}`);
  }

  async listNodes(): Promise<NodeRecord[]> {
    const out: NodeRecord[] = [];
    const keys = await this.nodesKv.keys();
    const names: string[] = [];
    for await (const key of keys) names.push(key);
    const entries = await Promise.all(names.map((k) => this.nodesKv.get(k)));
    for (const entry of entries) {
      const record = decode<NodeRecord>(entry);
      if (record) out.push(record);
    }
    return out;
  }
}
