import test from "ava";
import { CoordinatorLink } from "../../agent/coordinator-link.js";
import { deriveClusterKeys, ErrorCode, FleetError, type NodeFacts } from "../../shared/index.js";
import { connectAsHost, coordinatorPublicKey, getJson, putSpec, startCoordinator, threeMembers, type CoordinatorHarness } from "../helpers/coordinator.js";
import { until } from "../helpers/wait.js";

const PASSWORD = "integration-password";
const keys = deriveClusterKeys("c1", PASSWORD);
const fingerprint = (n: number) => String(n).repeat(64).slice(0, 64);
const facts = (clustered: boolean, address: string, members?: string[], fp = fingerprint(1)): NodeFacts => ({
  address,
  agentVersion: "test",
  fingerprint: fp,
  incus: { observedAt: Date.now(), reachable: true, version: "6.0.4", clustered, ...(members ? { members } : {}) },
});

async function linkFor(t: Parameters<typeof connectAsHost>[0], h: CoordinatorHarness, node: string, password = PASSWORD): Promise<CoordinatorLink> {
  const nc = await connectAsHost(t, h.nats, "c1", node);
  return new CoordinatorLink(nc, password === PASSWORD ? keys : deriveClusterKeys("c1", password), coordinatorPublicKey(h.nats), "c1", node, 5_000);
}

async function ownerReady(h: CoordinatorHarness): Promise<void> {
  await until("the coordinator to own c1", () => h.coordinator.leases.owns("c1"), 10_000);
}

test("agents enroll with a proof of the password, pull their roles, and the bootstrap goes to one member, recorded first", async (t) => {
  const h = await startCoordinator(t);
  t.is((await putSpec(h, threeMembers())).status, 200);
  await ownerReady(h);
  const n1 = await linkFor(t, h, "n1");
  const n2 = await linkFor(t, h, "n2");

  const early = await n2.enroll(facts(false, "192.0.2.12:8443", undefined, fingerprint(2)));
  t.like(early, { kind: "wait" });
  t.regex((early as { reason: string }).reason, /waiting for n1 to bootstrap the cluster \(its agent has not enrolled yet\)/);

  await n1.enroll(facts(false, "192.0.2.11:8443"));
  const told = await until("n1 to be told to bootstrap", async () => {
    const a = await n1.pull(facts(false, "192.0.2.11:8443"));
    return a.kind === "bootstrap" ? a : null;
  });
  t.like(told, { kind: "bootstrap", serverName: "n1", address: "192.0.2.11:8443" });
  t.like(await n1.pull(facts(false, "192.0.2.11:8443")), { kind: "bootstrap" }, "asking again gives the same bootstrap, never another member's");
  t.is((await n2.pull(facts(false, "192.0.2.12:8443", undefined, fingerprint(2)))).kind, "wait");

  await n1.report({ outcome: "bootstrapped", assignment: "bootstrap", detail: "ok", durationMs: 5, facts: facts(true, "192.0.2.11:8443", ["n1"]) });
  const status = await until("the bootstrap recorded", async () => {
    const s = await getJson<{ bootstrap: { node: string; completedAt?: string } | null }>(h, "/v1/clusters/c1");
    return s.body.bootstrap?.completedAt ? s.body : null;
  });
  t.is(status.bootstrap!.node, "n1");
  t.true(n1.epoch > 0, "answers carry the owner's lease epoch");
});

test("a wrong cluster password gets no role and a reason that says so, and no password is logged", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  await ownerReady(h);
  const intruder = await linkFor(t, h, "n1", "not-the-password");
  const err = await t.throwsAsync(intruder.enroll(facts(false, "192.0.2.11:8443")), { instanceOf: FleetError });
  t.is(err?.code, ErrorCode.AuthFailed);
  t.regex(err!.message, /wrong cluster password/);
  t.false(h.logs.some((l) => l.includes(PASSWORD) || l.includes("not-the-password")), "no password in any log line");
  t.is(h.coordinator.controller.assignmentFor("c1", "n1").kind, "wait", "nobody was told to bootstrap");
});

test("a host that is not in the spec is refused by name", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  await ownerReady(h);
  const stranger = await linkFor(t, h, "n5");
  const err = await t.throwsAsync(stranger.enroll(facts(false, "192.0.2.15:8443", undefined, fingerprint(5))), { instanceOf: FleetError });
  t.is(err?.code, ErrorCode.NotInSpec);
  t.regex(err!.message, /'n5' is not a member of cluster 'c1'/);
});

