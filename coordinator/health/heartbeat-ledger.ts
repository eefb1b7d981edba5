import { isOnline, type ClusterView, type Heartbeat, type IncusFacts, type NodeFacts } from "../../shared/index.js";
import { LinkRecord } from "./link-record.js";

/**
 * What one agent last said, kept small: the heartbeat itself is let go at
 * once, so that thousands of them a second die young instead of filling the
 * old generation of the heap.
 */
export interface NodeLive {
  cluster: string;
  node: string;
  /** Any authenticated message proves the agent alive. */
  lastSeenAt: number;
  lastHeartbeatAt: number | null;
  intervalMs: number;
  incus: Omit<IncusFacts, "members"> | null;
  /** The full facts of its last hello or pull (address, certificate, capabilities). */
  facts: NodeFacts | null;
  clockOffsetMs: number | null;
  instances: { total: number; running: number } | null;
  /** The last full view the agent sent; heartbeats only carry it when it changed. */
  view: ClusterView | null;
  /** Who is online with which roles in that view, as one string: agents that agree have equal signatures. */
  viewSignature: string;
  /** The last view it could read, and when: what the cluster looked like before its database stopped answering. */
  lastGood: { view: ClusterView; at: number } | null;
  links: Map<string, LinkRecord>;
}

/**
 * Views a cluster keeps beyond those its agents hold. A view of fifty
 * members, with the text it is known by, is about twenty kilobytes, and
 * while a cluster forms each join makes a new one: kept by the dozen for
 * every cluster, they were the largest thing in a coordinator serving
 * thousands of agents.
 */
const SPARE_VIEWS_PER_CLUSTER = 2;
/** Far more peers than one coordinator serves; past it the shared addresses start over. */
const MAX_ADDRESSES = 100_000;

/** Whether a host's Incus changed in a way its cluster's health depends on. */
function incusChanged(before: NodeLive["incus"], after: NonNullable<NodeLive["incus"]>): boolean {
  return !before || before.reachable !== after.reachable || before.clustered !== after.clustered || before.version !== after.version;
}

/** The set's members, leaving it empty. */
function drain(set: Set<string>): Set<string> {
  const out = new Set(set);
  set.clear();
  return out;
}

export function viewSignatureOf(view: ClusterView): string {
  return view.ok ? view.members.map((m) => `${m.name}:${isOnline(m.status)}:${m.roles.join("+")}`).sort().join("|") : "";
}

/**
 * The latest word of every agent of the clusters this coordinator owns.
 * Recording is all it does: health is worked out from it on a schedule
 * (see `evaluateHealth`), never on the way in.
 */
export class HeartbeatLedger {
  private readonly nodes = new Map<string, Map<string, NodeLive>>();
  /** One object per distinct view per cluster, and one signature: fifty members reporting the same view share them. */
  private readonly views = new Map<string, Map<string, { view: ClusterView; signature: string }>>();
  private readonly addresses = new Map<string, string>();
  /** Clusters where something changed since they were last evaluated. */
  private readonly dirty = new Set<string>();
  /** Clusters where a daemon stopped or started answering: news to evaluate at once. */
  private readonly urgent = new Set<string>();

  constructor(private readonly defaultIntervalMs: number) {}

  private live(cluster: string, node: string, now: number): NodeLive {
    let byNode = this.nodes.get(cluster);
    if (!byNode) {
      byNode = new Map();
      this.nodes.set(cluster, byNode);
    }
    let n = byNode.get(node);
    if (!n) {
      n = { cluster, node, lastSeenAt: now, lastHeartbeatAt: null, intervalMs: this.defaultIntervalMs, incus: null, facts: null, clockOffsetMs: null, instances: null, view: null, viewSignature: "", lastGood: null, links: new Map() };
      byNode.set(node, n);
      this.dirty.add(cluster);
    }
    return n;
  }

  touch(cluster: string, node: string, now: number): void {
    const n = this.live(cluster, node, now);
    // A queued heartbeat can be older than a pull already seen.
    n.lastSeenAt = Math.max(n.lastSeenAt, now);
  }

