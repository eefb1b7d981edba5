import test from "ava";
import WebSocket from "ws";
import parsePrometheus from "parse-prometheus-text-format";
import { CoordinatorLink } from "../../agent/coordinator-link.js";
import { jetstream } from "@nats-io/jetstream";
import { deriveClusterKeys, Subject, type FleetEvent, type NodeFacts } from "../../shared/index.js";
import { connectAsCoordinator, connectAsHost, coordinatorPublicKey, getJson, putSpec, startCoordinator, threeMembers, type CoordinatorHarness } from "../helpers/coordinator.js";
import { until } from "../helpers/wait.js";

const facts = (address: string): NodeFacts => ({ address, agentVersion: "t", fingerprint: "a".repeat(64), incus: { observedAt: Date.now(), reachable: true, version: "6.0.4", clustered: false } });

const twoClusters = `${threeMembers("c1")}${threeMembers("c2", "another-password").replace("clusters:\n", "").replace(/192\.0\.2\.1/g, "192.0.2.2")}`;

function collect(url: string, protocols: string[], origin?: string): { events: FleetEvent[]; opened: Promise<void>; refused: Promise<number>; close: () => void } {
  const ws = new WebSocket(url, protocols, origin ? { origin } : {});
  const events: FleetEvent[] = [];
  ws.on("message", (d) => events.push(JSON.parse(d.toString()) as FleetEvent));
  ws.on("error", () => undefined);
  return {
    events,
    opened: new Promise((resolve) => ws.once("open", () => resolve())),
    refused: new Promise((resolve) => ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))),
    close: () => ws.close(),
  };
}

async function enrollN1(t: Parameters<typeof connectAsHost>[0], h: CoordinatorHarness): Promise<void> {
  await until("the coordinator to own c1", () => h.coordinator.leases.owns("c1"), 10_000);
  const nc = await connectAsHost(t, h.nats, "c1", "n1");
  await new CoordinatorLink(nc, deriveClusterKeys("c1", "integration-password"), coordinatorPublicKey(h.nats), "c1", "n1", 5_000).enroll(facts("192.0.2.11:8443"));
}

const wsBase = (h: CoordinatorHarness) => h.coordinator.url.replace("http", "ws");

test("the WebSocket streams fleet events in order, filtered by cluster, to a client holding the token", async (t) => {
  const h = await startCoordinator(t);
  const protocols = ["incus-fleet-events", `bearer.${h.token}`];
  const all = collect(`${wsBase(h)}/v1/events/stream`, protocols);
  const onlyC2 = collect(`${wsBase(h)}/v1/events/stream?cluster=c2`, protocols);
  t.teardown(() => {
    all.close();
    onlyC2.close();
  });
  await Promise.all([all.opened, onlyC2.opened]);
  const applied = await putSpec(h, twoClusters);
  t.is(applied.status, 200, JSON.stringify(applied.body));
  await enrollN1(t, h);
  await until("the enrollment and the claim streamed", () => all.events.some((e) => e.kind === "bootstrap.claimed"), 10_000);
  const c1 = all.events.filter((e) => e.cluster === "c1").map((e) => e.kind);
  t.deepEqual(c1.filter((k) => ["spec.applied", "node.enrolled", "identity.pinned", "bootstrap.claimed"].includes(k)), ["spec.applied", "identity.pinned", "node.enrolled", "bootstrap.claimed"]);
  t.deepEqual(all.events.map((e) => e.seq), [...all.events.map((e) => e.seq)].sort((a, b) => a - b), "in stream order");
  t.true(onlyC2.events.length > 0 && onlyC2.events.every((e) => e.cluster === "c2"));
  t.true(all.events.every((e) => !JSON.stringify(e).includes("password")), "no password in any event");
});

test("the event stream refuses a client without the token and a page from a foreign origin", async (t) => {
  const h = await startCoordinator(t);
  const url = `${wsBase(h)}/v1/events/stream`;
  t.is(await collect(url, ["incus-fleet-events"]).refused, 401, "no token");
  t.is(await collect(url, ["incus-fleet-events", "bearer.wrong"]).refused, 401, "a wrong token");
  t.is(await collect(url, ["incus-fleet-events", `bearer.${h.token}`], "http://evil.example").refused, 401, "the right token from a page the API did not serve");
  const own = collect(url, ["incus-fleet-events", `bearer.${h.token}`], h.coordinator.url);
  t.teardown(() => own.close());
  await own.opened;
  t.pass("the API's own page is let in");
});

test("events are persisted: a restarted coordinator lists the same history, and a client resumes after the last seq it saw", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, twoClusters);
  await enrollN1(t, h);
  const before = await until("the claim listed", async () => {
    const r = await getJson<FleetEvent[]>(h, "/v1/events?limit=500");
    return r.body.some((e) => e.kind === "bootstrap.claimed") ? r.body : null;
  });
  await h.restart();
  const after = (await getJson<FleetEvent[]>(h, "/v1/events?limit=500")).body;
  t.deepEqual(
    after.slice(0, before.length).map((e) => e.id),
    before.map((e) => e.id),
    "the same events, in the same order, each once",
  );
  const pivot = before[1]!.seq;
  const resumed = (await getJson<FleetEvent[]>(h, `/v1/events?after=${pivot}&limit=500`)).body;
  t.deepEqual(resumed.map((e) => e.seq), after.filter((e) => e.seq > pivot).map((e) => e.seq));
  const c2 = (await h.coordinator.events.read({ seq: 1 }, { cluster: "c2", limit: 50 })).map((e) => e.cluster);
  t.true(c2.length > 0 && c2.every((c) => c === "c2"), "reading the stream itself filters by cluster");
  const bad = await getJson<{ error: { code: string; message: string } }>(h, "/v1/events?since=yesterday");
  t.is(bad.status, 400);
  t.regex(bad.body.error.message, /since/);
});

