import test from "ava";
import { CoordinatorLink } from "../../agent/coordinator-link.js";
import { deriveClusterKeys, ErrorCode, FleetError, MacPurpose, signed, Subject, type NodeFacts } from "../../shared/index.js";
import { getJson, putSpec, startCoordinator, threeMembers } from "../helpers/coordinator.js";

const PASSWORD = "integration-password";
const keys = deriveClusterKeys("c1", PASSWORD);
const facts = (clustered: boolean, address: string, members?: string[]): NodeFacts => ({
  address,
  agentVersion: "test",
  incus: { observedAt: Date.now(), reachable: true, version: "6.0.4", clustered, ...(members ? { members } : {}) },
});
const encoder = new TextEncoder();
const decoder = new TextDecoder();

test("agents enroll with a proof of the password, pull their roles, and the bootstrap goes to one member", async (t) => {
  const h = await startCoordinator(t);
  t.is((await putSpec(h, threeMembers())).status, 200);
  const link = (node: string) => new CoordinatorLink(h.client, keys, "c1", node, 5_000);
  const n1 = link("n1");
  const n2 = link("n2");

  const early = await n2.enroll(facts(false, "192.0.2.12:8443"));
  t.like(early, { kind: "wait" });
  t.regex((early as { reason: string }).reason, /waiting for n1 to bootstrap the cluster \(its agent has not enrolled yet\)/);

  t.like(await n1.enroll(facts(false, "192.0.2.11:8443")), { kind: "bootstrap", serverName: "n1", address: "192.0.2.11:8443" });
  t.like(await n1.pull(facts(false, "192.0.2.11:8443")), { kind: "bootstrap" }, "asking again gives the same bootstrap, never another member's");
  t.like(await n2.pull(facts(false, "192.0.2.12:8443")), { kind: "prepare", target: { node: "n1" } }, "the first joiner checks its path to n1 while n1 bootstraps");

  await n1.report({ outcome: "bootstrapped", assignment: "bootstrap", detail: "ok", durationMs: 5, facts: facts(true, "192.0.2.11:8443", ["n1"]) });
  t.like(await n2.pull(facts(false, "192.0.2.12:8443")), { kind: "prepare", target: { node: "n1", address: "192.0.2.11:8443" } });

  const status = await getJson<{ bootstrap: { node: string; completedAt: string }; memberList: { name: string; state: string }[] }>(h, "/v1/clusters/c1");
  t.is(status.body.bootstrap.node, "n1");
  t.truthy(status.body.bootstrap.completedAt);
  t.is(status.body.memberList.find((m) => m.name === "n1")?.state, "member");
});

test("a wrong cluster password gets no role and a reason that says so", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const intruder = new CoordinatorLink(h.client, deriveClusterKeys("c1", "not-the-password"), "c1", "n1", 5_000);
  const err = await t.throwsAsync(intruder.enroll(facts(false, "192.0.2.11:8443")), { instanceOf: FleetError });
  t.is(err?.code, ErrorCode.AuthFailed);
  t.regex(err!.message, /wrong cluster password/);
  const status = await getJson<{ memberList: { name: string; state: string; reason: string }[]; bootstrap: unknown }>(h, "/v1/clusters/c1");
  t.like(status.body.memberList.find((m) => m.name === "n1"), { state: "rejected" });
  t.regex(status.body.memberList.find((m) => m.name === "n1")!.reason, /wrong cluster password/);
  t.is(status.body.bootstrap, null, "nobody was told to bootstrap");
  t.false(h.logs.some((l) => l.includes(PASSWORD) || l.includes("not-the-password")), "no password in any log line");
});

test("a host that is not in the spec is refused by name", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const stranger = new CoordinatorLink(h.client, keys, "c1", "n9", 5_000);
  const err = await t.throwsAsync(stranger.enroll(facts(false, "192.0.2.19:8443")), { instanceOf: FleetError });
  t.is(err?.code, ErrorCode.NotInSpec);
  t.regex(err!.message, /'n9' is not a member of cluster 'c1'/);
});

