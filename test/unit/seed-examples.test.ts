import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { bootstrapMemberOf, ErrorCode, parseSpecText, placeholderName, SpecError, type ClusterSpec, type ParseOptions, type Problem } from "../../shared/index.js";

/**
 * Every YAML example of the seed document (the Salt formula's cluster guide),
 * kept verbatim under test/fixtures/seed/, through the spec parser: each is
 * either accepted and forms the cluster it describes, or refused with a
 * message that says what to add. Templates are rendered here by plain
 * substitution, with lab addresses, the way Salt would render them.
 */

// Tests run from dist/test/unit/, the fixtures stay in the source tree.
const FIXTURES = new URL("../../../test/fixtures/seed/", import.meta.url);

function fixture(number: number): string {
  const prefix = `${String(number).padStart(2, "0")}-`;
  const name = readdirSync(FIXTURES).find((f) => f.startsWith(prefix));
  if (!name) throw new Error(`no fixture ${prefix}*`);
  return readFileSync(new URL(name, FIXTURES), "utf8");
}

/** A "best practices" fragment as a document of its own: the list item's indentation taken off. */
function dedent(text: string): string {
  const lines = text.split("\n");
  const indents = lines.filter((l) => l.trim() !== "" && !l.startsWith("#")).map((l) => l.length - l.trimStart().length);
  const cut = Math.min(...indents);
  return lines.map((l) => (l.startsWith(" ".repeat(cut)) ? l.slice(cut) : l)).join("\n");
}

/** Puts a top-level fragment under the pillar's `incus:` key. */
function underIncus(text: string): string {
  return `incus:\n${text
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .map((l) => (l.trim() === "" ? l : `  ${l}`))
    .join("\n")}`;
}

/** What Salt's rendering does to a template here: each placeholder replaced, and every one of them must be there. */
function render(text: string, values: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(values)) {
    if (!out.includes(from)) throw new Error(`'${from}' is not in the text to render`);
    out = out.replaceAll(from, to);
  }
  return out;
}

function refusal(text: string, options?: ParseOptions): Problem[] {
  try {
    parseSpecText(text, options);
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    if (err.code !== ErrorCode.SpecInvalid) throw new Error(`code ${err.code}`);
    return err.problems;
  }
  throw new Error("spec was accepted");
}

/** The members as [name, address, present, named]. */
function membersOf(c: ClusterSpec): [string, string, boolean, boolean][] {
  return c.members.map((m) => [m.name, m.address, m.present, m.named]);
}

const TEMPLATE_MESSAGE = /render the pillar first: salt '\*' pillar\.items --out=yaml/;
const UNDER_INCUS = /belongs under the pillar's 'incus:' key/;

/** The seed's Basic 3-Node Cluster, rendered: node1 at 192.0.2.11 bootstraps, node2 and node3 join. */
const BASIC_PASSWORD = "basic-cluster-secret";
function basicRendered(): string {
  return render(fixture(5), {
    "192.168.1.101": "192.0.2.11",
    "192.168.1.102": "192.0.2.12",
    "192.168.1.103": "192.0.2.13",
    "{{ pillar['cluster_secret'] }}": BASIC_PASSWORD,
  });
}
const BASIC_BOOTSTRAP = "unnamed-192-0-2-11-8443";

