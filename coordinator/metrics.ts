import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** What the gauges read at scrape time, so that heartbeats never touch the registry. */
export interface MetricsSource {
  clusters(): {
    name: string;
    membersByState: Record<string, number>;
    voters: number | null;
    votersOnline: number | null;
    failuresTolerated: number | null;
    nodes: { node: string; heartbeatAgeSeconds: number | null; clockOffsetMs: number | null; worstLinkMs: number | null }[];
    /** Only the links that are slow or down: all of them would be members squared series. */
    flaggedLinks: { from: string; to: string; rttMs: number | null; state: string }[];
    slowLinks: number;
    downLinks: number;
  }[];
}

/** The coordinator's Prometheus metrics, on a registry of its own. */
export class Metrics {
  readonly registry = new Registry();
  readonly events: Counter<"kind">;
  readonly natsMessages: Counter<"endpoint" | "result">;
  readonly natsDuration: Histogram<"endpoint">;
  readonly httpRequests: Counter<"method" | "route" | "status">;
  readonly httpDuration: Histogram<"method" | "route">;
  private source: MetricsSource | null = null;
  private heartbeatBacklog: () => number = () => 0;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "fleet_coordinator_" });
    const registers = [this.registry];
    this.events = new Counter({ name: "fleet_events_total", help: "Fleet events published, by kind", labelNames: ["kind"], registers });
    this.natsMessages = new Counter({
      name: "fleet_nats_messages_total",
      help: "NATS messages received by the coordinator, by endpoint and result (ok, invalid, unauthenticated, error, overload)",
      labelNames: ["endpoint", "result"],
      registers,
    });
    this.natsDuration = new Histogram({
      name: "fleet_nats_request_duration_seconds",
      help: "Time to answer a NATS request, by endpoint",
      labelNames: ["endpoint"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.httpRequests = new Counter({ name: "fleet_http_requests_total", help: "HTTP requests, by method, route and status", labelNames: ["method", "route", "status"], registers });
    this.httpDuration = new Histogram({
      name: "fleet_http_request_duration_seconds",
      help: "HTTP request duration, by method and route",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    const self = this;
    new Gauge({
      name: "fleet_heartbeat_backlog",
      help: "Heartbeats received and not yet processed",
      registers,
      collect() {
        this.set(self.heartbeatBacklog());
      },
    });
    new Gauge({
      name: "fleet_members",
      help: "Members of each cluster by state",
      labelNames: ["cluster", "state"],
      registers,
      collect() {
        this.reset();
        for (const c of self.source?.clusters() ?? []) for (const [state, n] of Object.entries(c.membersByState)) this.set({ cluster: c.name, state }, n);
      },
    });
    const perCluster = (name: string, help: string, pick: (c: ReturnType<MetricsSource["clusters"]>[number]) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ["cluster"],
        registers,
        collect() {
          this.reset();
          for (const c of self.source?.clusters() ?? []) {
            const v = pick(c);
            if (v !== null) this.set({ cluster: c.name }, v);
          }
        },
      });
    perCluster("fleet_voters", "Database voters of each cluster", (c) => c.voters);
    perCluster("fleet_voters_online", "Online database voters of each cluster", (c) => c.votersOnline);
    perCluster("fleet_failures_tolerated", "How many more voters each cluster can lose and keep quorum", (c) => c.failuresTolerated);
    new Gauge({
      name: "fleet_heartbeat_age_seconds",
      help: "Seconds since each agent's last heartbeat",
      labelNames: ["cluster", "node"],
      registers,
      collect() {
        this.reset();
        for (const c of self.source?.clusters() ?? []) for (const n of c.nodes) if (n.heartbeatAgeSeconds !== null) this.set({ cluster: c.name, node: n.node }, n.heartbeatAgeSeconds);
      },
    });
    new Gauge({
      name: "fleet_clock_offset_ms",
      help: "Each agent's clock offset from the coordinator, in milliseconds",
      labelNames: ["cluster", "node"],
      registers,
      collect() {
        this.reset();
        for (const c of self.source?.clusters() ?? []) for (const n of c.nodes) if (n.clockOffsetMs !== null) this.set({ cluster: c.name, node: n.node }, n.clockOffsetMs);
      },
    });
    new Gauge({
      name: "fleet_member_link_latency_max_ms",
      help: "Slowest TCP connect round trip from each member to its peers' cluster addresses, in milliseconds",
      labelNames: ["cluster", "node"],
      registers,
      collect() {
        this.reset();
        for (const c of self.source?.clusters() ?? []) for (const n of c.nodes) if (n.worstLinkMs !== null) this.set({ cluster: c.name, node: n.node }, n.worstLinkMs);
      },
    });
    new Gauge({
      name: "fleet_link_latency_ms",
      help: "TCP connect round trip of each link flagged slow or down, in milliseconds (-1 when unreachable)",
      labelNames: ["cluster", "from", "to", "state"],
      registers,
      collect() {
        this.reset();
        for (const c of self.source?.clusters() ?? []) for (const l of c.flaggedLinks) this.set({ cluster: c.name, from: l.from, to: l.to, state: l.state }, l.rttMs ?? -1);
      },
    });
    perCluster("fleet_links_slow", "Links of each cluster over the latency threshold", (c) => c.slowLinks);
    perCluster("fleet_links_down", "Links of each cluster whose probes fail", (c) => c.downLinks);
  }

  watchHeartbeatBacklog(read: () => number): void {
    this.heartbeatBacklog = read;
  }

  heartbeatBacklogNow(): number {
    return this.heartbeatBacklog();
  }

  attach(source: MetricsSource): void {
    this.source = source;
  }
}
