import test from "ava";
import fc from "fast-check";
import { bootstrapMemberOf, ErrorCode, parseSpec, parseSpecText, SpecError, type Problem } from "../../shared/index.js";

const good = `
clusters:
  prod:
    cluster_password: correct-horse-battery
    server_settings:
      config:
        cluster.max_voters: 5
        cluster.max_standby: "2"
        cluster.offline_threshold: 120
    members:
      node1: { address: 192.0.2.11, failure_domain: rack1, groups: [compute] }
      node2: { address: "192.0.2.12:8443", description: second }
      node3: { address: 192.0.2.13 }
`;

function problemsOf(input: unknown): Problem[] {
  try {
    parseSpec(input);
  } catch (err) {
    if (err instanceof SpecError) return err.problems;
    throw err;
  }
  throw new Error("spec was accepted");
}

function problemsOfText(text: string): Problem[] {
  try {
    parseSpecText(text);
  } catch (err) {
    if (err instanceof SpecError) return err.problems;
    throw err;
  }
  throw new Error("spec was accepted");
}

test("a valid spec is normalized: default port, string settings, members in order", (t) => {
  const { spec, passwords, warnings } = parseSpecText(good);
  const prod = spec.clusters[0]!;
  t.is(prod.name, "prod");
  t.deepEqual(prod.members.map((m) => [m.name, m.address]), [
    ["node1", "192.0.2.11:8443"],
    ["node2", "192.0.2.12:8443"],
    ["node3", "192.0.2.13:8443"],
  ]);
  t.deepEqual(prod.config, { "cluster.max_voters": "5", "cluster.max_standby": "2", "cluster.offline_threshold": "120" });
  t.is(prod.members[0]!.failureDomain, "rack1");
  t.deepEqual(prod.members[1]!.groups, ["default"]);
  t.is(passwords.prod, "correct-horse-battery");
  t.deepEqual(warnings, [{ path: "clusters.prod.server_settings.config.cluster.max_voters", message: "5 voters wanted but only 3 members" }]);
  t.false(JSON.stringify(spec).includes("correct-horse-battery"), "the normalized spec holds no password");
});

test("without an explicit choice the first member bootstraps, whatever the order members enrol in", (t) => {
  const { spec } = parseSpecText(good);
  t.is(bootstrapMemberOf(spec.clusters[0]!).name, "node1");
  const chosen = parseSpecText(good.replace("    server_settings:", "    bootstrap: node3\n    server_settings:"));
  t.is(bootstrapMemberOf(chosen.spec.clusters[0]!).name, "node3");
});

test("the Salt pillar shape of the seed is accepted as one cluster", (t) => {
  const pillar = `
incus:
  server_settings:
    config:
      cluster.https_address: "192.0.2.11:8443"
      core.https_address: "[::]:8443"
      core.trust_password: "cluster-secret-password"
      cluster.max_voters: "3"
  cluster_members:
    node1:
      address: 192.0.2.11
      cluster_password: cluster-secret-password
    node2:
      address: 192.0.2.12
      cluster_password: cluster-secret-password
      description: Cluster node 2
    node3:
      address: 192.0.2.13
      cluster_password: cluster-secret-password
      description: Cluster node 3
  instances:
    ha-app:
      config: { migration.stateful: "true" }
`;
  const { spec, passwords, warnings } = parseSpecText(pillar);
  t.is(spec.clusters.length, 1);
  const c = spec.clusters[0]!;
  t.is(c.name, "default");
  t.is(passwords.default, "cluster-secret-password");
  t.is(c.bootstrap, "node1", "the member whose address is the pillar's cluster.https_address bootstraps");
  t.deepEqual(c.config, { "cluster.max_voters": "3" });
  t.is(c.members[1]!.description, "Cluster node 2");
  const paths = warnings.map((w) => w.path);
  t.true(paths.includes("incus.server_settings.config.core.trust_password"));
  t.true(paths.includes("incus.server_settings.config.core.https_address"));
  t.true(paths.includes("incus.instances"));
});

test("a bad spec is rejected as a whole, naming every path and problem", (t) => {
  const problems = problemsOfText(`
clusters:
  prod:
    bootstrap: node9
    server_settings:
      config:
        cluster.max_voters: 4
        cluster.max_standby: 7
    members:
      node1: { address: 192.0.2.11 }
      node2: { address: "192.0.2.11:8443" }
      node3: { address: "0.0.0.0" }
`);
  const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]));
  t.regex(byPath["clusters.prod.cluster_password"] ?? "", /missing cluster_password/);
  t.regex(byPath["clusters.prod.bootstrap"] ?? "", /unknown member 'node9'/);
  t.regex(byPath["clusters.prod.server_settings.config.cluster.max_voters"] ?? "", /must be odd/);
  t.regex(byPath["clusters.prod.server_settings.config.cluster.max_standby"] ?? "", /between 0 and 5/);
  t.regex(byPath["clusters.prod.members.node2.address"] ?? "", /duplicate address 192\.0\.2\.11:8443/);
  t.regex(byPath["clusters.prod.members.node3.address"] ?? "", /wildcard/);
});

