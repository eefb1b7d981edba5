import test from "ava";
import { readFileSync } from "node:fs";
import { connect, nkeyAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { CoordinatorLink } from "../../agent/coordinator-link.js";
import { FleetAgent } from "../../agent/agent.js";
import { loadAgentConfig } from "../../agent/config.js";
import { deriveClusterKeys, generateSigningKey, macFrame, signedFrame, signingKeyFromPem, Subject, type Heartbeat, type NodeFacts } from "../../shared/index.js";
import { hostCredentials } from "../../coordinator/setup/setup.js";
import { connectAsCoordinator, connectAsHost, coordinatorPublicKey, getJson, putSpec, startCoordinator, threeMembers, type CoordinatorHarness } from "../helpers/coordinator.js";
import { quiet } from "../helpers/controller-harness.js";
import { until } from "../helpers/wait.js";

/**
 * Each attack class against a real nats-server with the permissions
 * `incus-fleet setup` writes: the attack fails, and nothing changes.
 */

const PASSWORD = "integration-password";
const keys = deriveClusterKeys("c1", PASSWORD);
const facts = (address: string, fp: string): NodeFacts => ({ address, agentVersion: "test", fingerprint: fp, incus: { observedAt: Date.now(), reachable: true, version: "6.0.4", clustered: false } });
const encoder = new TextEncoder();

async function ready(t: Parameters<typeof startCoordinator>[0]): Promise<CoordinatorHarness> {
  const h = await startCoordinator(t);
  t.is((await putSpec(h, threeMembers())).status, 200);
  await until("the coordinator to own c1", () => h.coordinator.leases.owns("c1"));
  return h;
}

/** What a failed publish looks like: the server drops it and says so on the connection's status. */
async function refusedPublish(nc: NatsConnection, subject: string): Promise<boolean> {
  const seen = (async () => {
    for await (const s of nc.status()) if (s.type === "error" && /Permissions Violation for Publish/.test(String(s.error))) return true;
    return false;
  })();
  nc.publish(subject, encoder.encode("junk"));
  await nc.flush();
  return Promise.race([seen, new Promise<boolean>((r) => setTimeout(() => r(false), 3_000))]);
}

test("without a credential nobody gets on the bus at all", async (t) => {
  const h = await ready(t);
  const err = await t.throwsAsync(connect({ servers: h.nats.urls, reconnect: false }));
  t.regex(String(err), /Authorization Violation/);
});

test("a host's credential cannot read or write the store: no keys to read, no spec to rewrite, no lock to plant", async (t) => {
  const h = await ready(t);
  const host = await connectAsHost(t, h.nats, "c1", "n3");
  const kvm = new Kvm(host);
  const secrets = await kvm.open("fleet-secrets");
  await t.throwsAsync(secrets.get("cluster.c1"), { message: /Permissions Violation/ });
  const spec = await kvm.open("fleet-spec");
  await t.throwsAsync(spec.put("current", encoder.encode("{}")), { message: /Permissions Violation|jetstream/i });
  const ops = await kvm.open("fleet-ops");
  await t.throwsAsync(ops.create("lock.c1", encoder.encode(JSON.stringify({ id: "x", at: Date.now() }))), { message: /Permissions Violation|jetstream/i });
  const admin = new Kvm(await connectAsCoordinator(t, h.nats));
  t.is((await (await admin.open("fleet-ops")).get("lock.c1"))?.operation ?? null, null, "no lock was planted");
  t.is((await getJson<{ revision: number }>(h, "/v1/spec")).body.revision, h.coordinator.specs.current().revision);
  t.false(JSON.stringify((await getJson(h, "/v1/spec")).body).includes("mac"), "the derived keys are nowhere in the spec");
});

test("a host cannot speak for another: its credential publishes on its own subjects only, and a body naming another is refused", async (t) => {
  const h = await ready(t);
  const n3 = await connectAsHost(t, h.nats, "c1", "n3");
  t.true(await refusedPublish(n3, Subject.fromAgent("c1", "n1", "hello")), "another host's subject is refused by nats-server");
  t.true(await refusedPublish(n3, Subject.command("c1", "n1")), "commands to another host too");
  t.true(await refusedPublish(n3, Subject.event("c1", "agent.lost")), "and fleet events: only coordinators publish them");
  const sub = n3.subscribe(Subject.toAgent("c1", "n1"));
  await t.throwsAsync(async () => {
    for await (const _m of sub) break;
  }, { message: /Permissions Violation/ }, "and it cannot read another host's commands");

  // Knowing the password, it sends a hello for n1 on its own subject: the subject and the body must agree.
  const link = new CoordinatorLink(n3, keys, coordinatorPublicKey(h.nats), "c1", "n3", 5_000);
  const subject = Subject.fromAgent("c1", "n3", "hello");
  const reply = await n3.request(subject, macFrame(keys.mac, subject, { cluster: "c1", node: "n1", instance: link.instance, challenge: "0".repeat(32) + ".1.0", sentAt: Date.now(), facts: facts("192.0.2.11:8443", "1".repeat(64)) }), { timeout: 5_000 });
  t.regex(reply.string(), /speaks for c1\/n1|FLEET_MESSAGE_INVALID|FLEET_AUTH_FAILED/);
  t.is(h.coordinator.controller.assignmentFor("c1", "n1").kind, "wait", "n1 has no session from this");
});

test("a forged message with a bad MAC changes nothing: the live agent is not cut off", async (t) => {
  const h = await ready(t);
  const n2 = await connectAsHost(t, h.nats, "c1", "n2");
  const link = new CoordinatorLink(n2, keys, coordinatorPublicKey(h.nats), "c1", "n2", 5_000);
  await link.enroll(facts("192.0.2.12:8443", "2".repeat(64)));
  // Same subject, a sequence number far ahead, the wrong key.
  const subject = Subject.fromAgent("c1", "n2", "assign");
  const forged = macFrame(deriveClusterKeys("c1", "guessed-password").mac, subject, { cluster: "c1", node: "n2", instance: link.instance, seq: 1_000_000, sentAt: Date.now(), facts: facts("192.0.2.12:8443", "2".repeat(64)) });
  const answer = await n2.request(subject, forged, { timeout: 5_000 });
  t.regex(answer.string(), /FLEET_AUTH_FAILED/);
  t.is((await link.pull(facts("192.0.2.12:8443", "2".repeat(64)))).kind, "wait", "its next real message is accepted");
});

test("heartbeats captured earlier and played back after a coordinator restart do not make a dead agent look alive", async (t) => {
  const h = await ready(t);
  const n1 = await connectAsHost(t, h.nats, "c1", "n1");
  const link = new CoordinatorLink(n1, keys, coordinatorPublicKey(h.nats), "c1", "n1", 5_000);
  await link.enroll(facts("192.0.2.11:8443", "1".repeat(64)));
  const sniffer = await connectAsCoordinator(t, h.nats);
  const captured: Uint8Array[] = [];
  const sub = sniffer.subscribe(Subject.fromAgent("c1", "n1", "heartbeat"), { callback: (_e, m) => void captured.push(m.data) });
  await sniffer.flush();
  const body = (): Omit<Heartbeat, "cluster" | "node" | "instance" | "seq" | "sentAt"> => ({
    intervalMs: 1_000,
    incus: { observedAt: Date.now(), reachable: true, clustered: false },
    pools: [],
    instances: { total: 0, running: 0 },
    latency: { natsMs: 1, peers: [] },
    clock: { offsetMs: 0, rttMs: 1 },
  });
  for (let i = 0; i < 3; i++) link.publishHeartbeat(body());
  await until("heartbeats captured", () => captured.length === 3);
  sub.unsubscribe();

  // The agent dies; the coordinator restarts; the attacker plays the heartbeats back.
  await h.restart();
  await until("the coordinator to own c1 again", () => h.coordinator.leases.owns("c1"));
  const replayer = await connectAsHost(t, h.nats, "c1", "n1");
  const started = Date.now();
  while (Date.now() - started < 5_000) {
    for (const data of captured) replayer.publish(Subject.fromAgent("c1", "n1", "heartbeat"), data);
    await new Promise((r) => setTimeout(r, 250));
  }
  const status = await until("a status of c1", async () => {
    const s = await getJson<{ memberList: { name: string; agent: { online: boolean } }[] }>(h, "/v1/clusters/c1");
    return s.body.memberList?.length ? s.body : null;
  });
  t.false(status.memberList.find((m) => m.name === "n1")!.agent.online, "the replayed heartbeats were refused");
});

test("agents accept only what the coordinators' key signs: forged answers and commands are dropped", async (t) => {
  const h = await ready(t);
  const host = hostCredentials(h.nats.setup, "c1", "n2");
  const config = loadAgentConfig([], {
    FLEET_NATS_SERVERS: h.nats.urls.join(","),
    FLEET_NATS_NKEY_FILE: host.nkeyFile,
    FLEET_COORDINATOR_KEY_FILE: host.coordinatorKeyFile,
    FLEET_CLUSTER: "c1",
    FLEET_NODE_NAME: "n2",
    FLEET_NODE_ADDRESS: "192.0.2.12:8443",
    FLEET_CLUSTER_PASSWORD: PASSWORD,
    FLEET_INCUS_SOCKET: "/nonexistent/unix.socket",
  });
  const nc = await connect({ servers: config.nats.servers, authenticator: nkeyAuthenticator(encoder.encode(readFileSync(host.nkeyFile, "utf8").trim())), inboxPrefix: config.nats.inboxPrefix! });
  t.teardown(() => nc.close());
  const agent = new FleetAgent(nc, config, coordinatorPublicKey(h.nats), quiet);
  agent.start();
  t.teardown(() => agent.stop());
  await until("the agent enrolled", () => agent.status().enrolled, 15_000);

  // An attacker with the cluster password (another host) cannot publish there; with a coordinator-level bus position
  // but not the coordinators' key, it can: the agent must still refuse.
  const attacker = await connectAsCoordinator(t, h.nats);
  const subject = Subject.command("c1", "n2");
  const command = { id: "a".repeat(32), cluster: "c1", node: "n2", instance: agent.link.instance, epoch: agent.link.epoch, issuedAt: Date.now(), body: { kind: "probe", address: "192.0.2.11:8443", attempts: 1 } };
  const dropped = agent.status().droppedMessages;
  const stranger = signingKeyFromPem(generateSigningKey().privatePem);
  await t.throwsAsync(attacker.request(subject, signedFrame(stranger, subject, command), { timeout: 1_000 }));
  await t.throwsAsync(attacker.request(subject, macFrame(keys.mac, subject, command), { timeout: 1_000 }));
  await until("both forged commands dropped", () => agent.status().droppedMessages >= dropped + 2);

  // A command from a coordinator whose lease is older than the one the agent heard from is refused too.
  t.true(agent.link.epoch > 0, "the agent knows its owner's lease epoch");
  const signing = signingKeyFromPem(readFileSync(h.nats.setup.coordinators[0]!.signingKeyFile, "utf8"));
  const stale = { ...command, id: "b".repeat(32), epoch: agent.link.epoch - 1, issuedAt: Date.now() };
  await t.throwsAsync(attacker.request(subject, signedFrame(signing, subject, stale), { timeout: 1_000 }));
  await until("the stale command dropped", () => agent.status().droppedMessages >= dropped + 3);
  const fresh = { ...command, id: "c".repeat(32), issuedAt: Date.now() };
  const answer = await attacker.request(subject, signedFrame(signing, subject, fresh), { timeout: 5_000 });
  t.regex(answer.string(), /"kind":"probe"/, "a command the coordinators signed, for this process and lease, is answered");
});

test("a flood of junk on a host's own subjects is dropped cheaply and counted: real pulls stay fast", async (t) => {
  const h = await ready(t);
  const honest = await connectAsHost(t, h.nats, "c1", "n1");
  const link = new CoordinatorLink(honest, keys, coordinatorPublicKey(h.nats), "c1", "n1", 5_000);
  await link.enroll(facts("192.0.2.11:8443", "1".repeat(64)));
  // Pulls paced as an agent paces them (well within its rate).
  const pull = async (into: number[]) => {
    const s = performance.now();
    await link.pull(facts("192.0.2.11:8443", "1".repeat(64)));
    into.push(performance.now() - s);
    await new Promise((r) => setTimeout(r, 250));
  };
  const calm: number[] = [];
  for (let i = 0; i < 10; i++) await pull(calm);
  const rogue = await connectAsHost(t, h.nats, "c1", "n3");
  const before = process.memoryUsage().heapUsed;
  const flood = (async () => {
    for (let i = 0; i < 100_000; i++) {
      rogue.publish(Subject.fromAgent("c1", "n3", i % 2 ? "assign" : "challenge"), encoder.encode(`junk ${i}`));
      if (i % 5_000 === 0) await new Promise((r) => setImmediate(r));
    }
    await rogue.flush();
  })();
  const during: number[] = [];
  const floodDone = flood.then(() => true);
  let finished = false;
  void floodDone.then(() => (finished = true));
  while (!finished || during.length < 10) await pull(during);
  await flood;
  const worst = Math.max(...during);
  const median = [...calm].sort((a, b) => a - b)[5]!;
  t.log(`pull latency: calm median ${median.toFixed(1)} ms, worst during a flood of 100,000 junk messages ${worst.toFixed(1)} ms`);
  t.true(worst < median + 500, `a real pull took ${worst.toFixed(0)} ms during the flood, against ${median.toFixed(0)} ms without it`);
  const metrics = (await h.coordinator.app.inject({ method: "GET", url: "/metrics" })).body;
  const limited = /fleet_nats_messages_total\{endpoint="(?:assign|challenge)",result="rate-limited"\} (\d+)/g;
  let count = 0;
  for (const m of metrics.matchAll(limited)) count += Number(m[1]);
  t.true(count > 90_000, `junk dropped by the rate limit: ${count}`);
  t.true(h.logs.filter((l) => l.includes("dropped messages from agents")).length <= 3, "the drops are logged in summary, not per message");
  t.true(process.memoryUsage().heapUsed - before < 100 * 1024 * 1024, "memory does not grow with the flood");
  t.is(h.coordinator.controller.assignmentFor("c1", "n3").kind, "wait");
});

test("a client on the bus without a coordinator's key cannot feed the event stream that WebSocket clients read", async (t) => {
  const h = await ready(t);
  const host = await connectAsHost(t, h.nats, "c1", "n2");
  t.true(await refusedPublish(host, Subject.event("c1", "cluster.recovered")));
  const events = await getJson<{ kind: string }[]>(h, "/v1/events?limit=200");
  t.false(events.body.some((e) => e.kind === "cluster.recovered"));
});