test("two coordinators on one bus show the same history, each event once", async (t) => {
  const one = await startCoordinator(t);
  const two = await startCoordinator(t, {}, one.nats, 2);
  await putSpec(one, twoClusters);
  const owner = await until("one of them owns c1", () => (one.coordinator.leases.owns("c1") ? one : two.coordinator.leases.owns("c1") ? two : null), 15_000);
  await enrollN1(t, owner);
  const lists = await until("both list the claim", async () => {
    const [a, b] = await Promise.all([one, two].map(async (h) => (await getJson<FleetEvent[]>(h, "/v1/events?limit=500")).body));
    return a!.some((e) => e.kind === "bootstrap.claimed") && b!.some((e) => e.kind === "bootstrap.claimed") ? [a!, b!] : null;
  });
  const [a, b] = lists as [FleetEvent[], FleetEvent[]];
  const common = Math.min(a.length, b.length);
  t.deepEqual(a.slice(0, common).map((e) => e.id), b.slice(0, common).map((e) => e.id));
  t.is(new Set(a.map((e) => e.id)).size, a.length, "no event twice");
  t.is(a.filter((e) => e.kind === "spec.applied" && e.cluster === "c1").length, 1, "one spec, one event");
});

test("an event that reaches the stream twice, as a publish retried past its duplicate check can, is served once", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const applied = await until("the spec's event", async () => (await getJson<FleetEvent[]>(h, "/v1/events?limit=100")).body.find((e) => e.kind === "spec.applied"), 15_000, 50);
  const js = jetstream(await connectAsCoordinator(t, h.nats));
  const { seq: _seq, ...event } = applied;
  // Without a message id the stream keeps both copies; a later event shows the follower has read past them.
  await js.publish(Subject.event(event.cluster, event.kind), new TextEncoder().encode(JSON.stringify(event)));
  const marker = { ...event, id: "marker-after-the-copy" };
  await js.publish(Subject.event(event.cluster, event.kind), new TextEncoder().encode(JSON.stringify(marker)));
  const listed = await until("the marker listed", async () => {
    const events = (await getJson<FleetEvent[]>(h, "/v1/events?limit=100")).body;
    return events.some((e) => e.id === marker.id) ? events : null;
  }, 15_000, 50);
  t.is(listed.filter((e) => e.id === applied.id).length, 1);
  const history = (await getJson<FleetEvent[]>(h, "/v1/events?after=0&limit=100")).body;
  t.is(history.filter((e) => e.id === applied.id).length, 1, "the history from the start too");
});

test("/metrics is Prometheus text carrying the fleet figures, without a token", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  await enrollN1(t, h);
  await getJson(h, "/v1/clusters");
  const families = await until("the metrics show the enrollment", async () => {
    const res = await h.coordinator.app.inject({ method: "GET", url: "/metrics" });
    t.regex(String(res.headers["content-type"]), /text\/plain/);
    const parsed = new Map(parsePrometheus(res.body).map((f) => [f.name, f]));
    return parsed.get("fleet_events_total")?.metrics.some((m) => m.labels?.kind === "node.enrolled") ? parsed : null;
  });
  for (const name of ["fleet_members", "fleet_events_total", "fleet_nats_messages_total", "fleet_http_requests_total", "fleet_http_request_duration_seconds", "fleet_cluster_converged"]) {
    t.true(families.has(name), `${name} is exported`);
  }
  const http = families.get("fleet_http_requests_total")!.metrics;
  t.true(http.some((m) => m.labels?.route === "/v1/clusters" && m.labels?.status === "200"));
});

test("thousands of events sent in a moment are all still known as sent, so that none is sent again as lost", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const events = h.coordinator.events;
  // As many as a fleet of a thousand members forming sends in under a minute: more than the log keeps at hand.
  const ids = Array.from({ length: 5_000 }, (_, i) => `burst-${i}`);
  for (const id of ids) events.publish("c1", { kind: "settings.applied", id, message: "a burst", data: {} });
  await events.flushed();
  await until("the last of them read back from the stream", () => events.recent({ limit: 10 }).some((e) => e.id === ids.at(-1)), 60_000, 50);
  t.deepEqual(ids.filter((id) => !events.known(id)), [], "every one of them is known, the first as much as the last");
});

test("a restarted coordinator knows every event of the last two minutes as sent, more than it keeps at hand, so that it sends none again", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const ids = Array.from({ length: 3_000 }, (_, i) => `before-the-restart-${i}`);
  for (const id of ids) h.coordinator.events.publish("c1", { kind: "settings.applied", id, message: "a burst", data: {} });
  await h.coordinator.events.flushed();
  const restarted = await h.restart();
  t.deepEqual(ids.filter((id) => !restarted.events.known(id)), [], "the first of them as much as the last");
  t.true(restarted.events.recent({ limit: 10_000 }).length <= 2_000, "what it keeps at hand stays bounded");
});
