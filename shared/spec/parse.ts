import { SpecError, ErrorCode, FleetError, type Problem } from "../errors.js";
import { parseDocumentText } from "../documents.js";
import { Validator } from "../validation.js";
import { buildCluster, type ClusterDraft } from "./build.js";
import { NativeInput, type ClusterInput } from "./input.js";
import type { ClusterSpec, FleetSpec, MemberSpec, ParsedSpec, SpecShape } from "./model.js";
import { isMinionPillar, isStateEntry, PILLAR_KEYS, pillarFragments, saltDraft, stateEntries } from "./salt.js";

const nativeValidator = new Validator(NativeInput);

/** Top-level keys people put there by mistake, and where they belong. */
const MISPLACED = new Set(["storage_pools", "networks", "server_settings", "cluster_members", "cluster_password", "cluster_name", "members"]);

/** The first line of a text that is a Jinja template rather than YAML (comment lines aside). */
function jinjaLine(text: string): { line: number; text: string } | null {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => !l.trimStart().startsWith("#") && (l.includes("{%") || l.includes("{{")));
  return at < 0 ? null : { line: at + 1, text: lines[at]!.trim() };
}

function collectTemplates(value: unknown, path: string, problems: Problem[]): void {
  if (typeof value === "string") {
    if (value.includes("{%")) problems.push({ path, message: "holds Jinja logic ({% … %}); render it for each minion first: salt '*' pillar.items --out=yaml, and give incus-fleet that output" });
    // Not salt-call: its output wraps the pillar under 'local', which would then be read as a minion id.
    else if (value.includes("{{")) problems.push({ path, message: "holds an unrendered Salt/Jinja template; render the pillar first: salt '*' pillar.items --out=yaml, and give incus-fleet that output" });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => collectTemplates(v, `${path}[${i}]`, problems));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      const at = path ? `${path}.${k}` : k;
      if (k.includes("{%") || k.includes("{{")) collectTemplates(k, at, problems);
      collectTemplates(v, at, problems);
    }
  }
}

function nativeDrafts(clusters: Record<string, ClusterInput>, problems: Problem[]): ClusterDraft[] {
  return Object.entries(clusters).map(([name, c]) => {
    for (const [member, m] of Object.entries(c.members)) {
      if (m.cluster_password !== undefined) problems.push({ path: `clusters.${name}.members.${member}.cluster_password`, message: "belongs on the cluster (clusters.<name>.cluster_password), not on a member" });
    }
    const at = `clusters.${name}`;
    return {
      name,
      path: at,
      password: c.cluster_password,
      passwordPath: `${at}.cluster_password`,
      bootstrap: c.bootstrap,
      bootstrapPath: `${at}.bootstrap`,
      settings: Object.fromEntries(Object.entries(c.server_settings?.config ?? {}).map(([k, v]) => [k, { value: v, path: `${at}.server_settings.config.${k}` }])),
      members: Object.entries(c.members).map(([n, m]) => ({ name: n, named: m.named_by_agent !== true, input: m, path: `${at}.members.${n}` })),
      membersPath: `${at}.members`,
      pools: Object.entries(c.storage_pools ?? {}).map(([n, p]) => ({ name: n, input: p, path: `${at}.storage_pools.${n}` })),
      networks: Object.entries(c.networks ?? {}).map(([n, x]) => ({ name: n, input: x, path: `${at}.networks.${n}` })),
      drift: c.drift_policy,
      prune: c.prune,
      salt: false,
    };
  });
}

/** Which shape a document is, and the drafts of its clusters. */
function draftsOf(doc: Record<string, unknown>, problems: Problem[], warnings: Problem[]): { shape: SpecShape; drafts: ClusterDraft[] } {
  const keys = Object.keys(doc);
  if ("clusters" in doc) {
    if (!nativeValidator.check(doc)) problems.push(...nativeValidator.problems(doc));
    else if (Object.keys(doc.clusters as object).length === 0) problems.push({ path: "clusters", message: "no clusters defined" });
    return { shape: "clusters", drafts: nativeValidator.check(doc) ? nativeDrafts(doc.clusters as Record<string, ClusterInput>, problems) : [] };
  }
  if (keys.length === 0) {
    problems.push({ path: "(top level)", message: "empty: give 'clusters', or a Salt pillar ('incus'), or the output of salt '*' pillar.items" });
    return { shape: "clusters", drafts: [] };
  }
  const pillarKeys = keys.filter((k) => PILLAR_KEYS.includes(k));
  const stateKeys = keys.filter((k) => !PILLAR_KEYS.includes(k) && isStateEntry(doc[k]));
  const minionKeys = keys.filter((k) => !PILLAR_KEYS.includes(k) && isMinionPillar(doc[k]));
  if (minionKeys.length === keys.length) {
    const entries = minionKeys.flatMap((minion) => PILLAR_KEYS.filter((k) => k in (doc[minion] as object)).map((k) => ({ path: `${minion}.${k}`, value: (doc[minion] as Record<string, unknown>)[k], minion })));
    const fragments = pillarFragments(entries, problems);
    return { shape: "minions", drafts: problems.length > 0 ? [] : [saltDraft(fragments, [], problems, warnings)] };
  }
  if (minionKeys.length > 0 && pillarKeys.length === 0 && stateKeys.length === 0) {
    // salt '*' lists every minion, those outside the cluster too: name those, not the cluster's own.
    for (const k of keys.filter((k) => !minionKeys.includes(k))) {
      problems.push({
        path: k,
        message: `has none of the pillar keys ${PILLAR_KEYS.join(", ")}; if it is a minion outside the cluster, leave it out: give only the cluster's minions, e.g. salt -L '${minionKeys.join(",")}' pillar.items --out=yaml`,
      });
    }
    return { shape: "minions", drafts: [] };
  }
  const other = keys.filter((k) => !pillarKeys.includes(k) && !stateKeys.includes(k));
  for (const k of other) {
    problems.push({
      path: k,
      // The seed's pillar has instances too, but incus-fleet's own shape has no place for them.
      message: k === "instances"
        ? "is not about the cluster: incus-fleet does not manage instances; leave it to Salt, or put it under the pillar's 'incus:' key, where it is passed over with a warning"
        : MISPLACED.has(k)
        ? `belongs under the pillar's 'incus:' key (or under clusters.<name> in incus-fleet's own shape)`
        : "unknown top-level key: give 'clusters', a Salt pillar ('incus', 'incus_bootstrap', 'incus_cluster', 'incus_join'), the output of salt '*' pillar.items, or rendered incus.cluster_member_present/absent states",
    });
  }
  if (other.length > 0) return { shape: "pillar", drafts: [] };
  const fragments = pillarFragments(pillarKeys.map((k) => ({ path: k, value: doc[k] })), problems);
  const shape: SpecShape = pillarKeys.length > 0 ? "pillar" : "states";
  return { shape, drafts: problems.length > 0 ? [] : [saltDraft(fragments, stateEntries(doc, stateKeys), problems, warnings)] };
}

