import test from "ava";
import { connect as connectTcp } from "node:net";
import fc from "fast-check";
import { parse as parseYaml } from "yaml";
import { ErrorCode } from "../../shared/index.js";
import { api, getJson, putSpec, startCoordinator, threeMembers, type CoordinatorHarness } from "../helpers/coordinator.js";

type Problems = { path: string; message: string }[];

/** One raw HTTP exchange over TCP, for what `inject()` cannot send (oversized headers, a broken request line). */
function rawHttp(h: CoordinatorHarness, request: string): Promise<string> {
  const url = new URL(h.coordinator.url);
  return new Promise((resolve, reject) => {
    const socket = connectTcp(Number(url.port), url.hostname, () => socket.write(request));
    let answer = "";
    socket.on("data", (d) => (answer += d.toString()));
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer")));
  });
}

function errorOf(r: { body: { error?: { code: string; message: string; problems?: Problems } } }) {
  if (!r.body.error) throw new Error(`no error in ${JSON.stringify(r.body)}`);
  return r.body.error;
}

test("a spec round-trips without its secrets, as JSON and as YAML that parses back to the same spec", async (t) => {
  const h = await startCoordinator(t);
  const applied = await putSpec(h, threeMembers());
  t.is(applied.status, 200);
  t.is(applied.body.revision, 1);
  const json = await api(h, "GET", "/v1/spec");
  t.false(json.text.includes("integration-password"));
  t.false(/"(mac|seal|keys)"/.test(json.text), "no derived key is served either");
  const body = json.body as unknown as { revision: number; spec: { clusters: { name: string; members: { name: string; address: string }[] }[] } };
  t.deepEqual(body.spec.clusters[0]!.members.map((m) => m.address), ["192.0.2.11:8443", "192.0.2.12:8443", "192.0.2.13:8443"]);
  const yaml = await api(h, "GET", "/v1/spec?format=yaml");
  t.regex(String(yaml.headers["content-type"]), /yaml/);
  t.false(yaml.text.includes("integration-password"));
  t.truthy(parseYaml(yaml.text), "the export is YAML");
  const again = await putSpec(h, yaml.text);
  t.is(again.status, 200, JSON.stringify(again.body));
  t.deepEqual((await api(h, "GET", "/v1/spec")).body.spec, body.spec, "re-applying the export changes nothing (the stored password is kept)");
});

test("a bad spec is refused with every problem named, and the stored spec is left as it was", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const before = (await api(h, "GET", "/v1/spec")).text;
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
  t.is(errorOf(bad).code, ErrorCode.SpecInvalid);
  t.deepEqual(errorOf(bad).problems!.map((p) => p.path).sort(), ["clusters.c1.bootstrap", "clusters.c1.members.n2.address", "clusters.c1.server_settings.config.cluster.max_voters"]);
  t.regex(errorOf(bad).message, /^spec rejected: /);
  const shape = await putSpec(h, "clusters:\n  c1:\n    members: nope\n");
  t.is(shape.status, 400);
  t.true(errorOf(shape).problems!.some((p) => p.path === "clusters.c1.members"), JSON.stringify(shape.body));
  const yaml = await putSpec(h, "clusters: [");
  t.is(yaml.status, 400);
  t.regex(errorOf(yaml).message, /YAML/);
  const empty = await putSpec(h, "");
  t.is(empty.status, 400);
  t.regex(errorOf(empty).message, /empty/);
  t.is((await api(h, "GET", "/v1/spec")).text, before, "nothing stored was lost or half-applied");
});

