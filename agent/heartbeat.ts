import type { ClusterView, Heartbeat, IncusFacts, PeerLatency, PoolState } from "../shared/index.js";
import type { IncusClient } from "./incus-client.js";
import { readIncusFacts } from "./node-facts.js";
import type { Probe } from "./tcp-probe.js";

type HeartbeatBody = Omit<Heartbeat, "cluster" | "node" | "instance" | "seq" | "sentAt">;

export interface HeartbeatOptions {
  intervalMs: number;
  peersPerRound: number;
  probeTimeoutMs: number;
  /** How long a view or pool query may take before the member counts as cut off from its database. */
  viewTimeoutMs: number;
  /** Read the member list every this many beats. */
  viewEvery: number;
}

/**
 * The peers probed this round: at most `perRound`, starting at `cursor`, so
 * that every peer is probed once every ceil(peers / perRound) rounds.
 */
export function probeRound<T>(peers: readonly T[], cursor: number, perRound: number): { round: T[]; next: number } {
  if (peers.length === 0) return { round: [], next: 0 };
  const count = Math.min(perRound, peers.length);
  const start = cursor % peers.length;
  return { round: Array.from({ length: count }, (_, i) => peers[(start + i) % peers.length]!), next: (start + count) % peers.length };
}

/**
 * A view that has not changed is sent again this often anyway, in case the
 * beat that carried it was lost. A coordinator that starts answering the
 * cluster nudges its agents, and each sends its view on the next beat.
 */
const VIEW_RESEND_BEATS = 30;

/** `https://192.0.2.12:8443` → `192.0.2.12:8443`. */
function hostPortOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/**
 * Gathers what one heartbeat says. Latency probes rotate through the peers a
 * few at a time, so a member of a 50-member cluster pays for a handful of
 * TCP connects per beat, and the whole matrix refreshes every few beats.
 */
export class HeartbeatCollector {
  private cursor = 0;
  /** The last good view: its members are the peers probed, even while the database cannot be read. */
  private lastView: ClusterView | null = null;
  /** The view read last, while it is good: reused for a few beats. */
  private reusableView: ClusterView | null = null;
  /** The view read last and its JSON: a read that says the same keeps this object, so that later beats compare views by reference. */
  private lastRead: { view: ClusterView; json: string } | null = null;
  private lastSentView: ClusterView | null = null;
  /** The peers of the last good view, worked out when that view changes rather than on every beat. */
  private peers: { view: ClusterView; me: string; list: { node: string; address: string }[] } | null = null;
  private slow: [PoolState[], { total: number; running: number }] | null = null;
  private poolSpace = new Map<string, { usedBytes: number; totalBytes: number }>();
  private beats = 0;

  constructor(
    private readonly incus: IncusClient,
    private readonly probe: Probe,
    private readonly ownName: () => string,
    private readonly options: HeartbeatOptions,
  ) {}

  /** The next beat carries the view, changed or not: a coordinator has just started answering, or this agent enrolled again. */
  resendView(): void {
    this.lastSentView = null;
  }

