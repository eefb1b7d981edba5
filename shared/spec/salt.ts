import { createHash } from "node:crypto";
import type { Problem } from "../errors.js";
import { canonicalJson } from "../canonical-json.js";
import { canonicalAddress, isWildcardHost, parseAddress } from "../names.js";
import { Validator } from "../validation.js";
import { PER_MEMBER_SERVER_KEYS, type ClusterDraft, type MemberDraft } from "./build.js";
import { MemberStateArgs, PillarInput, type MemberInput, type NetworkInput, type PoolInput } from "./input.js";
import { DEFAULT_CLUSTER_NAME } from "./model.js";

/**
 * The Salt formula's own documents, read as one cluster: its pillar (`incus`
 * and the seed's `incus_bootstrap`, `incus_cluster`, `incus_join` keys), the
 * output of `salt '*' pillar.items --out=yaml` (a pillar per minion, minion
 * ids being node names), and rendered `incus.cluster_member_present` /
 * `incus.cluster_member_absent` states. In every Salt shape the host at
 * `cluster.https_address` is the bootstrap member.
 */
export const PILLAR_KEYS: readonly string[] = ["incus", "incus_bootstrap", "incus_cluster", "incus_join"];
const PRESENT = "cluster_member_present";
const ABSENT = "cluster_member_absent";
/** Requisites and ordering that rendered states carry; they mean nothing to membership. */
const STATE_META = new Set(["order", "require", "require_in", "watch", "watch_in", "onchanges", "onchanges_in", "prereq", "listen", "onlyif", "unless", "fun", "state", "__id__"]);
const pillarValidator = new Validator(PillarInput);
const stateValidator = new Validator(MemberStateArgs);
const KNOWN_PILLAR_FIELDS = new Set(["cluster_name", "bootstrap", "cluster_password", "server_settings", "cluster_members", "storage_pools", "networks", "drift_policy", "prune"]);

type Doc = Record<string, unknown>;

const isMap = (v: unknown): v is Doc => !!v && typeof v === "object" && !Array.isArray(v);

/** A state entry as written in an SLS (`incus.cluster_member_present: [args]`) or as `state.show_sls` renders it (`incus: [function, args]`). */
function stateOf(value: unknown): { fn: string; key: string; args: unknown[] } | null {
  if (!isMap(value)) return null;
  for (const [key, body] of Object.entries(value)) {
    if (key === `incus.${PRESENT}` || key === `incus.${ABSENT}`) return { fn: key.slice("incus.".length), key, args: Array.isArray(body) ? body : isMap(body) ? [body] : [] };
    if (key === "incus" && Array.isArray(body)) {
      const fn = body.find((x) => x === PRESENT || x === ABSENT);
      if (typeof fn === "string") return { fn, key, args: body.filter((x) => x !== fn) };
    }
  }
  return null;
}

export function isMinionPillar(value: unknown): boolean {
  return isMap(value) && PILLAR_KEYS.some((k) => k in value);
}

export function isStateEntry(value: unknown): boolean {
  return stateOf(value) !== null;
}

/** The name an address-only host goes by until its agent enrolls and names it. */
export function placeholderName(address: string): string {
  const slug = `unnamed-${address.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "")}`;
  return slug.length <= 63 ? slug : `${slug.slice(0, 54)}-${createHash("sha256").update(address).digest("hex").slice(0, 8)}`;
}

interface Fragment {
  path: string;
  pillar: PillarInput;
  minion: string | undefined;
}

interface Keyed<T> {
  value: T;
  path: string;
}

/** Merges keyed entries from several fragments; the same key given two different ways is refused naming both places. */
function mergeInto<T>(target: Map<string, Keyed<T>>, key: string, value: T, path: string, problems: Problem[], what: string): void {
  const known = target.get(key);
  if (!known) {
    target.set(key, { value, path });
    return;
  }
  if (canonicalJson(known.value) !== canonicalJson(value)) problems.push({ path, message: `${what} disagrees with ${known.path}; give it one way` });
}