test("documents are read strictly: a key given twice, bytes that are not UTF-8 and absurd nesting are refused by place", async (t) => {
  const h = await startCoordinator(t);
  const twice = await putSpec(h, `${threeMembers()}      n1: { address: 192.0.2.14 }\n`);
  t.is(twice.status, 400);
  t.true(errorOf(twice).problems!.some((p) => p.path === "clusters.c1.members.n1" && /more than once/.test(p.message)), JSON.stringify(twice.body));

  const jsonTwice = await api(h, "PUT", "/v1/spec", { payload: '{"clusters":{"c1":{"cluster_password":"a-long-password","cluster_password":"another-one","members":{}}}}', headers: { "content-type": "application/json" } });
  t.is(jsonTwice.status, 400);
  t.true(errorOf(jsonTwice).problems!.some((p) => p.path === "clusters.c1.cluster_password"), JSON.stringify(jsonTwice.body));

  const latin1 = Buffer.concat([Buffer.from("clusters:\n  c1:\n    description: caf"), Buffer.from([0xe9]), Buffer.from("\n")]);
  const bytes = await api(h, "PUT", "/v1/spec", { payload: latin1, headers: { "content-type": "application/yaml" } });
  t.is(bytes.status, 400);
  t.regex(errorOf(bytes).message, /UTF-8/);
  t.true(errorOf(bytes).problems!.some((p) => p.path === "clusters.c1.description"), JSON.stringify(bytes.body));

  const deep = await api(h, "PUT", "/v1/spec", { payload: `${"[".repeat(5_000)}${"]".repeat(5_000)}`, headers: { "content-type": "application/json" } });
  t.is(deep.status, 400);
  t.regex(errorOf(deep).message, /deep|nest/i);

  const huge = await api(h, "PUT", "/v1/spec", { payload: `# ${"x".repeat(600 * 1024)}\n`, headers: { "content-type": "application/yaml" } });
  t.is(huge.status, 413);
  t.is(errorOf(huge).code, ErrorCode.PayloadTooLarge);

  const type = await api(h, "PUT", "/v1/spec", { payload: "clusters: {}", headers: { "content-type": "text/plain" } });
  t.is(type.status, 415);
  t.truthy(errorOf(type).code);
  t.is((await api(h, "GET", "/v1/spec")).body.revision, 0, "nothing was stored");
});

test("a dry run answers with the plan and stores nothing; If-Match refuses a write based on an old revision", async (t) => {
  const h = await startCoordinator(t);
  const dry = await putSpec(h, threeMembers(), {}, "?dry_run=true");
  t.is(dry.status, 200);
  t.is(dry.body.dryRun, true);
  const plans = dry.body.plans as { cluster: string; changes: { object: string; action: string }[] }[];
  t.is(plans[0]!.cluster, "c1");
  t.true(plans[0]!.changes.length > 0, "the plan lists what would be done");
  t.is((await api(h, "GET", "/v1/spec")).body.revision, 0);

  await putSpec(h, threeMembers());
  t.is((await putSpec(h, threeMembers(), { "if-match": "1" })).status, 200);
  const stale = await putSpec(h, threeMembers(), { "if-match": "1" });
  t.is(stale.status, 409);
  t.is(errorOf(stale).code, ErrorCode.SpecConflict);
  const junk = await putSpec(h, threeMembers(), { "if-match": "yesterday" });
  t.is(junk.status, 400);
  t.true(errorOf(junk).problems!.some((p) => p.path.includes("if-match")), JSON.stringify(junk.body));
});

test("a new cluster without a password is refused by field; a later spec may leave the password out and keeps it", async (t) => {
  const h = await startCoordinator(t);
  const none = await putSpec(h, threeMembers().replace(/ *cluster_password: .*\n/, ""));
  t.is(none.status, 400);
  t.true(errorOf(none).problems!.some((p) => p.path === "clusters.c1.cluster_password"), JSON.stringify(none.body));
  await putSpec(h, threeMembers());
  t.is((await putSpec(h, threeMembers().replace(/ *cluster_password: .*\n/, ""))).status, 200);
  t.true(h.coordinator.specs.knownClusters().has("c1"), "the keys of the first password are still there");
});

test("clusters, plan and unknown names answer in the one error shape", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const list = await getJson<{ name: string; phase: string }[]>(h, "/v1/clusters");
  t.deepEqual(list.body.map((c) => c.name), ["c1"]);
  const plan = await getJson<{ cluster: string; changes: { object: string }[] }[]>(h, "/v1/clusters/c1/plan");
  t.is(plan.status, 200);
  t.is(plan.body[0]!.cluster, "c1");
  const missing = await api(h, "GET", "/v1/clusters/nope");
  t.is(missing.status, 404);
  t.is(errorOf(missing).code, ErrorCode.UnknownCluster);
  const route = await api(h, "GET", "/v1/nothing-here");
  t.is(route.status, 404);
  t.is(errorOf(route).code, ErrorCode.NotFound);
  const method = await api(h, "PATCH", "/v1/spec", { payload: "{}", headers: { "content-type": "application/json" } });
  t.true(method.status === 404 || method.status === 405);
  t.truthy(errorOf(method).code);
  const op = await api(h, "GET", "/v1/operations/not-an-operation");
  t.true(op.status === 404 || op.status === 400);
  t.truthy(errorOf(op).code);
});

