import test from "ava";
import WebSocket from "ws";
import parsePrometheus from "parse-prometheus-text-format";
import { CoordinatorLink } from "../../agent/coordinator-link.js";
import { deriveClusterKeys, type FleetEvent, type NodeFacts } from "../../shared/index.js";
import { putSpec, startCoordinator, threeMembers } from "../helpers/coordinator.js";

const facts = (address: string): NodeFacts => ({ address, agentVersion: "t", incus: { observedAt: Date.now(), reachable: true, version: "6.0.4", clustered: false } });

function collect(url: string): { events: FleetEvent[]; ready: Promise<void>; close: () => void } {
  const ws = new WebSocket(url);
  const events: FleetEvent[] = [];
  ws.on("message", (d) => events.push(JSON.parse(d.toString()) as FleetEvent));
  return { events, ready: new Promise((r) => ws.once("open", () => r())), close: () => ws.close() };
}

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

test("the WebSocket streams fleet events in order, filtered by cluster", async (t) => {
  const h = await startCoordinator(t);
  const base = h.coordinator.url.replace("http", "ws");
  const all = collect(`${base}/v1/events/stream`);
  const onlyC2 = collect(`${base}/v1/events/stream?cluster=c2`);
  t.teardown(() => {
    all.close();
    onlyC2.close();
  });
  await Promise.all([all.ready, onlyC2.ready]);
  await putSpec(h, `${threeMembers("c1")}${threeMembers("c2", "another-password").replace("clusters:\n", "").replace(/192\.0\.2\.1/g, "192.0.2.2")}`);
  const link = new CoordinatorLink(h.client, deriveClusterKeys("c1", "integration-password"), "c1", "n1", 5_000);
  await link.enroll(facts("192.0.2.11:8443"));
  await until(() => all.events.length >= 4);
  t.deepEqual(all.events.map((e) => `${e.cluster}:${e.kind}`), ["c1:spec.applied", "c2:spec.applied", "c1:node.enrolled", "c1:bootstrap.claimed"]);
  t.deepEqual(all.events.map((e) => e.seq), [...all.events.map((e) => e.seq)].sort((a, b) => a - b), "in publishing order");
  t.deepEqual(onlyC2.events.map((e) => e.kind), ["spec.applied"]);
  t.true(all.events.every((e) => !JSON.stringify(e).includes("password")));
});

test("/metrics is Prometheus text carrying the fleet figures", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  await new CoordinatorLink(h.client, deriveClusterKeys("c1", "integration-password"), "c1", "n1", 5_000).enroll(facts("192.0.2.11:8443"));
  await h.coordinator.app.inject({ method: "GET", url: "/v1/clusters" });
  const res = await h.coordinator.app.inject({ method: "GET", url: "/metrics" });
  t.regex(String(res.headers["content-type"]), /text\/plain/);
  const families = new Map(parsePrometheus(res.body).map((f) => [f.name, f]));
  for (const name of ["fleet_members", "fleet_events_total", "fleet_nats_messages_total", "fleet_nats_request_duration_seconds", "fleet_http_requests_total", "fleet_http_request_duration_seconds"]) {
    t.true(families.has(name), `${name} is exported`);
  }
  const members = families.get("fleet_members")!.metrics;
  t.true(members.some((m) => m.labels?.cluster === "c1" && m.labels?.state === "bootstrapping" && m.value === "1"), JSON.stringify(members));
  const events = families.get("fleet_events_total")!.metrics;
  t.true(events.some((m) => m.labels?.kind === "bootstrap.claimed" && m.value === "1"));
  const http = families.get("fleet_http_requests_total")!.metrics;
  t.true(http.some((m) => m.labels?.route === "/v1/clusters" && m.labels?.status === "200"));
});