test("a replayed or forged request is refused and changes nothing", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const n1 = new CoordinatorLink(h.client, keys, "c1", "n1", 5_000);
  await n1.enroll(facts(false, "192.0.2.11:8443"));
  const body = { cluster: "c1", node: "n1", instance: n1.instance, seq: 1, facts: facts(false, "192.0.2.11:8443") };
  const first = JSON.parse(decoder.decode((await h.client.request(Subject.assign, encoder.encode(JSON.stringify(signed(keys.mac, MacPurpose.Assign, body))))).data));
  t.true(first.ok);
  const replay = JSON.parse(decoder.decode((await h.client.request(Subject.assign, encoder.encode(JSON.stringify(signed(keys.mac, MacPurpose.Assign, body))))).data));
  t.like(replay, { ok: false, error: { code: ErrorCode.AuthFailed } });
  t.regex(replay.error.message, /replayed/);
  const forged = { ...signed(keys.mac, MacPurpose.Assign, { ...body, seq: 2 }), facts: facts(true, "192.0.2.11:8443", ["n1"]) };
  const answer = JSON.parse(decoder.decode((await h.client.request(Subject.assign, encoder.encode(JSON.stringify(forged)))).data));
  t.like(answer, { ok: false, error: { code: ErrorCode.AuthFailed } });
  const status = await getJson<{ bootstrap: { node: string; completedAt?: string } }>(h, "/v1/clusters/c1");
  t.is(status.body.bootstrap.node, "n1");
  t.is(status.body.bootstrap.completedAt, undefined, "the forged 'clustered' facts were not believed");
});

test("invalid messages are dropped, counted and logged with the reason, never acted on", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const garbage = await h.client.request(Subject.hello, encoder.encode("{not json"));
  t.like(JSON.parse(decoder.decode(garbage.data)), { ok: false, error: { code: ErrorCode.MessageInvalid } });
  const wrongShape = await h.client.request(Subject.assign, encoder.encode(JSON.stringify({ cluster: "c1", node: "n1", seq: "one" })));
  const reply = JSON.parse(decoder.decode(wrongShape.data));
  t.is(reply.error.code, ErrorCode.MessageInvalid);
  t.regex(reply.error.message, /AssignRequest: .*missing required field/);
  h.client.publish(Subject.heartbeat("c1", "n1"), encoder.encode(JSON.stringify({ cluster: "c1", node: "n1" })));
  await h.client.flush();
  await new Promise((r) => setTimeout(r, 200));

  const metrics = (await h.coordinator.app.inject({ method: "GET", url: "/metrics" })).body;
  t.regex(metrics, /fleet_nats_messages_total\{endpoint="hello",result="invalid"\} 1/);
  t.regex(metrics, /fleet_nats_messages_total\{endpoint="assign",result="invalid"\} 1/);
  t.regex(metrics, /fleet_nats_messages_total\{endpoint="heartbeat",result="invalid"\} 1/);
  const dropped = h.logs.map((l) => JSON.parse(l) as { msg: string; reason?: string }).filter((l) => l.msg === "dropped an invalid message");
  t.is(dropped.length, 3);
  t.regex(dropped[0]!.reason!, /Hello: not valid JSON/);
  const nodes = await getJson<unknown[]>(h, "/v1/nodes");
  t.deepEqual(nodes.body, [], "no node was registered from an invalid message");
});

test("the agent drops an assignment that is not signed with its cluster's key", async (t) => {
  const h = await startCoordinator(t);
  await h.coordinator.stop();
  // A rogue responder answers enrollment with an unsigned bootstrap order.
  h.client.subscribe(Subject.challenge, {
    callback: (_e, m) => {
      m.respond(encoder.encode(JSON.stringify({ nonce: "ab".repeat(16), expiresInMs: 1000 })));
    },
  });
  h.client.subscribe(Subject.hello, {
    callback: (_e, m) => {
      m.respond(encoder.encode(JSON.stringify({ ok: true, inReplyTo: "ab".repeat(16), assignment: { kind: "bootstrap", serverName: "n1", address: "192.0.2.11:8443" }, mac: "00".repeat(32) })));
    },
  });
  await h.client.flush();
  const link = new CoordinatorLink(h.client, keys, "c1", "n1", 2_000);
  const err = await t.throwsAsync(link.enroll(facts(false, "192.0.2.11:8443")), { instanceOf: FleetError });
  t.is(err?.code, ErrorCode.MessageInvalid);
  t.false(link.isEnrolled);
  t.is([...link.dropped.values()].reduce((a, b) => a + b, 0), 1);
});