test("request validation names the field and the problem", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const res = await api(h, "POST", "/v1/clusters/c1/members/n1/evacuate", { payload: { mode: "teleport", extra: 1 } });
  t.is(res.status, 400);
  t.is(errorOf(res).code, ErrorCode.BadRequest);
  t.true(errorOf(res).problems!.some((p) => p.path === "mode"), JSON.stringify(res.body));
  t.true(errorOf(res).problems!.some((p) => /extra/.test(p.message)), JSON.stringify(res.body));
  const badName = await api(h, "GET", "/v1/clusters/bad.name");
  t.is(badName.status, 400);
  t.true(errorOf(badName).problems!.some((p) => p.path === "params.cluster"));
  const rollout = await api(h, "POST", "/v1/clusters/c1/rollouts", { payload: { members: [], settleMs: -1 } });
  t.is(rollout.status, 400);
  t.true(errorOf(rollout).problems!.some((p) => p.path === "members"), JSON.stringify(rollout.body));
  const long = await api(h, "GET", `/v1/clusters/${"a".repeat(300)}`);
  t.is(long.status, 414, "a parameter longer than any name is refused, not a 500");
  t.truthy(errorOf(long).code);
  const encoding = await api(h, "GET", "/v1/clusters/%zz");
  t.is(encoding.status, 400);
  t.truthy(errorOf(encoding).code);
});

test("actions on a cluster that is not formed are refused with the reason, and nothing is started", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const unknown = await api(h, "POST", "/v1/clusters/c1/members/n9/evacuate", { payload: {} });
  t.is(unknown.status, 404);
  t.is(errorOf(unknown).code, ErrorCode.UnknownMember);
  const named = await api(h, "POST", "/v1/clusters/c1/rollouts", { payload: { members: ["n1", "n9"] } });
  t.is(named.status, 404);
  t.true(errorOf(named).problems!.some((p) => p.path === "members" && /n9/.test(p.message)));
  const notFormed = await api(h, "POST", "/v1/clusters/c1/members/n1/evacuate", { payload: {} });
  t.is(notFormed.status, 503);
  t.is(errorOf(notFormed).code, ErrorCode.Unavailable);
  t.regex(errorOf(notFormed).message, /not known yet/);
  const rollout = await api(h, "POST", "/v1/clusters/c1/rollouts", { payload: {} });
  t.is(rollout.status, 503);
  t.deepEqual((await api(h, "GET", "/v1/operations")).body, [] as unknown as Record<string, unknown>, "no operation was started");
});

test("with the API token, every routed path but health, metrics and the page needs it, however the path is spelled", async (t) => {
  const h = await startCoordinator(t);
  const bare = (url: string, headers: Record<string, string> = {}) => h.coordinator.app.inject({ method: "GET", url, headers });
  t.is((await bare("/v1/health")).statusCode, 200);
  t.is((await bare("/metrics")).statusCode, 200);
  t.is((await bare("/")).statusCode, 200);
  for (const path of ["/v1/clusters", "/v1/spec", "/v1/events", "/v1/operations", "/v1/nodes", "//v1/clusters", "/v1/health/../spec", "/v1/health/%2e%2e/spec", "/v1/clusters?x=/v1/health", "/V1/CLUSTERS", "/v1/health/", "/nothing"]) {
    const res = await bare(path);
    t.true(res.statusCode === 401 || (res.statusCode === 404 && path === "/v1/health/"), `${path} answered ${res.statusCode} without the token`);
    t.false(res.body.includes("c1") && res.statusCode === 200);
  }
  const denied = await bare("/v1/clusters");
  t.is((denied.json() as { error: { code: string } }).error.code, ErrorCode.Unauthorized);
  t.is((await bare("/v1/clusters", { authorization: "Bearer wrong" })).statusCode, 401);
  t.is((await bare("/v1/clusters", { authorization: `Basic ${h.token}` })).statusCode, 401);
  t.is((await bare("/v1/clusters", { authorization: `Bearer ${h.token}` })).statusCode, 200);
  t.false(h.logs.some((l) => l.includes(h.token)), "the token is in no log line");
});

