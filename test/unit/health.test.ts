import test from "ava";
import type { ClusterView, Heartbeat } from "../../shared/index.js";
import { evaluateHealth, type HealthInput } from "../../coordinator/health/evaluate-health.js";
import { HeartbeatLedger } from "../../coordinator/health/heartbeat-ledger.js";
import { HealthMonitor } from "../../coordinator/health/health-monitor.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { facts, healthOf } from "../helpers/situations.js";
import { DEFAULT_HEALTH_OPTIONS, EMPTY_TRACK, type HealthTrack } from "../../coordinator/health/health-types.js";

const names = ["a", "b", "c"];
const view = (statuses: Record<string, string> = {}, members = names): ClusterView => ({
  ok: true,
  members: members.map((n, i) => ({ name: n, status: statuses[n] ?? "Online", message: "", roles: i === 0 ? ["database-leader", "database"] : i < 3 ? ["database"] : [], url: `https://198.51.100.${i + 2}:8443`, failureDomain: "default", groups: ["default"], description: "" })),
});

function beat(node: string, at: number, extra: Partial<Heartbeat> = {}, rtt: Record<string, number | null> = {}): Heartbeat {
  return {
    cluster: "c",
    node,
    instance: "00000000-0000-0000-0000-000000000000",
    seq: at,
    sentAt: at,
    intervalMs: 1_000,
    incus: { observedAt: at, reachable: true, clustered: true, version: "6.0.4" },
    view: view(),
    pools: [],
    instances: { total: 0, running: 0 },
    latency: { natsMs: 1, peers: names.filter((n) => n !== node).map((p) => ({ node: p, address: `198.51.100.${names.indexOf(p) + 2}:8443`, rttMs: p in rtt ? rtt[p]! : 0.3, at })) },
    clock: { offsetMs: 2, rttMs: 1 },
    ...extra,
  };
}

/** Feeds heartbeats second by second and evaluates after each, carrying the track, like the health monitor does. */
class Timeline {
  readonly ledger = new HeartbeatLedger(1_000);
  track: HealthTrack = EMPTY_TRACK;
  readonly events: string[] = [];
  last: ReturnType<typeof evaluateHealth>["snapshot"] | null = null;
  input: Partial<HealthInput> = {};

  feed(at: number, beats: Heartbeat[]): this {
    for (const b of beats) this.ledger.record(b, at);
    return this.evaluate(at);
  }

  evaluate(at: number): this {
    const r = evaluateHealth({ cluster: "c", nodes: this.ledger.ofCluster("c"), expected: new Map(), forming: false, upgrading: false, now: at, ...this.input }, DEFAULT_HEALTH_OPTIONS, this.track);
    this.track = r.track;
    this.last = r.snapshot;
    this.events.push(...r.events.map((e) => `${e.kind}${e.node ? `:${e.node}` : ""}`));
    return this;
  }
}

test("a healthy cluster: quorum from the shared view, no reasons, no events", (t) => {
  const tl = new Timeline().feed(1_000, names.map((n) => beat(n, 1_000)));
  t.is(tl.last!.status, "healthy");
  t.like(tl.last!.quorum, { voters: 3, onlineVoters: 3, failuresTolerated: 1 });
  t.deepEqual(tl.events, []);
});

test("one slow probe is a blip; three in a row flag the link, three fine ones clear it", (t) => {
  const tl = new Timeline();
  const at = (s: number) => s * 1_000;
  tl.feed(at(1), names.map((n) => beat(n, at(1), {}, n === "a" ? { b: 80 } : {})));
  t.deepEqual(tl.events, [], "a single slow probe raises nothing");
  t.is(tl.last!.status, "healthy");
  for (const s of [2, 3]) tl.feed(at(s), names.map((n) => beat(n, at(s), {}, n === "a" ? { b: 80 } : {})));
  t.deepEqual(tl.events, ["link.slow", "cluster.degraded"]);
  t.is(tl.last!.status, "degraded");
  t.like(tl.last!.links[0], { from: "a", to: "b", state: "slow" });
  tl.feed(at(4), names.map((n) => beat(n, at(4))));
  t.is(tl.last!.status, "degraded", "one good probe does not clear it either");
  for (const s of [5, 6]) tl.feed(at(s), names.map((n) => beat(n, at(s))));
  t.deepEqual(tl.events, ["link.slow", "cluster.degraded", "link.recovered", "cluster.recovered"]);
  t.is(tl.last!.status, "healthy");
});