test("the fixtures are the seed's 15 YAML examples, each headed by its seed section", (t) => {
  const names = readdirSync(FIXTURES).filter((f) => f.endsWith(".yaml")).sort();
  t.is(names.length, 15);
  names.forEach((name, i) => {
    t.true(name.startsWith(`${String(i + 1).padStart(2, "0")}-`), name);
    t.regex(readFileSync(new URL(name, FIXTURES), "utf8").split("\n")[0]!, /^# Seed section: \S/, name);
  });
});

test("as the seed gives them, every example is refused with FLEET_SPEC_INVALID and a path and message for each problem", (t) => {
  for (let n = 1; n <= 15; n++) {
    const text = n >= 11 ? dedent(fixture(n)) : fixture(n);
    const err = t.throws(() => parseSpecText(text), { instanceOf: SpecError }, `example ${n}`);
    t.is(err?.code, "FLEET_SPEC_INVALID");
    t.true((err?.problems.length ?? 0) > 0);
    for (const p of err?.problems ?? []) t.true(p.path !== "" && p.message !== "", `example ${n}: ${JSON.stringify(p)}`);
  }
});

test("example 1, a cluster_member_present state alone, is refused: it names the bootstrap host to add beside it", (t) => {
  const problems = refusal(fixture(1));
  t.deepEqual(problems.map((p) => p.path), ["incus"]);
  t.regex(problems[0]!.message, /no bootstrap host/);
  t.regex(problems[0]!.message, /add an 'incus:' key beside them with server_settings\.config\.cluster\.https_address/);

  // Done as the message says: node2 joins the host that bootstraps.
  const { spec, passwords } = parseSpecText(`${fixture(1)}incus:\n  server_settings:\n    config:\n      cluster.https_address: "192.0.2.11:8443"\n`);
  const c = spec.clusters[0]!;
  t.deepEqual(membersOf(c), [
    [BASIC_BOOTSTRAP, "192.0.2.11:8443", true, false],
    ["node2", "192.168.1.102:8443", true, true],
  ]);
  t.is(c.bootstrap, BASIC_BOOTSTRAP);
  t.is(passwords.default, "secret123");
});

test("example 2, a lone cluster_member_absent state, is refused: a cluster needs the members that stay and its password", (t) => {
  const problems = refusal(fixture(2));
  t.deepEqual(problems.map((p) => p.path), ["incus.cluster_members", "incus.cluster_members"]);
  t.regex(problems[0]!.message, /missing cluster_password: add cluster_password to the cluster_members entries or the incus\.cluster_member_present states/);
  t.regex(problems[1]!.message, /every member is marked absent.*add the members that stay/);

  // Even for a cluster whose password the coordinators hold, a removal alone leaves nothing to keep.
  const known = refusal(fixture(2), { knownClusters: new Set(["default"]) });
  t.deepEqual(known, [problems[1]!]);
});

test("example 3, the bootstrap node's pillar, is refused until rendered; rendered, it forms a one-member cluster at its address", (t) => {
  const problems = refusal(fixture(3));
  t.deepEqual(problems.map((p) => p.path), ["incus.server_settings.config.cluster.https_address"]);
  t.regex(problems[0]!.message, TEMPLATE_MESSAGE);

  const { spec, passwords, warnings } = parseSpecText(render(fixture(3), { "{{ grains['ipv4'][0] }}": "192.0.2.11" }));
  const c = spec.clusters[0]!;
  t.deepEqual(membersOf(c), [[BASIC_BOOTSTRAP, "192.0.2.11:8443", true, false]]);
  t.is(c.bootstrap, BASIC_BOOTSTRAP);
  t.deepEqual(c.config, {}, "the listener keys are set per member and the trust password becomes the cluster password");
  t.is(passwords.default, "cluster-secret-password");
  t.true(warnings.some((w) => w.path === "incus.server_settings.config.core.trust_password"));
  t.true(warnings.some((w) => w.path === "incus.cluster_members" && /1 member\(s\)/.test(w.message)));
});

test("example 4, the joining nodes' pillar, is refused: it names cluster.https_address (the bootstrap host) to add", (t) => {
  const problems = refusal(fixture(4));
  t.deepEqual(problems.map((p) => p.path), ["incus"]);
  t.regex(problems[0]!.message, /no bootstrap host: add server_settings\.config\.cluster\.https_address/);
  t.regex(problems[0]!.message, /'bootstrap: <member>'/);
});

test("examples 3 and 4 as salt '*' pillar.items gives them (Step 1 on node1, Step 2 on node2) form one cluster, node1 bootstrapping", (t) => {
  const step1 = render(fixture(3), { "{{ grains['ipv4'][0] }}": "192.0.2.11" });
  const minions = `node1:\n${step1.replace(/^/gm, "  ")}\nnode2:\n${fixture(4).replace(/^/gm, "  ")}`;
  const { spec, passwords, shape } = parseSpecText(minions);
  t.is(shape, "minions");
  const c = spec.clusters[0]!;
  t.deepEqual(membersOf(c), [
    ["node1", "192.0.2.11:8443", true, true],
    ["node2", "192.168.1.102:8443", true, true],
  ]);
  t.is(c.bootstrap, "node1");
  t.is(passwords.default, "cluster-secret-password", "the trust password of Step 1 and the members' password agree");
});

test("example 5, the Basic 3-Node Cluster, is refused until its password template is rendered", (t) => {
  const problems = refusal(fixture(5));
  t.deepEqual(problems.map((p) => p.path), ["incus_cluster.cluster_members.node2.cluster_password", "incus_cluster.cluster_members.node3.cluster_password"]);
  for (const p of problems) t.regex(p.message, TEMPLATE_MESSAGE);
});

test("(a) the Basic 3-Node Cluster rendered forms 3 members; the host at cluster.https_address bootstraps, unnamed until its agent enrolls", (t) => {
  const { spec, passwords, warnings, shape } = parseSpecText(basicRendered());
  t.is(shape, "pillar");
  t.is(spec.clusters.length, 1);
  const c = spec.clusters[0]!;
  t.is(c.name, "default");
  t.is(BASIC_BOOTSTRAP, placeholderName("192.0.2.11:8443"));
  t.deepEqual(membersOf(c), [
    [BASIC_BOOTSTRAP, "192.0.2.11:8443", true, false],
    ["node2", "192.0.2.12:8443", true, true],
    ["node3", "192.0.2.13:8443", true, true],
  ]);
  t.deepEqual(c.members.map((m) => m.description), ["", "Cluster node 2", "Cluster node 3"]);
  t.is(c.bootstrap, BASIC_BOOTSTRAP);
  t.is(bootstrapMemberOf(c).address, "192.0.2.11:8443");
  t.deepEqual(c.config, {});
  t.deepEqual(c.pools, []);
  t.deepEqual(c.networks, []);
  t.is(passwords.default, BASIC_PASSWORD);
  t.deepEqual(
    warnings.map((w) => w.path),
    [
      "incus_bootstrap.server_settings.config.cluster.https_address",
      "incus_bootstrap.server_settings.config.cluster.https_address",
      "incus_bootstrap.server_settings.config.core.https_address",
    ],
  );
  t.regex(warnings[0]!.message, /takes the name of the agent that enrolls from that address/);
});

test("(b) the Basic 3-Node Cluster per minion (salt '*' pillar.items): minion ids name the members, node1 bootstraps", (t) => {
  const bootstrapPart = `incus_bootstrap:\n  server_settings:\n    config:\n      cluster.https_address: "192.0.2.11:8443"\n      core.https_address: "[::]:8443"\n`;
  const joinPart = `incus_cluster:\n  cluster_members:\n    node2: { address: 192.0.2.12, cluster_password: ${BASIC_PASSWORD} }\n    node3: { address: 192.0.2.13, cluster_password: ${BASIC_PASSWORD} }\n`;
  const indent = (s: string) => s.replace(/^(?=.)/gm, "  ");
  const expected: [string, string, boolean, boolean][] = [
    ["node1", "192.0.2.11:8443", true, true],
    ["node2", "192.0.2.12:8443", true, true],
    ["node3", "192.0.2.13:8443", true, true],
  ];

  const targeted = parseSpecText(`node1:\n  cluster_secret: ${BASIC_PASSWORD}\n${indent(bootstrapPart)}node2:\n${indent(joinPart)}node3:\n${indent(joinPart)}`);
  t.is(targeted.shape, "minions");
  t.deepEqual(membersOf(targeted.spec.clusters[0]!), expected);
  t.is(targeted.spec.clusters[0]!.bootstrap, "node1");
  t.is(targeted.passwords.default, BASIC_PASSWORD);

  // The whole pillar given to every minion, in whatever order they answer: the bootstrap host is still the one minion not listed.
  const everywhere = indent(bootstrapPart + joinPart);
  const shared = parseSpecText(`node3:\n${everywhere}node2:\n${everywhere}node1:\n${everywhere}`);
  t.deepEqual(membersOf(shared.spec.clusters[0]!), expected);
  t.is(shared.spec.clusters[0]!.bootstrap, "node1");
});

test("example 6, the Large Cluster, is refused until its address and password templates are rendered", (t) => {
  const problems = refusal(fixture(6));
  t.deepEqual(problems.map((p) => p.path), [
    "incus.server_settings.config.cluster.https_address",
    "incus.cluster_members.node-02.cluster_password",
    "incus.cluster_members.node-03.cluster_password",
    "incus.cluster_members.node-04.cluster_password",
    "incus.cluster_members.node-05.cluster_password",
  ]);
  for (const p of problems) t.regex(p.message, TEMPLATE_MESSAGE);
});

const LARGE_SETTINGS = {
  "cluster.offline_threshold": "120",
  "cluster.images_minimal_replica": "3",
  "cluster.max_voters": "5",
  "cluster.max_standby": "2",
  "cluster.healing_threshold": "0",
};

function largeRendered(ownAddress: string): string {
  return render(fixture(6), { "{{ grains['ipv4'][0] }}": ownAddress, "172.16.0.10": "198.51.100.10", "{{ pillar['cluster_password'] }}": "large-cluster-secret" });
}

test("(d) the Large Cluster rendered forms 5 members with its settings, the host at cluster.https_address bootstrapping", (t) => {
  const { spec, passwords, warnings } = parseSpecText(largeRendered("198.51.100.101"));
  const c = spec.clusters[0]!;
  const bootstrap = placeholderName("198.51.100.101:8443");
  t.deepEqual(membersOf(c), [
    [bootstrap, "198.51.100.101:8443", true, false],
    ["node-02", "198.51.100.102:8443", true, true],
    ["node-03", "198.51.100.103:8443", true, true],
    ["node-04", "198.51.100.104:8443", true, true],
    ["node-05", "198.51.100.105:8443", true, true],
  ]);
  t.is(c.bootstrap, bootstrap);
  t.deepEqual(c.config, LARGE_SETTINGS);
  t.is(passwords.default, "large-cluster-secret");
  t.false(warnings.some((w) => /voters wanted|even count|member\(s\)/.test(w.message)), JSON.stringify(warnings));
});

test("(d) the Large Cluster rendered per minion, each with its own cluster.https_address, forms the same 5 members with node-01 bootstrapping", (t) => {
  const minions = [1, 2, 3, 4, 5].map((i) => `node-0${i}:\n${largeRendered(`198.51.100.10${i}`).replace(/^(?=.)/gm, "  ")}`).join("");
  const { spec, shape } = parseSpecText(minions);
  t.is(shape, "minions");
  const c = spec.clusters[0]!;
  t.deepEqual(membersOf(c), [
    ["node-01", "198.51.100.101:8443", true, true],
    ["node-02", "198.51.100.102:8443", true, true],
    ["node-03", "198.51.100.103:8443", true, true],
    ["node-04", "198.51.100.104:8443", true, true],
    ["node-05", "198.51.100.105:8443", true, true],
  ]);
  t.is(c.bootstrap, "node-01");
  t.deepEqual(c.config, LARGE_SETTINGS);
});

test("example 7, the Hybrid Cluster, is refused until rendered, then because it names no bootstrap host; with one it forms its 5 members", (t) => {
  const problems = refusal(fixture(7));
  t.deepEqual(problems.map((p) => p.path), ["compute-01", "compute-02", "storage-01", "storage-02", "network-01"].map((n) => `incus.cluster_members.${n}.cluster_password`));
  for (const p of problems) t.regex(p.message, TEMPLATE_MESSAGE);

  const rendered = render(fixture(7), { "{{ pillar['cluster_password'] }}": "hybrid-cluster-secret" });
  const unbootstrapped = refusal(rendered);
  t.deepEqual(unbootstrapped.map((p) => p.path), ["incus"]);
  t.regex(unbootstrapped[0]!.message, /no bootstrap host: add server_settings\.config\.cluster\.https_address.*or 'bootstrap: <member>'/);

  const { spec } = parseSpecText(`${rendered}  bootstrap: compute-01\n`);
  const c = spec.clusters[0]!;
  t.deepEqual(membersOf(c), [
    ["compute-01", "10.0.1.101:8443", true, true],
    ["compute-02", "10.0.1.102:8443", true, true],
    ["storage-01", "10.0.1.111:8443", true, true],
    ["storage-02", "10.0.1.112:8443", true, true],
    ["network-01", "10.0.1.121:8443", true, true],
  ]);
  t.is(c.bootstrap, "compute-01");
  t.is(c.members[4]!.description, "Network node - OVN gateway");
});

test("example 8, Jinja logic per node, is refused as a template to render per minion, not as broken YAML", (t) => {
  const problems = refusal(fixture(8));
  t.deepEqual(problems.map((p) => p.path), ["(document)"]);
  t.regex(problems[0]!.message, /is a Salt\/Jinja template \(line 3: \{% if grains\['id'\] == 'incus-node1' %\}\)/);
  t.regex(problems[0]!.message, /render it for each minion first: salt '\*' pillar\.items --out=yaml/);
  t.notRegex(problems[0]!.message, /not valid YAML/);
});

test("(b) example 8 as salt '*' pillar.items renders it: the minions' incus_bootstrap and incus_join parts merge into one cluster", (t) => {
  const joining = (id: string, address: string) =>
    `${id}:\n  cluster_password: grains-cluster-secret\n  incus_join:\n    cluster_members:\n      ${id}:\n        address: ${address}\n        cluster_password: grains-cluster-secret\n`;
  const output =
    `incus-node1:\n  cluster_password: grains-cluster-secret\n  incus_bootstrap:\n    server_settings:\n      config:\n        cluster.https_address: 192.0.2.11:8443\n        core.https_address: '[::]:8443'\n` +
    joining("incus-node2", "192.0.2.12") +
    joining("incus-node3", "192.0.2.13");
  const { spec, passwords, shape, warnings } = parseSpecText(output);
  t.is(shape, "minions");
  const c = spec.clusters[0]!;
  t.deepEqual(membersOf(c), [
    ["incus-node1", "192.0.2.11:8443", true, true],
    ["incus-node2", "192.0.2.12:8443", true, true],
    ["incus-node3", "192.0.2.13:8443", true, true],
  ]);
  t.is(c.bootstrap, "incus-node1");
  t.is(bootstrapMemberOf(c).name, "incus-node1");
  t.is(passwords.default, "grains-cluster-secret");
  t.false(warnings.some((w) => /takes the name of the agent/.test(w.message)), "the minion id names the bootstrap host");

  // salt '*' also lists minions that carry no incus pillar: refused naming only those, with how to leave them out.
  const problems = refusal(`${output}saltmaster:\n  other_pillar: true\n`);
  t.deepEqual(problems.map((p) => p.path), ["saltmaster"]);
  t.regex(problems[0]!.message, /has none of the pillar keys incus, incus_bootstrap, incus_cluster, incus_join/);
  t.regex(problems[0]!.message, /salt -L 'incus-node1,incus-node2,incus-node3' pillar\.items --out=yaml/);
});

test("(c) minions that disagree are refused, naming both minions", (t) => {
  const password = refusal(
    `node1:\n  incus_bootstrap: { server_settings: { config: { cluster.https_address: "192.0.2.11:8443" } } }\n` +
      `node2:\n  incus_join: { cluster_members: { node2: { address: 192.0.2.12, cluster_password: first-password } } }\n` +
      `node3:\n  incus_join: { cluster_members: { node3: { address: 192.0.2.13, cluster_password: second-password } } }\n`,
  );
  t.deepEqual(password, [
    { path: "node3.incus_join.cluster_members.node3.cluster_password", message: "gives a different cluster password than node2.incus_join.cluster_members.node2.cluster_password; one cluster has one password" },
  ]);

  const settings = refusal(
    `node1:\n  incus_bootstrap: { server_settings: { config: { cluster.https_address: "192.0.2.11:8443", cluster.offline_threshold: "120" } } }\n` +
      `node2:\n  incus: { server_settings: { config: { cluster.offline_threshold: "60" } }, cluster_members: { node2: { address: 192.0.2.12, cluster_password: ${BASIC_PASSWORD} } } }\n`,
  );
  t.deepEqual(settings, [
    { path: "node2.incus.server_settings.config.cluster.offline_threshold", message: "setting cluster.offline_threshold disagrees with node1.incus_bootstrap.server_settings.config.cluster.offline_threshold; give it one way" },
  ]);

  // Two minions each claiming to be the unlisted bootstrap host: one of them would be dropped.
  const twoHosts = refusal(
    `node1:\n  incus_bootstrap: { server_settings: { config: { cluster.https_address: "192.0.2.11:8443" } } }\n` +
      `node4:\n  incus_bootstrap: { server_settings: { config: { cluster.https_address: "192.0.2.14:8443" } } }\n` +
      `node2:\n  incus_join: { cluster_members: { node2: { address: 192.0.2.12, cluster_password: ${BASIC_PASSWORD} } } }\n`,
  );
  t.deepEqual(twoHosts.map((p) => p.path), ["node4.incus_bootstrap.server_settings.config.cluster.https_address"]);
  t.regex(twoHosts[0]!.message, /only one host bootstraps, but node1\.incus_bootstrap\.server_settings\.config\.cluster\.https_address, node4\.incus_bootstrap\.server_settings\.config\.cluster\.https_address give addresses no listed member has: list the hosts that join under cluster_members/);
});

test("example 9, cluster storage alone, is refused for want of members; with the basic cluster its dir and ceph pools are accepted", (t) => {
  const problems = refusal(fixture(9));
  t.deepEqual(problems.map((p) => p.path), ["incus"]);
  t.regex(problems[0]!.message, /no members: add cluster_members \(the hosts that join\) and server_settings\.config\.cluster\.https_address/);

  const { spec } = parseSpecText(basicRendered() + fixture(9));
  const c = spec.clusters[0]!;
  t.is(c.members.length, 3);
  t.deepEqual(c.pools, [
    { name: "local", driver: "dir", description: "Local storage pool", config: {}, memberConfig: {}, memberDefaults: { source: "/var/lib/incus/storage-pools/local" }, present: true },
    {
      name: "ceph-pool",
      driver: "ceph",
      description: "Shared Ceph storage pool",
      config: { "ceph.cluster_name": "ceph", "ceph.osd.pg_num": "32", "ceph.rbd.clone_copy": "true" },
      memberConfig: {},
      memberDefaults: { source: "incus" },
      present: true,
    },
  ]);
});

test("example 10, cluster networks alone, is refused for want of members; with the basic cluster its ovn and bridge networks are accepted", (t) => {
  const problems = refusal(fixture(10));
  t.deepEqual(problems.map((p) => p.path), ["incus"]);
  t.regex(problems[0]!.message, /no members: add cluster_members/);

  const { spec } = parseSpecText(basicRendered() + fixture(10));
  const c = spec.clusters[0]!;
  t.deepEqual(c.networks, [
    {
      name: "ovn-cluster",
      type: "ovn",
      description: "Cluster-wide OVN network",
      config: { network: "ovn-uplink", "ipv4.address": "10.200.0.1/16", "ipv4.nat": "true", "dns.domain": "cluster.local" },
      memberConfig: {},
      memberDefaults: {},
      present: true,
    },
    { name: "lxdbr0", type: "bridge", description: "Local bridge network", config: { "ipv4.address": "10.0.0.1/24", "ipv4.nat": "true" }, memberConfig: {}, memberDefaults: {}, present: true },
  ]);
});

test("example 11, the shared storage fragment, is refused as misplaced; under incus: with the basic cluster its ceph pool is accepted", (t) => {
  const text = dedent(fixture(11));
  const problems = refusal(text);
  t.deepEqual(problems.map((p) => p.path), ["storage_pools"]);
  t.regex(problems[0]!.message, UNDER_INCUS);
  t.deepEqual(refusal(fixture(11)), problems, "indented as in the seed, it reads the same");

  const { spec } = parseSpecText(basicRendered() + underIncus(text));
  t.deepEqual(
    spec.clusters[0]!.pools.map((p) => [p.name, p.driver, p.config, p.memberDefaults]),
    [["ceph-pool", "ceph", {}, {}]],
  );
});

test("example 12, the stateful migration fragment, is refused: incus-fleet does not manage instances; under incus: it is passed over", (t) => {
  const text = dedent(fixture(12));
  const problems = refusal(text);
  t.deepEqual(problems.map((p) => p.path), ["instances"]);
  t.regex(problems[0]!.message, /incus-fleet does not manage instances; leave it to Salt, or put it under the pillar's 'incus:' key/);
  t.deepEqual(refusal(fixture(12)), problems);

  const alone = refusal(underIncus(text));
  t.deepEqual(alone.map((p) => p.path), ["incus"]);
  t.regex(alone[0]!.message, /no members: add cluster_members/);

  const { spec, warnings } = parseSpecText(basicRendered() + underIncus(text));
  t.is(spec.clusters[0]!.members.length, 3);
  t.true(warnings.some((w) => w.path === "incus.instances" && /incus-fleet ignores it/.test(w.message)), JSON.stringify(warnings));
});

test("example 13, the image replicas fragment, is refused as misplaced; under incus: with the basic cluster the setting is kept", (t) => {
  const text = dedent(fixture(13));
  const problems = refusal(text);
  t.deepEqual(problems.map((p) => p.path), ["server_settings"]);
  t.regex(problems[0]!.message, UNDER_INCUS);
  t.deepEqual(refusal(fixture(13)), problems);

  const { spec } = parseSpecText(basicRendered() + underIncus(text));
  t.deepEqual(spec.clusters[0]!.config, { "cluster.images_minimal_replica": "3" });
});

test("example 14, the cluster password fragment, is refused until rendered, then as misplaced; under incus: it is the cluster's password", (t) => {
  const text = dedent(fixture(14));
  const problems = refusal(text);
  t.deepEqual(problems.map((p) => p.path), ["cluster_password"]);
  t.regex(problems[0]!.message, TEMPLATE_MESSAGE);
  t.deepEqual(refusal(fixture(14)), problems);

  const rendered = render(text, { "{{ pillar['encrypted_cluster_password'] }}": "decrypted-cluster-secret" });
  const misplaced = refusal(rendered);
  t.deepEqual(misplaced.map((p) => p.path), ["cluster_password"]);
  t.regex(misplaced[0]!.message, UNDER_INCUS);

  // The basic cluster with no password on its members: the pillar's own is the cluster's.
  const withoutMemberPasswords = basicRendered().replaceAll(`      cluster_password: "${BASIC_PASSWORD}"\n`, "");
  t.false(withoutMemberPasswords.includes(BASIC_PASSWORD));
  const { spec, passwords } = parseSpecText(withoutMemberPasswords + underIncus(rendered));
  t.is(spec.clusters[0]!.members.length, 3);
  t.is(passwords.default, "decrypted-cluster-secret");
});

test("example 15, the force-remove fragment, is refused as example 2 is; beside the basic cluster it removes old-node by force", (t) => {
  const text = dedent(fixture(15));
  const problems = refusal(text);
  t.deepEqual(problems, refusal(fixture(2)));
  t.deepEqual(refusal(fixture(15)), problems);

  const { spec } = parseSpecText(basicRendered() + text);
  const c = spec.clusters[0]!;
  t.deepEqual(membersOf(c), [
    [BASIC_BOOTSTRAP, "192.0.2.11:8443", true, false],
    ["node2", "192.0.2.12:8443", true, true],
    ["node3", "192.0.2.13:8443", true, true],
    ["old-node", "", false, true],
  ]);
  t.true(c.members[3]!.force);
  t.is(c.bootstrap, BASIC_BOOTSTRAP);
});
