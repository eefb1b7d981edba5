import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ClusterStatusRecord } from "./status/cluster-status.js";

/** What the gauges read at scrape time: the clusters this coordinator owns, as it knows them now. */
export interface MetricsSource {
  clusters(): ClusterStatusRecord[];
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
      help: "Hosts of each cluster by what they were last told (member, wait, join, held...)",
      labelNames: ["cluster", "state"],
      registers,
      collect() {
        this.reset();
        for (const c of self.source?.clusters() ?? []) {
          const byState: Record<string, number> = {};
          for (const h of c.hosts) byState[h.assignment?.kind ?? "unknown"] = (byState[h.assignment?.kind ?? "unknown"] ?? 0) + 1;
          for (const [state, n] of Object.entries(byState)) this.set({ cluster: c.cluster, state }, n);
        }
      },
    });
    const perCluster = (name: string, help: string, pick: (c: ClusterStatusRecord) => number | null | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["cluster"],
        registers,
        collect() {
          this.reset();
          for (const c of self.source?.clusters() ?? []) {
            const v = pick(c);
            if (v !== null && v !== undefined) this.set({ cluster: c.cluster }, v);
          }
        },
      });
    perCluster("fleet_voters", "Database voters of each cluster", (c) => c.health.quorum?.voters);
    perCluster("fleet_voters_online", "Online database voters of each cluster", (c) => c.health.quorum?.onlineVoters);
    perCluster("fleet_failures_tolerated", "How many more voters each cluster can lose and keep quorum", (c) => c.health.quorum?.failuresTolerated);
    perCluster("fleet_cluster_healthy", "1 when the cluster is healthy, 0 otherwise", (c) => (c.health.status === "healthy" ? 1 : 0));
    perCluster("fleet_cluster_converged", "1 when the cluster matches its spec, 0 otherwise", (c) => (c.convergence.state === "converged" ? 1 : 0));
    perCluster("fleet_drift_objects", "Objects found differing from the spec (changed by hand or broken)", (c) => c.drifted.length);
    perCluster("fleet_plan_changes", "Changes still to make to reach the spec", (c) => c.changes.filter((x) => x.status === "next" || x.status === "pending").length);
    const perNode = (name: string, help: string, pick: (c: ClusterStatusRecord, h: ClusterStatusRecord["hosts"][number]) => number | null | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["cluster", "node"],
        registers,
        collect() {
          this.reset();
          for (const c of self.source?.clusters() ?? []) {
            for (const h of c.hosts) {
              const v = pick(c, h);
              if (v !== null && v !== undefined) this.set({ cluster: c.cluster, node: h.name }, v);
            }
          }
        },
      });
    perNode("fleet_heartbeat_age_seconds", "Seconds since each agent's last heartbeat", (_c, h) => (h.lastHeartbeatAt === null ? null : (Date.now() - h.lastHeartbeatAt) / 1000));
    perNode("fleet_clock_offset_ms", "Each agent's clock offset from the coordinator, in milliseconds", (_c, h) => h.clockOffsetMs);
    perNode("fleet_member_link_latency_max_ms", "Slowest TCP connect round trip from each member to its peers' cluster addresses, in milliseconds", (c, h) => c.health.worstLinkMs[h.name]);
    new Gauge({
      name: "fleet_link_latency_ms",
      help: "TCP connect round trip of each link flagged slow or down, in milliseconds (-1 when unreachable)",
      labelNames: ["cluster", "from", "to", "state"],
      registers,
      collect() {
        this.reset();
        for (const c of self.source?.clusters() ?? []) for (const l of c.health.links) this.set({ cluster: c.cluster, from: l.from, to: l.to, state: l.state }, l.rttMs ?? -1);
      },
    });
    perCluster("fleet_links_slow", "Links of each cluster flagged slow", (c) => c.health.links.filter((l) => l.state === "slow").length);
    perCluster("fleet_links_down", "Links of each cluster flagged down", (c) => c.health.links.filter((l) => l.state === "down").length);
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