test("a host's Incus certificate is pinned at its first enrollment: the same name with another certificate is refused", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  await ownerReady(h);
  const first = await linkFor(t, h, "n2");
  await first.enroll(facts(false, "192.0.2.12:8443", undefined, fingerprint(2)));
  const impostor = await linkFor(t, h, "n2");
  const err = await t.throwsAsync(impostor.enroll(facts(false, "192.0.2.12:8443", undefined, fingerprint(7))), { instanceOf: FleetError });
  t.is(err?.code, ErrorCode.IdentityMismatch);
  t.regex(err!.message, /not the one pinned at its first enrollment/);
  const forgotten = await h.coordinator.app.inject({ method: "DELETE", url: "/v1/clusters/c1/members/n2/identity", headers: { authorization: `Bearer ${h.token}` } });
  t.deepEqual(forgotten.json(), { forgotten: true });
  const again = await linkFor(t, h, "n2");
  t.is((await again.enroll(facts(false, "192.0.2.12:8443", undefined, fingerprint(7)))).kind, "wait", "after the operator forgets it, the new certificate is pinned");
});

test("a certificate fingerprint the spec lists is pinned from the start: a host with any other certificate is refused at its first enrollment", async (t) => {
  const h = await startCoordinator(t);
  // Written as `incus info` shows it: colon-separated, upper case.
  const listed = fingerprint(2).match(/../g)!.join(":").toUpperCase();
  t.is((await putSpec(h, threeMembers().replace("n2: { address: 192.0.2.12 }", `n2: { address: 192.0.2.12, certificate_fingerprint: "${listed}" }`))).status, 200);
  await ownerReady(h);
  const impostor = await linkFor(t, h, "n2");
  const err = await t.throwsAsync(impostor.enroll(facts(false, "192.0.2.12:8443", undefined, fingerprint(7))), { instanceOf: FleetError });
  t.is(err?.code, ErrorCode.IdentityMismatch);
  t.regex(err!.message, /not the one the spec lists/);
  const genuine = await linkFor(t, h, "n2");
  t.is((await genuine.enroll(facts(false, "192.0.2.12:8443", undefined, fingerprint(2)))).kind, "wait", "the host with the listed certificate enrolls");
});

test("no coordinator owning the cluster is a clear error, not a hang", async (t) => {
  const h = await startCoordinator(t);
  const link = await linkFor(t, h, "n1");
  const err = await t.throwsAsync(link.enroll(facts(false, "192.0.2.11:8443")), { instanceOf: FleetError });
  t.is(err?.code, ErrorCode.NoCoordinator);
  t.regex(err!.message, /no coordinator serves cluster 'c1'/);
});

test("a member the Salt pillar gives only by address takes the name of the agent that enrolls from it, and bootstraps", async (t) => {
  const h = await startCoordinator(t);
  const pillar = `
incus:
  server_settings: { config: { cluster.https_address: "192.0.2.11:8443" } }
  cluster_members:
    n2: { address: 192.0.2.12, cluster_password: ${PASSWORD} }
    n3: { address: 192.0.2.13, cluster_password: ${PASSWORD} }
  cluster_name: c1
`;
  t.is((await putSpec(h, pillar)).status, 200);
  await ownerReady(h);
  const n1 = await linkFor(t, h, "n1");
  await n1.enroll(facts(false, "192.0.2.11:8443"));
  const spec = await getJson<{ spec: { clusters: { bootstrap: string | null; members: { name: string; named: boolean; address: string }[] }[] } }>(h, "/v1/spec");
  t.like(spec.body.spec.clusters[0]!.members.find((m) => m.address === "192.0.2.11:8443"), { name: "n1", named: true });
  const told = await until("n1 to be told to bootstrap", async () => {
    const a = await n1.pull(facts(false, "192.0.2.11:8443"));
    return a.kind === "bootstrap" ? a : null;
  });
  t.like(told, { kind: "bootstrap", serverName: "n1" });
  const impostor = await linkFor(t, h, "n4");
  await t.throwsAsync(impostor.enroll(facts(false, "192.0.2.11:8443", undefined, fingerprint(4))), { message: /not a member/ }, "the address is named once; another host claiming it later is refused");
});

test("every assignment measures the agent's clock, a held pull's wait taken out, and a stepped host clock voids the measurement", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  await ownerReady(h);
  const n2 = await linkFor(t, h, "n2");
  t.is((await n2.enroll(facts(false, "192.0.2.12:8443", undefined, fingerprint(2)))).kind, "wait");
  t.is((await n2.pull(facts(false, "192.0.2.12:8443", undefined, fingerprint(2)), undefined, 800)).kind, "wait", "held until the wait ran out: n1 never enrolled");
  t.true(n2.clockAgeMs() < 100, "the held pull measured the clock as it was answered");
  const clock = n2.clockSample!;
  // Both ends read the same clock here: only the exchange itself may show, not the 800 ms the coordinator held the pull.
  t.true(Math.abs(clock.offsetMs) < 100, `offset ${clock.offsetMs} ms`);
  t.true(clock.rttMs < 200, `round trip ${clock.rttMs} ms`);
  const realNow = Date.now;
  Date.now = () => realNow() + 5_000;
  try {
    t.is(n2.clockAgeMs(), Infinity, "a measurement from before the host's clock moved counts as none");
  } finally {
    Date.now = realNow;
  }
});