test("max_voters below 3 is refused with the reason", (t) => {
  const problems = problemsOfText(good.replace("cluster.max_voters: 5", "cluster.max_voters: 1"));
  t.deepEqual(problems.map((p) => p.path), ["clusters.prod.server_settings.config.cluster.max_voters"]);
  t.regex(problems[0]!.message, /at least 3/);
});

test("structural mistakes name the field: unknown keys, wrong types, bad names", (t) => {
  const problems = problemsOf({
    clusters: { "bad name": { cluster_password: "long-enough-pw", members: { node1: { address: "192.0.2.11", colour: "red" } } } },
  });
  t.true(problems.some((p) => p.path === "clusters.bad name.members.node1" && /unknown field 'colour'/.test(p.message)), JSON.stringify(problems));
  const typed = problemsOf({ clusters: { prod: { cluster_password: "long-enough-pw", members: { node1: { address: 11 } } } } });
  t.true(typed.some((p) => p.path === "clusters.prod.members.node1.address" && /must be string/.test(p.message)), JSON.stringify(typed));
});

test("YAML syntax errors and unrendered templates are reported, not guessed at", (t) => {
  t.regex(problemsOfText("clusters: [unclosed")[0]!.message, /not valid YAML/);
  const templated = problemsOfText(good.replace("correct-horse-battery", "\"{{ pillar['cluster_password'] }}\""));
  t.true(templated.some((p) => p.path === "clusters.prod.cluster_password" && /unrendered Salt\/Jinja template/.test(p.message)));
});

test("pillar members that disagree on the password are refused", (t) => {
  const problems = problemsOf({
    incus: { cluster_members: { a1: { address: "192.0.2.11", cluster_password: "one-password" }, a2: { address: "192.0.2.12", cluster_password: "another-one" } } },
  });
  t.true(problems.some((p) => p.path === "incus.cluster_members.a2.cluster_password" && /different cluster password than incus\.cluster_members\.a1\.cluster_password/.test(p.message)), JSON.stringify(problems));
});

test("an address used in two clusters is a duplicate", (t) => {
  const problems = problemsOf({
    clusters: {
      a: { cluster_password: "password-a", members: { n1: { address: "192.0.2.11" } } },
      b: { cluster_password: "password-b", members: { n1: { address: "192.0.2.11:8443" } } },
    },
  });
  t.true(problems.some((p) => p.path === "clusters.b.members.n1.address" && /already used by clusters\.a\.members\.n1/.test(p.message)));
});

test("warnings flag an even member count and too few members", (t) => {
  const four = parseSpec({ clusters: { c: { cluster_password: "password-c", members: { a: { address: "192.0.2.1" }, b: { address: "192.0.2.2" }, d: { address: "192.0.2.3" }, e: { address: "192.0.2.4" } } } } });
  t.regex(four.warnings[0]!.message, /even count/);
  const two = parseSpec({ clusters: { c: { cluster_password: "password-c", members: { a: { address: "192.0.2.1" }, b: { address: "192.0.2.2" } } } } });
  t.regex(two.warnings[0]!.message, /at least 3/);
});

test("the rejection is a SpecError with a stable code", (t) => {
  const err = t.throws(() => parseSpec({}), { instanceOf: SpecError });
  t.is(err?.code, ErrorCode.SpecInvalid);
  t.is(err?.httpStatus, 400);
});

test("force only goes with an absent member", (t) => {
  const problems = problemsOf({ clusters: { c: { cluster_password: "password-c", members: { a: { address: "192.0.2.1", force: true } } } } });
  t.deepEqual(problems.map((p) => p.path), ["clusters.c.members.a.force"]);
});

test("property: whatever document comes in, the parser answers a spec or a SpecError naming where, never anything else", (t) => {
  const key = fc.constantFrom("clusters", "incus", "incus_bootstrap", "incus_cluster", "members", "cluster_members", "cluster_password", "address", "server_settings", "config", "storage_pools", "networks", "driver", "type", "present", "force", "member_config", "bootstrap", "prod", "node1", "node2", "incus.cluster_member_present", "incus.cluster_member_absent", "name", "cluster.https_address", "__proto__", "constructor");
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: "small" }, fc.jsonValue({ maxDepth: 2 }), fc.dictionary(key, tie("node"), { maxKeys: 4 }), fc.array(tie("node"), { maxLength: 3 })),
  })).node;
  fc.assert(
    fc.property(fc.oneof(value, fc.dictionary(key, value, { maxKeys: 4 })), (doc) => {
      try {
        parseSpec(doc);
      } catch (err) {
        if (!(err instanceof SpecError)) throw err;
        if (err.problems.some((p) => typeof p.path !== "string" || p.path === "" || typeof p.message !== "string" || p.message === "")) throw new Error(`a problem without a place or a message: ${JSON.stringify(err.problems)}`);
      }
    }),
    { numRuns: 2_000 },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (text) => {
      try {
        parseSpecText(text);
      } catch (err) {
        if (!(err instanceof SpecError)) throw err;
      }
    }),
    { numRuns: 1_000 },
  );
  t.pass();
});