  record(hb: Heartbeat, now: number): void {
    const n = this.live(hb.cluster, hb.node, now);
    const before = n.incus;
    const signatureBefore = n.viewSignature;
    this.touch(hb.cluster, hb.node, now);
    n.lastHeartbeatAt = now;
    n.intervalMs = hb.intervalMs > 0 ? hb.intervalMs : this.defaultIntervalMs;
    const { members: _members, ...incus } = hb.incus;
    n.incus = incus;
    n.clockOffsetMs = hb.clock.offsetMs;
    n.instances = hb.instances;
    if (hb.view) {
      const shared = this.intern(hb.cluster, hb.view);
      n.view = shared.view;
      n.viewSignature = shared.signature;
    }
    if (n.view?.ok) {
      // Updated in place: a record per beat, kept until the next, would be promoted and collected in the old generation.
      if (n.lastGood) {
        n.lastGood.view = n.view;
        n.lastGood.at = now;
      } else n.lastGood = { view: n.view, at: now };
    }
    // An unreachable daemon says nothing about membership; only one that answers "not clustered" does.
    if (incus.reachable && !incus.clustered) {
      n.view = null;
      n.viewSignature = "";
      n.lastGood = null;
    }
    for (const p of hb.latency.peers) {
      let link = n.links.get(p.node);
      if (!link) {
        link = new LinkRecord(p.node, this.address(p.address));
        n.links.set(p.node, link);
      } else if (link.address !== p.address) link.address = this.address(p.address);
      link.add(p.rttMs, p.error, now);
    }
    // Latency samples alone are no news: a link is judged over several of them, at the monitor's regular sweep.
    if (incusChanged(before, incus) || signatureBefore !== n.viewSignature) this.dirty.add(hb.cluster);
    if (before && before.reachable !== incus.reachable) this.urgent.add(hb.cluster);
  }

  /** Facts from a hello or a pull; the older of two readings never wins. */
  recordFacts(cluster: string, node: string, facts: NodeFacts, now: number): void {
    const n = this.live(cluster, node, now);
    if (n.facts && n.facts.incus.observedAt > facts.incus.observedAt) return;
    n.facts = facts;
    if (!n.incus || n.incus.observedAt <= facts.incus.observedAt) {
      const { members: _members, ...incus } = facts.incus;
      // Every pull brings facts; only a change in what health is made of is news for it.
      if (incusChanged(n.incus, incus)) this.dirty.add(cluster);
      n.incus = incus;
    }
  }

  /** A host the store knows, seen as alive as of now: a coordinator taking a cluster over starts the count of silence here. */
  seed(cluster: string, node: string, facts: NodeFacts | null, now: number): void {
    const n = this.live(cluster, node, now);
    n.lastSeenAt = Math.max(n.lastSeenAt, now);
    if (facts && !n.facts) this.recordFacts(cluster, node, facts, now);
  }

  /** One string per address, shared by every member's link to that peer, rather than one per link. */
  private address(text: string): string {
    const known = this.addresses.get(text);
    if (known !== undefined) return known;
    if (this.addresses.size >= MAX_ADDRESSES) this.addresses.clear();
    this.addresses.set(text, text);
    return text;
  }

  private intern(cluster: string, view: ClusterView): { view: ClusterView; signature: string } {
    let known = this.views.get(cluster);
    if (!known) {
      known = new Map();
      this.views.set(cluster, known);
    }
    const key = JSON.stringify(view);
    const shared = known.get(key);
    if (shared) return shared;
    if (known.size > SPARE_VIEWS_PER_CLUSTER) this.dropUnheld(cluster, known);
    const entry = { view, signature: viewSignatureOf(view) };
    known.set(key, entry);
    return entry;
  }

  /** Lets go of the views no agent of the cluster holds any more (as its view or its last good one), oldest first, down to the spare ones. */
  private dropUnheld(cluster: string, known: Map<string, { view: ClusterView }>): void {
    const held = new Set<ClusterView>();
    for (const n of this.eachOf(cluster)) {
      if (n.view) held.add(n.view);
      if (n.lastGood) held.add(n.lastGood.view);
    }
    const unheld = [...known].filter(([, e]) => !held.has(e.view)).map(([key]) => key);
    for (const key of unheld.slice(0, -SPARE_VIEWS_PER_CLUSTER)) known.delete(key);
  }

  /** How many distinct views the cluster's agents share between them. */
  distinctViews(cluster: string): number {
    return this.views.get(cluster)?.size ?? 0;
  }

  nodeLive(cluster: string, node: string): NodeLive | undefined {
    return this.nodes.get(cluster)?.get(node);
  }

  ofCluster(cluster: string): NodeLive[] {
    return [...this.eachOf(cluster)];
  }

  /** The cluster's agents without a copy: not to be kept while the ledger changes. */
  eachOf(cluster: string): Iterable<NodeLive> {
    return this.nodes.get(cluster)?.values() ?? [];
  }

  markDirty(cluster: string): void {
    this.dirty.add(cluster);
  }

  /** Takes the set of clusters where a daemon stopped or started answering since the last call. */
  takeUrgent(): Set<string> {
    return drain(this.urgent);
  }

  /** Takes the set of clusters that changed since the last call. */
  takeDirty(): Set<string> {
    return drain(this.dirty);
  }

  forget(cluster: string, node?: string): void {
    if (node === undefined) {
      this.nodes.delete(cluster);
      this.views.delete(cluster);
      return;
    }
    this.nodes.get(cluster)?.delete(node);
    for (const n of this.nodes.get(cluster)?.values() ?? []) n.links.delete(node);
    this.dirty.add(cluster);
  }
}