  /** The member's own view of its cluster, or undefined when it is not clustered (or Incus is down). */
  private async view(): Promise<ClusterView | undefined> {
    try {
      const members = await this.incus.members({ timeoutMs: this.options.viewTimeoutMs });
      return {
        ok: true,
        members: members.map((m) => ({
          name: m.server_name,
          status: m.status,
          message: m.message,
          roles: m.roles ?? [],
          url: m.url,
          failureDomain: m.failure_domain,
          groups: m.groups ?? [],
          description: m.description,
        })),
      };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/not clustered|cannot reach Incus/.test(message)) return undefined;
      return { ok: false, error: message, members: [] };
    }
  }

  private async pools(facts: IncusFacts): Promise<PoolState[]> {
    if (!facts.reachable) return [];
    try {
      const pools = await this.incus.storagePools();
      // Space needs one call per pool; refreshing it every fiftieth beat keeps the beat cheap.
      if (this.beats % 50 === 1) {
        await Promise.all(
          pools.map(async (p) => {
            try {
              const r = await this.incus.poolResources(p.name);
              this.poolSpace.set(p.name, { usedBytes: r.space.used, totalBytes: r.space.total });
            } catch {
              this.poolSpace.delete(p.name);
            }
          }),
        );
      }
      return pools.map((p) => ({ name: p.name, driver: p.driver, status: p.status, ...(this.poolSpace.get(p.name) ?? {}) }));
    } catch {
      return [];
    }
  }

  private async instances(facts: IncusFacts): Promise<{ total: number; running: number }> {
    if (!facts.reachable) return { total: 0, running: 0 };
    try {
      const me = this.ownName();
      const mine = (await this.incus.instances({ timeoutMs: this.options.viewTimeoutMs })).filter((i) => !facts.clustered || i.location === me);
      return { total: mine.length, running: mine.filter((i) => i.status === "Running").length };
    } catch {
      return { total: 0, running: 0 };
    }
  }

  private peersOf(view: ClusterView | null): { node: string; address: string }[] {
    if (!view) return [];
    const me = this.ownName();
    if (this.peers?.view !== view || this.peers.me !== me) {
      this.peers = { view, me, list: view.members.filter((m) => m.name !== me).map((m) => ({ node: m.name, address: hostPortOf(m.url) })) };
    }
    return this.peers.list;
  }

  /** A view just read, or the one read before when it says the same. */
  private settled(view: ClusterView | undefined): ClusterView | undefined {
    if (!view) return view;
    const json = JSON.stringify(view);
    if (this.lastRead?.json === json) return this.lastRead.view;
    this.lastRead = { view, json };
    return view;
  }

  private async probePeers(view: ClusterView | null): Promise<PeerLatency[]> {
    const peers = this.peersOf(view);
    const { round, next } = probeRound(peers, this.cursor, this.options.peersPerRound);
    this.cursor = next;
    return Promise.all(
      round.map(async (peer) => {
        const r = await this.probe(peer.address, 1, this.options.probeTimeoutMs);
        return { node: peer.node, address: peer.address, rttMs: r.rttMs, ...(r.error ? { error: r.error } : {}) };
      }),
    );
  }

  /**
   * One heartbeat. Its parts run side by side, each bounded, so a hung
   * daemon or a cut peer delays nothing else: the beat keeps its schedule and
   * carries what was learned in time. Probes go to the peers of the last view.
   * The view itself is sent when it changed, when asked, and every so often anyway.
   */
  async collect(natsRtt: () => Promise<number | null>, clock: { offsetMs: number | null; rttMs: number | null }): Promise<HeartbeatBody> {
    this.beats += 1;
    const reuse = this.reusableView && this.beats % this.options.viewEvery !== 0;
    const [incus, read, peers, natsMs] = await Promise.all([
      readIncusFacts(this.incus, this.options.viewTimeoutMs, { members: false }),
      // A good view is reused for a few beats; a failing or missing one is read again at once.
      reuse ? Promise.resolve(this.reusableView!) : this.view(),
      this.probePeers(this.lastView),
      natsRtt(),
    ]);
    const view = reuse ? read : this.settled(read);
    // Pools and instances change slowly and cost database reads on every member: every fifth beat is enough.
    if (this.beats % 5 === 1 || !this.slow) this.slow = await Promise.all([this.pools(incus), this.instances(incus)]);
    const [pools, instances] = this.slow;
    // The member list travels in the view; heartbeats do not repeat it in the facts.
    if (view?.ok) this.lastView = view;
    this.reusableView = view?.ok ? view : null;
    const sendView = !!view && (view !== this.lastSentView || this.beats % VIEW_RESEND_BEATS === 0);
    this.lastSentView = view ?? null;
    return {
      intervalMs: this.options.intervalMs,
      incus,
      ...(sendView && incus.clustered ? { view } : {}),
      pools,
      instances,
      latency: { natsMs, peers },
      clock,
    };
  }
}