test("a silent agent is lost after three intervals, once; its return is told once", (t) => {
  const tl = new Timeline().feed(0, names.map((n) => beat(n, 0)));
  tl.feed(2_900, ["a", "b"].map((n) => beat(n, 2_900)));
  t.false(tl.events.includes("agent.lost:c"));
  tl.feed(3_100, ["a", "b"].map((n) => beat(n, 3_100)));
  tl.evaluate(3_300);
  t.is(tl.events.filter((e) => e === "agent.lost:c").length, 1);
  tl.feed(3_500, names.map((n) => beat(n, 3_500)));
  t.true(tl.events.includes("agent.returned:c"));
});

test("what incus-fleet itself is doing is maintenance, not degradation: no alarm for a joining or restarting member", (t) => {
  const tl = new Timeline();
  tl.input = { expected: new Map([["c", "rollout: host-action"]]) };
  tl.feed(0, names.map((n) => beat(n, 0)));
  tl.feed(1_000, [beat("a", 1_000), beat("b", 1_000), beat("c", 1_000, { incus: { observedAt: 1_000, reachable: false, clustered: false, error: "restarting" } })]);
  t.is(tl.last!.status, "maintenance");
  t.false(tl.events.some((e) => e.startsWith("incus.lost") || e.startsWith("cluster.degraded")));
  t.true(tl.last!.reasons.every((r) => r.expected), JSON.stringify(tl.last!.reasons));
});

test("views that disagree about a joining member are not a split", (t) => {
  const four = [...names, "d"];
  const tl = new Timeline();
  tl.input = { expected: new Map([["d", "joining the cluster"]]) };
  for (let s = 0; s <= 10; s++) {
    tl.feed(s * 1_000, names.map((n) => beat(n, s * 1_000, { view: n === "a" ? view({}, four) : view({ d: "Offline" }, four) })));
  }
  t.false(tl.last!.hold.held);
  t.false(tl.events.includes("cluster.degraded"));
});

test("a real split holds destructive actions after the grace, and releases them after agreement lasts as long", (t) => {
  const tl = new Timeline();
  const split = (s: number) => names.map((n) => beat(n, s * 1_000, { view: n === "a" ? view({ c: "Offline" }) : view() }));
  for (let s = 0; s < 4; s++) tl.feed(s * 1_000, split(s));
  t.false(tl.last!.hold.held, "not before the grace");
  for (let s = 4; s < 6; s++) tl.feed(s * 1_000, split(s));
  t.true(tl.last!.hold.held);
  t.true(
    tl.last!.reasons.some((r) => r.code === "split-view" && r.message === "agents disagree whether c is online (online for b, c, offline for a)"),
    "the agents on each side are named, those sharing a view together",
  );
  tl.feed(6_000, names.map((n) => beat(n, 6_000)));
  t.true(tl.last!.hold.held, "still held until agreement lasts");
  for (let s = 7; s <= 11; s++) tl.feed(s * 1_000, names.map((n) => beat(n, s * 1_000)));
  t.false(tl.last!.hold.held);
});

test("a split names the agents on each side in their own order, whichever views they share", (t) => {
  const four = [...names, "d"];
  const tl = new Timeline();
  // a and c share one view; b's differs from it only in a message, so it is a view of its own that also has c online.
  const shared = view({}, four);
  const own = { ...shared, members: shared.members.map((m) => (m.name === "b" ? { ...m, message: "Fully operational" } : m)) };
  const views: Record<string, ClusterView> = { a: shared, b: own, c: shared, d: view({ c: "Offline" }, four) };
  tl.feed(1_000, four.map((n) => beat(n, 1_000, { view: views[n]! })));
  t.true(tl.last!.reasons.some((r) => r.message === "agents disagree whether c is online (online for a, b, c, offline for d)"), JSON.stringify(tl.last!.reasons));
});

