import test from "ava";
import { connect } from "@nats-io/transport-node";
import { randomUUID } from "node:crypto";
import { CoordinatorLink } from "../../agent/coordinator-link.js";
import { FleetStore } from "../../coordinator/store.js";
import { deriveClusterKeys, type NodeFacts } from "../../shared/index.js";
import { startNatsServer } from "../../lab/nats-server.js";
import { getJson, putSpec, startCoordinator, threeMembers } from "../helpers/coordinator.js";

const facts = (address: string): NodeFacts => ({ address, agentVersion: "t", incus: { observedAt: Date.now(), reachable: true, version: "6.0.4", clustered: false } });

test("the bootstrap claim is a compare-and-set: of many racing coordinators exactly one wins", async (t) => {
  const nats = await startNatsServer();
  t.teardown(() => nats.stop());
  const prefix = `race${randomUUID().slice(0, 6)}`;
  const connections = await Promise.all(Array.from({ length: 8 }, () => connect({ servers: nats.url })));
  t.teardown(() => Promise.all(connections.map((c) => c.close())));
  const stores = await Promise.all(connections.map((nc) => FleetStore.open(nc, { prefix })));
  const results = await Promise.all(stores.map((s, i) => s.claimBootstrap("c", { node: `n${i}`, claimedAt: "t" })));
  const winners = results.filter((r) => r.won);
  t.is(winners.length, 1);
  t.true(results.every((r) => r.claim.node === winners[0]!.claim.node), "every loser reads the winner");
});

test("the membership lock is held by one change at a time and released only by its holder", async (t) => {
  const nats = await startNatsServer();
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const store = await FleetStore.open(nc, { prefix: "lock" });
  t.true(await store.beginOp("c", { id: "a", kind: "join", node: "n2", startedAt: "t" }));
  t.false(await store.beginOp("c", { id: "b", kind: "join", node: "n3", startedAt: "t" }));
  t.false(await store.endOp("c", "b"), "a change that does not hold the lock cannot release it");
  t.true(await store.endOp("c", "a"));
  t.true(await store.beginOp("c", { id: "b", kind: "join", node: "n3", startedAt: "t" }));
});

test("a restarted coordinator resumes from the store: spec, claim, sessions and node records", async (t) => {
  const h = await startCoordinator(t);
  const applied = await putSpec(h, threeMembers());
  const keys = deriveClusterKeys("c1", "integration-password");
  const n1 = new CoordinatorLink(h.client, keys, "c1", "n1", 5_000);
  t.like(await n1.enroll(facts("192.0.2.11:8443")), { kind: "bootstrap" });

  await h.restart();

  const spec = await getJson<{ revision: number }>(h, "/v1/spec");
  t.is(spec.body.revision, applied.body.revision!);
  t.like(await n1.pull(facts("192.0.2.11:8443")), { kind: "bootstrap" }, "the agent's session outlives the coordinator");
  t.true(n1.isEnrolled);
  const n3 = new CoordinatorLink(h.client, keys, "c1", "n3", 5_000);
  const n3First = await n3.enroll(facts("192.0.2.13:8443"));
  t.not(n3First.kind, "bootstrap", "the claim survived: nobody else bootstraps");
  t.like(n3First, { kind: "prepare", target: { node: "n1" } });
  const status = await getJson<{ bootstrap: { node: string } }>(h, "/v1/clusters/c1");
  t.is(status.body.bootstrap.node, "n1");
  const nodes = await getJson<{ node: string; state: string }[]>(h, "/v1/nodes");
  t.deepEqual(nodes.body.map((n) => [n.node, n.state]).sort(), [["n1", "bootstrapping"], ["n3", "waiting"]]);
});

test("two coordinators sharing one store see each other's spec", async (t) => {
  const a = await startCoordinator(t);
  const b = await startCoordinator(t, {}, a.nats);
  await putSpec(a, threeMembers());
  for (let i = 0; i < 100 && (await getJson<{ revision: number }>(b, "/v1/spec")).body.revision === 0; i++) await new Promise((r) => setTimeout(r, 20));
  const seen = await getJson<{ revision: number; spec: { clusters: { name: string }[] } }>(b, "/v1/spec");
  t.is(seen.body.revision, 1);
  t.deepEqual(seen.body.spec.clusters.map((c) => c.name), ["c1"]);
});
