import test from "ava";
import { Writable } from "node:stream";
import { EventPublisher } from "../../coordinator/event-publisher.js";
import { FleetObserver } from "../../coordinator/fleet-observer.js";
import { createLogger, type ClusterView, type Heartbeat } from "../../shared/index.js";

const quiet = createLogger({ name: "t", level: "silent", destination: new Writable({ write: (_c, _e, d) => d() }) });
const names = ["a", "b", "c"];
const view = (statuses: Record<string, string> = {}): ClusterView => ({
  ok: true,
  members: names.map((n, i) => ({ name: n, status: statuses[n] ?? "Online", message: "", roles: i === 0 ? ["database-leader", "database"] : ["database"], url: `https://198.51.100.${i + 2}:8443`, failureDomain: "default", groups: ["default"], description: "" })),
});

function beat(node: string, at: number, extra: Partial<Heartbeat> = {}): Heartbeat {
  return {
    cluster: "c",
    node,
    instance: "00000000-0000-0000-0000-000000000000",
    seq: at,
    mac: "0".repeat(64),
    intervalMs: 1_000,
    incus: { observedAt: at, reachable: true, clustered: true, version: "6.0.4" },
    view: view(),
    pools: [],
    instances: { total: 0, running: 0 },
    latency: { natsMs: 1, peers: names.filter((n) => n !== node).map((p) => ({ node: p, address: `198.51.100.${names.indexOf(p) + 2}:8443`, rttMs: 0.3, at })) },
    clock: { offsetMs: 2, rttMs: 1 },
    ...extra,
  };
}

function setup() {
  const events = new EventPublisher(null, quiet);
  const seen: string[] = [];
  events.onEvent((e) => seen.push(`${e.kind}${e.node ? `:${e.node}` : ""}`));
  return { observer: new FleetObserver(events, { lostAfterIntervals: 3, latencyThresholdMs: 50, clockOffsetLimitMs: 500, splitGraceMs: 2_000, defaultIntervalMs: 1_000 }), seen };
}

test("a healthy cluster: quorum from the shared view, no reasons, no events", (t) => {
  const { observer, seen } = setup();
  for (const n of names) observer.ingest(beat(n, 1_000), 1_000);
  const h = observer.health("c", 1_000);
  t.is(h.status, "healthy");
  t.like(h.quorum, { voters: 3, onlineVoters: 3, failuresTolerated: 1 });
  t.deepEqual(h.reasons, []);
  t.deepEqual(seen.filter((e) => !e.startsWith("agent.returned")), []);
});

test("a silent agent is lost after three intervals, and comes back", (t) => {
  const { observer, seen } = setup();
  for (const n of names) observer.ingest(beat(n, 0), 0);
  observer.sweep(2_900);
  t.false(seen.includes("agent.lost:c"));
  for (const n of ["a", "b"]) observer.ingest(beat(n, 3_000), 3_000);
  observer.sweep(3_100);
  t.true(seen.includes("agent.lost:c"));
  t.true(observer.health("c", 3_100).reasons.some((r) => r.code === "agent-lost"));
  observer.ingest(beat("c", 3_200), 3_200);
  t.true(seen.includes("agent.returned:c"));
});

test("a daemon reported down counts offline at once, before Incus itself notices", (t) => {
  const { observer, seen } = setup();
  for (const n of names) observer.ingest(beat(n, 0), 0);
  observer.ingest(beat("b", 1_000, { incus: { observedAt: 1_000, reachable: false, clustered: false, error: "ECONNREFUSED" }, view: undefined }), 1_000);
  t.true(seen.includes("incus.lost:b"));
  const h = observer.health("c", 1_000);
  t.is(h.members?.find((m) => m.name === "b")?.effectiveStatus, "Offline");
  t.like(h.quorum, { onlineVoters: 2, failuresTolerated: 0 });
});

test("when no member can read the database, the last view and the agents' reports still show quorum lost", (t) => {
  const { observer } = setup();
  for (const n of names) observer.ingest(beat(n, 0), 0);
  const broken: ClusterView = { ok: false, error: "context deadline exceeded", members: [] };
  observer.ingest(beat("a", 1_000, { view: broken }), 1_000);
  for (const n of ["b", "c"]) observer.ingest(beat(n, 1_000, { incus: { observedAt: 1_000, reachable: false, clustered: false }, view: undefined }), 1_000);
  const h = observer.health("c", 1_000);
  t.is(h.status, "quorum-lost");
  t.like(h.quorum, { voters: 3, onlineVoters: 1, hasQuorum: false });
  t.true(h.hold.held);
  t.true(h.reasons.some((r) => r.code === "database-unavailable"));
  t.regex(h.guidance.join("\n"), /recover-from-quorum-loss/);
});

test("a cut link between two live members holds destructive actions after the grace period, and releases them after agreement", (t) => {
  const { observer, seen } = setup();
  for (const n of names) observer.ingest(beat(n, 0), 0);
  const cut = (at: number) => {
    observer.ingest(beat("a", at, { latency: { natsMs: 1, peers: [{ node: "c", address: "198.51.100.4:8443", rttMs: null, error: "timeout", at }, { node: "b", address: "198.51.100.3:8443", rttMs: 0.3, at }] } }), at);
    observer.ingest(beat("b", at), at);
    observer.ingest(beat("c", at), at);
  };
  cut(1_000);
  t.false(observer.health("c", 1_000).hold.held, "one probe is not yet a partition");
  cut(3_100);
  const held = observer.health("c", 3_100);
  t.true(held.hold.held);
  t.regex(held.hold.reasons.join(), /a cannot reach c though both are up/);
  t.true(seen.includes("link.down"));
  for (const n of names) observer.ingest(beat(n, 3_500), 3_500);
  t.true(observer.health("c", 3_500).hold.held, "held until views agree long enough");
  for (const n of names) observer.ingest(beat(n, 6_000), 6_000);
  t.false(observer.health("c", 6_000).hold.held);
  t.true(seen.includes("link.recovered"));
});

test("slow links, skewed clocks and mismatched versions are flagged once each, and cleared", (t) => {
  const { observer, seen } = setup();
  observer.ingest(beat("a", 0, { latency: { natsMs: 1, peers: [{ node: "b", address: "198.51.100.3:8443", rttMs: 80, at: 0 }] } }), 0);
  observer.ingest(beat("b", 0, { clock: { offsetMs: 1_500, rttMs: 1 }, incus: { observedAt: 0, reachable: true, clustered: true, version: "6.0.3" } }), 0);
  observer.ingest(beat("c", 0), 0);
  observer.health("c", 0);
  observer.health("c", 10);
  t.deepEqual(seen.filter((e) => ["link.slow", "clock.skewed", "version.mismatch"].includes(e)).sort(), ["clock.skewed", "link.slow", "version.mismatch"]);
  for (const n of names) observer.ingest(beat(n, 1_000), 1_000);
  observer.health("c", 1_000);
  t.true(seen.includes("link.recovered") && seen.includes("clock.recovered:b") && seen.includes("version.matched"), seen.join());
});