export interface ParseOptions {
  /** Clusters whose coordinators already hold their password: it may be left out (an exported spec has none). */
  knownClusters?: ReadonlySet<string>;
  /** Read the spec for what it says of hosts only (`incus-fleet setup`): passwords may be left out everywhere. */
  passwordsOptional?: boolean;
}

/** Validates and normalizes a spec document of any accepted shape. Throws SpecError naming every problem at once. */
export function parseSpec(input: unknown, options: ParseOptions = {}): ParsedSpec {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new SpecError([{ path: "(top level)", message: "the spec must be a mapping: 'clusters', a Salt pillar ('incus'), or the output of salt '*' pillar.items" }]);
  }
  collectTemplates(input, "", problems);
  if (problems.length > 0) throw new SpecError(problems);
  const { shape, drafts } = draftsOf(input as Record<string, unknown>, problems, warnings);
  if (problems.length > 0) throw new SpecError(problems);

  const seenAddresses = new Map<string, string>();
  const clusters: ClusterSpec[] = [];
  const passwords: Record<string, string> = {};
  for (const draft of drafts) {
    const { cluster, password } = buildCluster(draft, seenAddresses, problems, warnings, options.passwordsOptional === true || (options.knownClusters?.has(draft.name) ?? false));
    clusters.push(cluster);
    passwords[cluster.name] = password;
  }
  if (problems.length > 0) throw new SpecError(problems);
  return { spec: { clusters }, passwords, warnings, shape };
}

/** Parses YAML or JSON text strictly (duplicate keys, nesting), then validates it. */
export function parseSpecText(text: string, options: ParseOptions = {}): ParsedSpec {
  const parsed = parseDocumentText(text);
  if (!parsed.ok) {
    // Jinja logic ({% if %} lines, templated keys) is no YAML until Salt renders it; where the YAML parser tripped on it says nothing useful.
    const jinja = jinjaLine(text);
    throw new SpecError([
      jinja
        ? { path: "(document)", message: `is a Salt/Jinja template (line ${jinja.line}: ${jinja.text}), not YAML yet; render it for each minion first: salt '*' pillar.items --out=yaml, and give incus-fleet that output` }
        : parsed.problem,
    ]);
  }
  return parseSpec(parsed.value, options);
}

/** Which member bootstraps: the spec's choice, or else the first present member, so every coordinator agrees. */
export function bootstrapMemberOf(cluster: ClusterSpec): MemberSpec {
  const named = cluster.bootstrap ? cluster.members.find((m) => m.name === cluster.bootstrap && m.present) : undefined;
  const chosen = named ?? cluster.members.find((m) => m.present);
  if (!chosen) throw new FleetError(ErrorCode.SpecInvalid, `cluster ${cluster.name} has no present member`);
  return chosen;
}

/*
 * Every agent message asks whether its sender is in the spec, and every health evaluation whether each agent is:
 * thousands of look-ups a second over a hundred clusters of fifty. A spec is never changed in place (a new one
 * replaces it), so each is indexed once, on first use.
 */
const clusterIndex = new WeakMap<FleetSpec, Map<string, ClusterSpec>>();
const memberIndex = new WeakMap<ClusterSpec, Map<string, MemberSpec>>();

export function clusterOf(spec: FleetSpec, name: string): ClusterSpec | undefined {
  let index = clusterIndex.get(spec);
  if (!index) {
    index = new Map(spec.clusters.map((c) => [c.name, c]));
    clusterIndex.set(spec, index);
  }
  return index.get(name);
}

export function memberOf(cluster: ClusterSpec, name: string): MemberSpec | undefined {
  let index = memberIndex.get(cluster);
  if (!index) {
    index = new Map(cluster.members.map((m) => [m.name, m]));
    memberIndex.set(cluster, index);
  }
  return index.get(name);
}
