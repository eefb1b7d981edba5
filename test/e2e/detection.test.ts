import test from "ava";
import parsePrometheus from "parse-prometheus-text-format";
import { stopIncusd } from "../../lab/incus-member.js";
import { eventLog, inOrder, labFor, onlineMembers, socketEvents } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

const INTERVAL_MS = 1_000;

test("a stopped incusd is reported within one heartbeat, a killed agent within three; /metrics carries the fleet's figures", async (t) => {
  const lab = await labFor(t, { ...LabSlot.detection, hosts: 3, heartbeatIntervalMs: INTERVAL_MS });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const stream = await socketEvents(t, lab);
  const names = ["node1", "node2", "node3"];
  await lab.putSpec(lab.specYaml("lab", "detection-password", names.map((name) => ({ name }))));
  for (const n of names) lab.startAgent(n, { password: "detection-password" });
  await lab.waitForCluster("lab", "healthy, every link measured", (s) => onlineMembers(s).length === 3 && s.health === "healthy" && s.memberList.every((m) => m.worstLinkMs !== null), 120_000);

  // The daemon is gone once its process has exited; from then on the next heartbeat must say so.
  await stopIncusd(lab.member("node3"));
  const daemonGone = Date.now();
  const lost = await log.waitFor("incus.lost", "node3", 10_000);
  const incusDetection = Date.parse(lost.at) - daemonGone;
  t.log(`incusd stop reported after ${incusDetection} ms`);
  t.true(incusDetection <= INTERVAL_MS + 300, `reported after ${incusDetection} ms, more than one heartbeat`);

  await lab.stopAgent("node2", "SIGKILL");
  const agentGone = Date.now();
  const silent = await log.waitFor("agent.lost", "node2", 10_000);
  const agentDetection = Date.parse(silent.at) - agentGone;
  t.log(`agent kill reported after ${agentDetection} ms`);
  t.true(agentDetection <= 3 * INTERVAL_MS + 500, `reported after ${agentDetection} ms, more than three intervals`);
  t.true(agentDetection >= 2 * INTERVAL_MS, "not before it actually missed heartbeats");

  await lab.waitForCluster("lab", "events streamed", () => stream.some((e) => e.kind === "agent.lost"), 5_000);
  t.true(inOrder(stream, [{ kind: "bootstrap.completed" }, { kind: "join.completed" }, { kind: "incus.lost", node: "node3" }, { kind: "agent.lost", node: "node2" }]), stream.map((e) => e.kind).join(", "));

  const status = await lab.api<{ health: string; quorum: { voters: number; onlineVoters: number; failuresTolerated: number; hasQuorum: boolean } }>("/v1/clusters/lab");
  t.true(status.body.quorum.hasQuorum, "a silent agent is not a dead daemon: the cluster keeps quorum");
  t.not(status.body.health, "quorum-lost");
  const metrics = await lab.api<string>("/metrics");
  const families = new Map(parsePrometheus(metrics.body).map((f) => [f.name, f]));
  const value = (name: string, labels: Record<string, string>) =>
    families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;
  t.is(value("fleet_voters", { cluster: "lab" }), String(status.body.quorum.voters));
  t.is(value("fleet_voters_online", { cluster: "lab" }), String(status.body.quorum.onlineVoters));
  t.is(value("fleet_failures_tolerated", { cluster: "lab" }), String(status.body.quorum.failuresTolerated));
  t.true(Number(value("fleet_heartbeat_age_seconds", { cluster: "lab", node: "node2" })) >= 3, "the silent agent's heartbeat is old");
  t.true(Number(value("fleet_heartbeat_age_seconds", { cluster: "lab", node: "node1" })) < 2);
  // A stopped daemon is the daemon's fault, not the link's: no link is flagged for it, nor for the healthy ones.
  t.is(value("fleet_link_latency_ms", { cluster: "lab", from: "node1", to: "node3", state: "down" }), undefined);
  t.is(value("fleet_link_latency_ms", { cluster: "lab", from: "node1", to: "node2" }), undefined);
  t.false(log.events.some((e) => e.kind === "link.down"), "no link.down for a daemon that is merely stopped");
  t.true(Number(value("fleet_member_link_latency_max_ms", { cluster: "lab", node: "node1" })) > 0);
  t.truthy(value("fleet_clock_offset_ms", { cluster: "lab", node: "node1" }));
  t.is(value("fleet_members", { cluster: "lab", state: "member" }), "3");
  t.is(value("fleet_events_total", { kind: "agent.lost" }), "1");
  t.true(Number(value("fleet_nats_messages_total", { endpoint: "heartbeat", result: "ok" })) > 10);
  t.truthy(families.get("fleet_nats_request_duration_seconds"));
  t.truthy(value("fleet_http_requests_total", { route: "/v1/clusters/:cluster", status: "200" }));
});