function agreeOn<T>(values: Keyed<T>[], problems: Problem[], what: string): Keyed<T> | undefined {
  const first = values[0];
  for (const v of values.slice(1)) if (canonicalJson(v.value) !== canonicalJson(first!.value)) problems.push({ path: v.path, message: `${what} disagrees with ${first!.path}` });
  return first;
}

/**
 * Where the bootstrap host is: the cluster.https_address the pillar gives. Rendered per minion, each minion may give
 * its own (the seed templates it from grains): the joining ones are listed members, and the one left over bootstraps.
 */
function bootstrapAddress(fragments: Fragment[], listed: Set<string | null>, problems: Problem[]): { address: string; path: string; minions: string[] } | undefined {
  const given: { address: string; path: string; minion: string | undefined }[] = [];
  for (const f of fragments) {
    const value = f.pillar.server_settings?.config?.["cluster.https_address"];
    if (value === undefined) continue;
    const path = `${f.path}.server_settings.config.cluster.https_address`;
    const parsed = parseAddress(String(value));
    if (!parsed || isWildcardHost(parsed.host)) problems.push({ path, message: `'${value}' is not the bootstrap host's own address; give the address other members reach it on (e.g. 192.0.2.11:8443)` });
    else given.push({ address: canonicalAddress(String(value))!, path, minion: f.minion });
  }
  const addresses = [...new Set(given.map((g) => g.address))];
  // Fragments of one document were merged, and a key given two ways there is already refused.
  if (addresses.length > 1 && given.some((g) => g.minion === undefined)) return undefined;
  const left = addresses.length > 1 ? addresses.filter((a) => !listed.has(a)) : addresses;
  const pathsOf = (list: string[]) => given.filter((g) => list.includes(g.address)).map((g) => g.path);
  if (left.length === 0 && addresses.length > 1) {
    problems.push({ path: pathsOf(addresses)[0]!, message: `the minions give different cluster.https_address values (${pathsOf(addresses).join(", ")}), each a listed member's: say which host bootstraps with 'bootstrap: <member>'` });
  } else if (left.length > 1) {
    problems.push({ path: pathsOf(left)[1]!, message: `only one host bootstraps, but ${pathsOf(left).join(", ")} give addresses no listed member has: list the hosts that join under cluster_members` });
  }
  if (left.length !== 1) return undefined;
  const at = given.filter((g) => g.address === left[0]);
  return { address: left[0]!, path: at[0]!.path, minions: at.flatMap((g) => (g.minion === undefined ? [] : [g.minion])) };
}