test("a cluster that tolerates no further failure is never healthy", (t) => {
  const two = ["a", "b"];
  const tl = new Timeline().feed(0, two.map((n) => beat(n, 0, { view: view({}, two), latency: { natsMs: 1, peers: [] } })));
  t.is(tl.last!.quorum?.failuresTolerated, 0);
  t.is(tl.last!.status, "degraded");
  t.is(tl.last!.reasons[0]?.code, "no-redundancy");
  tl.input = { forming: true };
  t.is(tl.evaluate(500).last!.status, "forming", "while members are still joining, that is expected");
});

test("an evacuated member is maintenance, not healthy", (t) => {
  const tl = new Timeline().feed(0, names.map((n) => beat(n, 0, { view: view({ c: "Evacuated" }) })));
  t.is(tl.last!.status, "maintenance");
  t.true(tl.last!.reasons.some((r) => r.code === "member-evacuated"));
});

test("a coordinator taking over with the track of the last one repeats no event", (t) => {
  const first = new Timeline();
  for (let s = 0; s < 3; s++) first.feed(s * 1_000, names.map((n) => beat(n, s * 1_000, {}, n === "a" ? { b: 80 } : {})));
  t.true(first.events.includes("link.slow"));
  const second = new Timeline();
  second.track = first.track;
  for (let s = 3; s < 6; s++) second.feed(s * 1_000, names.map((n) => beat(n, s * 1_000, {}, n === "a" ? { b: 80 } : {})));
  t.deepEqual(second.events, [], "the slow link and the degraded cluster were told already");
  t.is(second.last!.status, "degraded");
});

test("a clock off for one measurement is not flagged; off for a while it is", (t) => {
  const tl = new Timeline();
  const off = (s: number) => names.map((n) => beat(n, s * 1_000, { clock: { offsetMs: n === "c" ? 2_000 : 2, rttMs: 1 } }));
  for (let s = 0; s < 10; s++) tl.feed(s * 1_000, off(s));
  t.false(tl.events.includes("clock.skewed:c"));
  for (let s = 10; s < 17; s++) tl.feed(s * 1_000, off(s));
  t.true(tl.events.includes("clock.skewed:c"));
});

test("a coordinator taking a cluster over shows the last owner's health until its own agents' views arrive, then its own", async (t) => {
  const ledger = new HeartbeatLedger(1_000);
  const clock = new FakeClock();
  const monitor = new HealthMonitor(ledger, DEFAULT_HEALTH_OPTIONS, { relevant: () => true, expected: () => new Map(), forming: () => false, upgrading: () => false }, { publish: () => undefined }, () => undefined, clock);
  const last = healthOf([{ name: "node1" }, { name: "node2" }, { name: "node3" }]);
  monitor.own("c", null, last);
  ledger.touch("c", "node1", clock.now());
  t.is(monitor.evaluate("c"), last, "no view yet: the last owner's picture stands");
  t.is(monitor.snapshot("c")?.members?.length, 3);
  await clock.advance(16_000);
  t.not(monitor.evaluate("c"), last, "not for ever: after a while this coordinator says what it knows");
});

test("a pull that brings the same Incus state is no news for health; a changed daemon is", (t) => {
  const ledger = new HeartbeatLedger(1_000);
  const at = (observedAt: number, reachable = true) => ({ ...facts(true, ["a", "b"], "198.51.100.2:8443"), incus: { observedAt, reachable, version: "6.0.4", clustered: true, members: ["a", "b"] } });
  ledger.recordFacts("c", "a", at(1), 1);
  t.deepEqual([...ledger.takeDirty()], ["c"], "a host seen for the first time");
  ledger.recordFacts("c", "a", at(2), 2);
  ledger.recordFacts("c", "a", { ...at(3), address: "198.51.100.9:8443" }, 3);
  t.deepEqual([...ledger.takeDirty()], [], "the same daemon, pulled again");
  ledger.recordFacts("c", "a", at(4, false), 4);
  t.deepEqual([...ledger.takeDirty()], ["c"], "its daemon stopped answering");
});

