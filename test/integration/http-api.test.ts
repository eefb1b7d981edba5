import test from "ava";
import { ErrorCode } from "../../shared/index.js";
import { getJson, putSpec, startCoordinator, threeMembers } from "../helpers/coordinator.js";

test("a spec round-trips without its secrets", async (t) => {
  const h = await startCoordinator(t);
  const applied = await putSpec(h, threeMembers());
  t.is(applied.status, 200);
  t.is(applied.body.revision, 1);
  const res = await h.coordinator.app.inject({ method: "GET", url: "/v1/spec" });
  t.is(res.statusCode, 200);
  t.false(res.body.includes("integration-password"));
  const body = res.json() as { revision: number; spec: { clusters: { name: string; members: { name: string; address: string }[] }[] } };
  t.is(body.revision, 1);
  t.deepEqual(body.spec.clusters[0]!.members.map((m) => m.address), ["192.0.2.11:8443", "192.0.2.12:8443", "192.0.2.13:8443"]);
});

test("a bad spec is refused with every problem named, and the stored spec is left as it was", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const before = (await h.coordinator.app.inject({ method: "GET", url: "/v1/spec" })).body;
  const bad = await putSpec(h, `
clusters:
  c1:
    cluster_password: integration-password
    bootstrap: n7
    server_settings: { config: { cluster.max_voters: 2 } }
    members:
      n1: { address: 192.0.2.11 }
      n2: { address: 192.0.2.11 }
`);
  t.is(bad.status, 400);
  t.is(bad.body.error!.code, ErrorCode.SpecInvalid);
  t.deepEqual(bad.body.error!.problems!.map((p) => p.path).sort(), [
    "clusters.c1.bootstrap",
    "clusters.c1.members.n2.address",
    "clusters.c1.server_settings.config.cluster.max_voters",
  ]);
  t.regex(bad.body.error!.message, /^spec rejected: /);
  const shape = await putSpec(h, "clusters:\n  c1:\n    members: nope\n");
  t.is(shape.status, 400);
  t.is(shape.body.error!.code, ErrorCode.SpecInvalid);
  t.true(shape.body.error!.problems!.some((p) => p.path === "clusters.c1.members"), JSON.stringify(shape.body));
  const yaml = await putSpec(h, "clusters: [");
  t.is(yaml.status, 400);
  t.regex(yaml.body.error!.message, /not valid YAML/);
  t.is((await h.coordinator.app.inject({ method: "GET", url: "/v1/spec" })).body, before, "nothing stored was lost or half-applied");
});

test("If-Match refuses a write based on an old revision", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  await putSpec(h, threeMembers(), { "if-match": "1" });
  const stale = await putSpec(h, threeMembers(), { "if-match": "1" });
  t.is(stale.status, 409);
  t.is(stale.body.error!.code, ErrorCode.SpecConflict);
});

test("JSON bodies are specs too", async (t) => {
  const h = await startCoordinator(t);
  const res = await h.coordinator.app.inject({
    method: "PUT",
    url: "/v1/spec",
    payload: { clusters: { j: { cluster_password: "json-password", members: { a: { address: "192.0.2.21" } } } } },
  });
  t.is(res.statusCode, 200);
  t.regex(JSON.stringify(res.json()), /at least 3/, "the warning about a one-member cluster comes back");
});

test("clusters, plan and errors for unknown names", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const list = await getJson<{ name: string; phase: string; health: string }[]>(h, "/v1/clusters");
  t.deepEqual(list.body.map((c) => [c.name, c.phase]), [["c1", "pending"]]);
  const plan = await getJson<{ cluster: string; steps: { action: string; detail: string }[] }[]>(h, "/v1/plan");
  t.is(plan.body[0]!.steps[0]!.action, "wait");
  t.regex(plan.body[0]!.steps[0]!.detail, /agent of n1 \(bootstrap member\)/);
  const missing = await getJson<{ error: { code: string; message: string } }>(h, "/v1/clusters/nope");
  t.is(missing.status, 404);
  t.is(missing.body.error.code, ErrorCode.UnknownCluster);
  const route = await getJson<{ error: { code: string } }>(h, "/v1/nothing-here");
  t.is(route.status, 404);
  t.is(route.body.error.code, ErrorCode.NotFound);
});

test("request validation names the field and the problem", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const res = await h.coordinator.app.inject({ method: "POST", url: "/v1/clusters/c1/members/n1/evacuate", payload: { mode: "teleport", extra: 1 } });
  t.is(res.statusCode, 400);
  const body = res.json() as { error: { code: string; problems: { path: string; message: string }[] } };
  t.is(body.error.code, ErrorCode.BadRequest);
  t.true(body.error.problems.some((p) => p.path === "mode"), JSON.stringify(body));
  const badName = await h.coordinator.app.inject({ method: "GET", url: "/v1/clusters/bad.name" });
  t.is(badName.statusCode, 400);
  t.true((badName.json() as { error: { problems: { path: string }[] } }).error.problems.some((p) => p.path === "params.cluster"));
});

test("evacuating a member the cluster does not have is refused with the reason", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const res = await h.coordinator.app.inject({ method: "POST", url: "/v1/clusters/c1/members/n1/evacuate", payload: {} });
  t.is(res.statusCode, 404);
  t.is((res.json() as { error: { code: string } }).error.code, ErrorCode.UnknownMember);
});

test("with an API token, every route but health needs it", async (t) => {
  const h = await startCoordinator(t, { apiToken: "s3cret-api-token" });
  t.is((await getJson(h, "/v1/health")).status, 200);
  const denied = await getJson<{ error: { code: string } }>(h, "/v1/clusters");
  t.is(denied.status, 401);
  t.is(denied.body.error.code, ErrorCode.Unauthorized);
  t.is((await getJson(h, "/v1/clusters", { authorization: "Bearer wrong" })).status, 401);
  t.is((await getJson(h, "/v1/clusters", { authorization: "Bearer s3cret-api-token" })).status, 200);
  t.false(h.logs.some((l) => l.includes("s3cret-api-token")));
});

test("marking a member absent changes the spec and keeps the rest", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const res = await h.coordinator.app.inject({ method: "DELETE", url: "/v1/clusters/c1/members/n3?force=true" });
  t.is(res.statusCode, 202);
  const spec = await getJson<{ revision: number; spec: { clusters: { members: { name: string; present: boolean; force: boolean }[] }[] } }>(h, "/v1/spec");
  t.is(spec.body.revision, 2);
  t.deepEqual(spec.body.spec.clusters[0]!.members.map((m) => [m.name, m.present, m.force]), [
    ["n1", true, false],
    ["n2", true, false],
    ["n3", false, true],
  ]);
});