/** Reads the pillar fragments and states of a Salt document into one cluster. */
export function saltDraft(fragments: Fragment[], states: { id: string; value: unknown }[], problems: Problem[], warnings: Problem[]): ClusterDraft {
  for (const f of fragments) {
    for (const key of Object.keys(f.pillar)) {
      if (!KNOWN_PILLAR_FIELDS.has(key)) warnings.push({ path: `${f.path}.${key}`, message: "is not about the cluster's membership, settings, pools or networks; incus-fleet ignores it" });
    }
  }
  const settings = new Map<string, Keyed<string | number | boolean>>();
  const members = new Map<string, Keyed<MemberInput>>();
  const pools = new Map<string, Keyed<PoolInput>>();
  const networks = new Map<string, Keyed<NetworkInput>>();
  for (const f of fragments) {
    for (const [k, v] of Object.entries(f.pillar.server_settings?.config ?? {})) {
      const at = `${f.path}.server_settings.config.${k}`;
      // Rendered per minion, a listener key is each minion's own address (the seed templates it from grains): they differ by design.
      if (f.minion !== undefined && PER_MEMBER_SERVER_KEYS.has(k)) {
        if (!settings.has(k)) settings.set(k, { value: v, path: at });
      } else mergeInto(settings, k, v, at, problems, `setting ${k}`);
    }
    for (const [n, m] of Object.entries(f.pillar.cluster_members ?? {})) mergeInto(members, n, m, `${f.path}.cluster_members.${n}`, problems, `member ${n}`);
    for (const [n, p] of Object.entries(f.pillar.storage_pools ?? {})) mergeInto(pools, n, p, `${f.path}.storage_pools.${n}`, problems, `storage pool ${n}`);
    for (const [n, x] of Object.entries(f.pillar.networks ?? {})) mergeInto(networks, n, x, `${f.path}.networks.${n}`, problems, `network ${n}`);
  }
  for (const { id, value } of states) {
    const state = stateOf(value)!;
    const at = id;
    const malformed = state.args.map((a, i) => (isMap(a) ? -1 : i)).filter((i) => i >= 0);
    if (malformed.length > 0) {
      for (const i of malformed) problems.push({ path: `${at}.${state.key}[${i}]`, message: "is not an argument: each is a one-key map, like '- address: 192.0.2.12'" });
      continue;
    }
    const args: Doc = {};
    for (const a of state.args as Doc[]) for (const [k, v] of Object.entries(a)) if (!STATE_META.has(k)) args[k] = v;
    if (!stateValidator.check(args)) {
      problems.push(...stateValidator.problems(args, at));
      continue;
    }
    const name = args.name ?? id;
    if (state.fn === PRESENT) {
      if (!args.address) {
        problems.push({ path: `${at}.address`, message: `missing required argument 'address' of incus.${PRESENT}` });
        continue;
      }
      const input: MemberInput = { address: args.address, ...(args.cluster_password !== undefined ? { cluster_password: args.cluster_password } : {}), ...(args.description !== undefined ? { description: args.description } : {}) };
      mergeInto(members, name, input, at, problems, `member ${name}`);
    } else {
      const known = members.get(name);
      // An absent member need not give an address: it is only removed.
      const input: MemberInput = { address: known?.value.address ?? args.address ?? "", present: false, ...(args.force ? { force: true } : {}) };
      members.set(name, { value: input, path: at });
    }
  }

  const name = agreeOn(fragments.filter((f) => f.pillar.cluster_name !== undefined).map((f) => ({ value: f.pillar.cluster_name!, path: `${f.path}.cluster_name` })), problems, "cluster_name");
  const explicitBootstrap = agreeOn(fragments.filter((f) => f.pillar.bootstrap !== undefined).map((f) => ({ value: f.pillar.bootstrap!, path: `${f.path}.bootstrap` })), problems, "bootstrap");
  const drift = agreeOn(fragments.filter((f) => f.pillar.drift_policy !== undefined).map((f) => ({ value: f.pillar.drift_policy!, path: `${f.path}.drift_policy` })), problems, "drift_policy");
  const prune = agreeOn(fragments.filter((f) => f.pillar.prune !== undefined).map((f) => ({ value: f.pillar.prune!, path: `${f.path}.prune` })), problems, "prune");

  // The password: on the members (the formula's shape), on the pillar, or the bootstrap host's trust password (its Step 1).
  const passwords: Keyed<string>[] = [
    ...[...members.values()].filter((m) => m.value.cluster_password !== undefined).map((m) => ({ value: m.value.cluster_password!, path: `${m.path}.cluster_password` })),
    ...fragments.filter((f) => f.pillar.cluster_password !== undefined).map((f) => ({ value: f.pillar.cluster_password!, path: `${f.path}.cluster_password` })),
    ...(settings.has("core.trust_password") ? [{ value: String(settings.get("core.trust_password")!.value), path: settings.get("core.trust_password")!.path }] : []),
  ];
  const distinct = new Set(passwords.map((p) => p.value));
  if (distinct.size > 1) problems.push({ path: passwords[1]!.path, message: `gives a different cluster password than ${passwords[0]!.path}; one cluster has one password` });

  const drafts: MemberDraft[] = [...members].map(([n, m]) => ({ name: n, named: true, input: m.value, path: m.path }));

  // The bootstrap host: the one at cluster.https_address, listed or not (then named by its minion id, or by the agent that enrolls from there).
  let bootstrap = explicitBootstrap?.value;
  let bootstrapPath = explicitBootstrap?.path ?? `${fragments[0]?.path ?? "incus"}.bootstrap`;
  const host = bootstrap === undefined ? bootstrapAddress(fragments, new Set(drafts.map((d) => canonicalAddress(d.input.address))), problems) : undefined;
  if (host) {
    bootstrapPath = host.path;
    const listed = drafts.find((d) => canonicalAddress(d.input.address) === host.address);
    if (listed) bootstrap = listed.name;
    else {
      // A pillar given to every minion is carried by the joining ones too; only a minion that is not a listed member can be the host there.
      const owners = [...new Set(host.minions.filter((m) => !members.has(m)))];
      const owner = owners.length === 1 ? owners[0] : undefined;
      const memberName = owner ?? placeholderName(host.address);
      drafts.unshift({ name: memberName, named: owner !== undefined, input: { address: host.address }, path: host.path });
      bootstrap = memberName;
      if (!owner) warnings.push({ path: host.path, message: `the bootstrap host at ${host.address} is not listed by name; it takes the name of the agent that enrolls from that address` });
    }
  }
  const present = drafts.filter((d) => d.input.present !== false);
  // Where cluster.https_address is given but names no bootstrap host, the reason is already refused.
  const httpsGiven = fragments.some((f) => f.pillar.server_settings?.config?.["cluster.https_address"] !== undefined);
  if (bootstrap === undefined && present.length > 0 && !httpsGiven) {
    problems.push(
      fragments.length > 0
        ? {
            path: fragments[0]!.path,
            message: "no bootstrap host: add server_settings.config.cluster.https_address with the address of the host that bootstraps the cluster (the seed's Step 1 pillar), or 'bootstrap: <member>'",
          }
        : {
            // The member states only join hosts to a cluster that exists: which one bootstraps goes in a pillar key beside them.
            path: "incus",
            message: "no bootstrap host: the cluster_member_present states only join hosts; add an 'incus:' key beside them with server_settings.config.cluster.https_address (the address of the host that bootstraps the cluster, as in the seed's Step 1 pillar), or 'bootstrap: <member>'",
          },
    );
  }
  if (members.size === 0 && present.length === 0 && drafts.length === 0) {
    problems.push({ path: fragments[0]?.path ?? "(top level)", message: "no members: add cluster_members (the hosts that join) and server_settings.config.cluster.https_address (the host that bootstraps)" });
  }

  return {
    name: name?.value ?? DEFAULT_CLUSTER_NAME,
    path: fragments[0]?.path ?? "(states)",
    password: passwords[0]?.value,
    passwordPath: passwords[0]?.path ?? `${fragments[0]?.path ?? "incus"}.cluster_members`,
    bootstrap,
    bootstrapPath,
    settings: Object.fromEntries([...settings].map(([k, v]) => [k, { value: v.value, path: v.path }])),
    members: drafts,
    membersPath: `${fragments[0]?.path ?? "incus"}.cluster_members`,
    pools: [...pools].map(([n, p]) => ({ name: n, input: p.value, path: p.path })),
    networks: [...networks].map(([n, x]) => ({ name: n, input: x.value, path: x.path })),
    drift: drift?.value,
    prune: prune?.value,
    salt: true,
  };
}

/** Checks each pillar fragment's shape; the fragments that pass are read. */
export function pillarFragments(entries: { path: string; value: unknown; minion?: string }[], problems: Problem[]): Fragment[] {
  const out: Fragment[] = [];
  for (const e of entries) {
    if (!pillarValidator.check(e.value)) {
      problems.push(...pillarValidator.problems(e.value, e.path));
      continue;
    }
    out.push({ path: e.path, pillar: e.value, minion: e.minion });
  }
  return out;
}

export function stateEntries(doc: Doc, keys: string[]): { id: string; value: unknown }[] {
  return keys.map((id) => ({ id, value: doc[id] }));
}