test("a daemon that stops answering is evaluated at once, without waiting out the gap between evaluations", async (t) => {
  const ledger = new HeartbeatLedger(1_000);
  const clock = new FakeClock();
  const published: string[] = [];
  const monitor = new HealthMonitor(ledger, DEFAULT_HEALTH_OPTIONS, { relevant: () => true, expected: () => new Map(), forming: () => false, upgrading: () => false }, { publish: (_c, e) => void published.push(e.kind) }, () => undefined, clock);
  monitor.own("c", null, null);
  for (const n of names) ledger.record(beat(n, clock.now()), clock.now());
  await clock.advance(2_000);
  monitor.sweep();
  t.false(published.includes("incus.lost"));
  // Right after that evaluation, c's agent says its daemon is gone.
  const at = clock.now();
  ledger.record(beat("c", at, { incus: { observedAt: at, reachable: false, clustered: true, version: "6.0.4", error: "ECONNREFUSED" } }), at);
  monitor.sweep();
  t.true(published.includes("incus.lost"), published.join(", "));
});

test("an agent falling silent, and coming back, is evaluated at the next sweep, not at the next full one", async (t) => {
  const ledger = new HeartbeatLedger(1_000);
  const clock = new FakeClock();
  const published: string[] = [];
  const monitor = new HealthMonitor(ledger, DEFAULT_HEALTH_OPTIONS, { relevant: () => true, expected: () => new Map(), forming: () => false, upgrading: () => false }, { publish: (_c, e) => void published.push(`${e.kind}:${e.node}`) }, () => undefined, clock);
  monitor.own("c", null, null);
  const beatAt = (nodes: string[]) => {
    for (const n of nodes) ledger.record(beat(n, clock.now()), clock.now());
    monitor.sweep();
  };
  beatAt(names);
  for (let s = 1; s <= 3; s++) {
    await clock.advance(1_000);
    beatAt(["a", "b"]);
  }
  t.false(published.includes("agent.lost:c"), "three intervals are not past yet");
  await clock.advance(100);
  beatAt(["a", "b"]);
  t.true(published.includes("agent.lost:c"), "lost at the first sweep past three intervals, though a full sweep ran 100 ms ago");
  await clock.advance(100);
  beatAt(names);
  t.true(published.includes("agent.returned:c"), "and back at the first sweep after it spoke");
});

test("agents reporting the same view share one copy; views no agent holds any more are let go, and one still held is kept", (t) => {
  const ledger = new HeartbeatLedger(1_000);
  // A cluster growing one member at a time makes a new view with each join.
  const grown = (size: number) => view({}, Array.from({ length: size }, (_, i) => `m${i}`));
  let at = 1;
  for (let size = 1; size <= 12; size++) for (const n of names) ledger.record(beat(n, at++, { view: grown(size) }), at);
  t.true(ledger.nodeLive("c", "a")!.view === ledger.nodeLive("c", "b")!.view, "equal views are one object");
  // The one held, the one held before the last change, and at most two spare.
  t.true(ledger.distinctViews("c") <= 4, `${ledger.distinctViews("c")} views kept`);

  // One agent lags behind on an old view while the others move on through many more.
  ledger.record(beat("c", at++, { view: grown(3) }), at);
  const lagging = ledger.nodeLive("c", "c")!.view;
  for (let size = 13; size <= 20; size++) for (const n of ["a", "b"]) ledger.record(beat(n, at++, { view: grown(size) }), at);
  ledger.record(beat("b", at++, { view: grown(3) }), at);
  t.true(ledger.nodeLive("c", "b")!.view === lagging, "the view still held is still shared");
  t.true(ledger.distinctViews("c") <= 5, `${ledger.distinctViews("c")} views kept`);
});