test("requests the HTTP parser refuses are answered in the same error shape", async (t) => {
  const h = await startCoordinator(t);
  const big = await rawHttp(h, `GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
  t.regex(big, /^HTTP\/1.1 431/);
  t.regex(big, /"code":"/);
  const broken = await rawHttp(h, "THIS IS NOT HTTP\r\n\r\n");
  t.regex(broken, /^HTTP\/1.1 400/);
  t.regex(broken, /"error":\{"code":"/);
});

test("a marked-absent member changes the spec and keeps the rest; forgetting an identity answers what was forgotten", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, `${threeMembers()}      n4: { address: 192.0.2.14 }\n`);
  const res = await api(h, "DELETE", "/v1/clusters/c1/members/n4?force=true");
  t.is(res.status, 202, JSON.stringify(res.body));
  const spec = await getJson<{ revision: number; spec: { clusters: { members: { name: string; present: boolean; force: boolean }[] }[] } }>(h, "/v1/spec");
  t.is(spec.body.revision, 2);
  t.deepEqual(spec.body.spec.clusters[0]!.members.map((m) => [m.name, m.present, m.force]), [
    ["n1", true, false],
    ["n2", true, false],
    ["n3", true, false],
    ["n4", false, true],
  ]);
  const unknown = await api(h, "DELETE", "/v1/clusters/c1/members/n9");
  t.is(unknown.status, 404);
  t.is(errorOf(unknown).code, ErrorCode.UnknownMember);
  t.is((await getJson<{ revision: number }>(h, "/v1/spec")).body.revision, 2, "and nothing was stored");
  const forgot = await api(h, "DELETE", "/v1/clusters/c1/members/n1/identity");
  t.is(forgot.status, 200);
  t.is(forgot.body.forgotten, false, "nothing was pinned yet");
});

test("no request, however malformed, is answered with a 500", async (t) => {
  const h = await startCoordinator(t);
  await putSpec(h, threeMembers());
  const segment = fc.oneof(fc.constantFrom("v1", "clusters", "c1", "members", "n1", "evacuate", "restore", "rollouts", "operations", "spec", "events", "identity", "plan", "cancel", "pause", "resume", "..", "%00", "%zz", ""), fc.string({ maxLength: 12 }).map(encodeURIComponent));
  const body = fc.oneof(fc.json(), fc.string({ maxLength: 200 }), fc.constant("{"), fc.jsonValue().map((v) => JSON.stringify({ clusters: v })), fc.uint8Array({ maxLength: 100 }).map((a) => Buffer.from(a)));
  await fc.assert(
    fc.asyncProperty(fc.constantFrom("GET", "PUT", "POST", "DELETE") as fc.Arbitrary<"GET" | "PUT" | "POST" | "DELETE">, fc.array(segment, { minLength: 1, maxLength: 6 }), fc.constantFrom("", "?force=true", "?dry_run=1", "?after=-1", "?limit=1e9", "?cluster=%ff", "?format=xml"), body, fc.constantFrom("application/json", "application/yaml", "text/plain"), async (method, segments, query, payload, contentType) => {
      const res = await api(h, method, `/${segments.join("/")}${query}`, method === "GET" || method === "DELETE" ? {} : { payload, headers: { "content-type": contentType } });
      if (res.status >= 500) throw new Error(`${method} /${segments.join("/")}${query} answered ${res.status}: ${res.text}`);
      if (res.status >= 400 && !res.body.error?.code) throw new Error(`${method} /${segments.join("/")} answered ${res.status} outside the error shape: ${res.text}`);
    }),
    { numRuns: 400 },
  );
  t.pass();
});
