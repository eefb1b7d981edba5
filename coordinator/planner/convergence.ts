import { canonicalJson, MANAGED_KEY, memberConfigOf, NETWORK_MEMBER_KEYS, POOL_MEMBER_KEYS, type NetworkSpec, type ObservedResource, type PoolSpec } from "../../shared/index.js";
import { isClusteredHere } from "./formation.js";
import type { ClusterSituation, PlanChange, Step } from "./types.js";

/**
 * What Incus uses when a key is not set: `GET /1.0` shows only keys that
 * were set, so a spec asking for a default is already met.
 */
export const SERVER_DEFAULTS: Readonly<Record<string, string>> = {
  "cluster.max_voters": "3",
  "cluster.max_standby": "2",
  "cluster.offline_threshold": "20",
  "cluster.images_minimal_replica": "3",
  "cluster.healing_threshold": "0",
};

/** Settings that shape membership: applied right after the bootstrap, before anyone joins. */
export const MEMBERSHIP_SETTINGS: ReadonlySet<string> = new Set(["cluster.max_voters", "cluster.max_standby", "cluster.offline_threshold", "cluster.healing_threshold"]);

/** Keys Incus does not let change once an object exists on a member. */
const POOL_FIXED_KEYS: ReadonlySet<string> = new Set(["source", "zfs.pool_name", "lvm.vg_name", "lvm.thinpool_name"]);

/** The last failure of one change (keyed by the change's object), for backoff and for the status. */
export interface StepFailure {
  error: string;
  at: number;
  count: number;
}

export function failureBackoffMs(f: StepFailure): number {
  return Math.min(5_000 * 2 ** (f.count - 1), 60_000);
}

export function inBackoff(f: StepFailure | undefined, now: number): boolean {
  return !!f && now - f.at < failureBackoffMs(f);
}

export interface ConvergencePlan {
  changes: PlanChange[];
  /** The first change to make, when the drift policy allows. */
  next: Step | null;
  /** A setting the joins should wait for (membership-shaping settings go first). */
  settingsFirst: boolean;
  /** Pools and networks that must exist before joins, so that joiners bring their member config. */
  resourcesFirst: boolean;
}

type Kind = "pool" | "network";

function describe(value: string | undefined, key: string): string {
  return value ?? (SERVER_DEFAULTS[key] !== undefined ? `${SERVER_DEFAULTS[key]} (default)` : "unset");
}

/** The differences between one spec'd pool or network and what Incus has. */
function resourceChanges(kind: Kind, wanted: PoolSpec | NetworkSpec, observed: ObservedResource | undefined, members: string[], failure: StepFailure | undefined): PlanChange[] {
  const object = `${kind} ${wanted.name}`;
  const wantedKind = kind === "pool" ? (wanted as PoolSpec).driver : (wanted as NetworkSpec).type;
  const memberKeys = kind === "pool" ? POOL_MEMBER_KEYS : NETWORK_MEMBER_KEYS;
  const failed = failure ? `; the last attempt failed: ${failure.error}` : "";
  if (!observed) {
    return [{ object, action: "create", now: null, wanted: { [kind === "pool" ? "driver" : "type"]: wantedKind, config: wanted.config, description: wanted.description }, status: "pending", reason: `create on ${members.join(", ") || "every member"}${failed}` }];
  }
  if (observed.kind !== wantedKind) {
    return [{ object, action: "update", now: observed.kind, wanted: wantedKind, status: "blocked", reason: `Incus cannot change a ${kind === "pool" ? "pool's driver" : "network's type"}; delete ${wanted.name} and let incus-fleet create it again, or give the new one another name` }];
  }
  if (observed.status !== "Created") {
    const notCreated = Object.entries(observed.members).filter(([, m]) => m.status !== "Created").map(([n]) => n);
    const missing = members.filter((m) => !(m in observed.members));
    return [{ object, action: "finish", now: observed.status, wanted: "Created", status: "pending", reason: `${observed.status.toLowerCase()} on ${[...notCreated, ...missing].join(", ") || "some members"}: finish creating it${failed}` }];
  }
  const out: PlanChange[] = [];
  if (observed.description !== wanted.description) out.push({ object: `${object} description`, action: "update", now: observed.description, wanted: wanted.description, status: "pending", reason: "set the description" });
  for (const [key, value] of Object.entries(wanted.config)) {
    if (memberKeys.has(key)) continue;
    if (observed.config[key] !== value) out.push({ object: `${object} ${key}`, action: "update", now: observed.config[key] ?? null, wanted: value, status: "pending", reason: `set ${key}${failed}` });
  }
  for (const [member, have] of Object.entries(observed.members)) {
    for (const [key, value] of Object.entries(memberConfigOf(wanted, member))) {
      if (have.config[key] === value) continue;
      const fixed = kind === "pool" && POOL_FIXED_KEYS.has(key);
      out.push({
        object: `${object} ${key} on ${member}`,
        action: "update",
        now: have.config[key] ?? null,
        wanted: value,
        status: fixed ? "blocked" : "pending",
        reason: fixed ? `Incus cannot change ${key} of a created pool; recreate ${wanted.name} on ${member} by hand` : `set ${key} on ${member}${failed}`,
      });
    }
  }
  for (const [member, m] of Object.entries(observed.members)) {
    if (m.status !== "Created" && m.status !== "Unknown") out.push({ object: `${object} on ${member}`, action: "finish", now: m.status, wanted: "Created", status: "blocked", reason: `Incus reports ${wanted.name} ${m.status.toLowerCase()} on ${member}: see that member's Incus log` });
  }
  return out;
}

/** Which members cannot create a driver or network type, by their agents' own report. */
function incapable(s: ClusterSituation, kind: Kind, what: string): { member: string; why: string }[] {
  const out: { member: string; why: string }[] = [];
  for (const m of s.spec.members.filter((x) => x.present)) {
    const caps = s.hosts[m.name]?.facts?.capabilities;
    if (!caps) continue;
    const list = kind === "pool" ? caps.storageDrivers : caps.networkTypes;
    if (!list.includes(what)) out.push({ member: m.name, why: caps.missing?.[what] ?? `its Incus offers ${kind === "pool" ? "storage drivers" : "network types"} ${list.join(", ") || "none"}` });
  }
  return out;
}

/**
 * Everything the spec manages besides membership: cluster settings, each
 * member's description, failure domain and groups, storage pools and
 * networks. Each difference between the spec and what Incus reports is a
 * change with its value now and the value wanted; whether it is corrected
 * or only reported is the cluster's drift policy.
 */
export function planConvergence(s: ClusterSituation, failures: ReadonlyMap<string, StepFailure>, via: string | null): ConvergencePlan {
  const { spec, observed } = s;
  const changes: PlanChange[] = [];
  const correct = spec.policy.drift === "correct";
  const members = (s.health?.members ?? []).filter((m) => !s.recentlyRemoved.has(m.name)).map((m) => m.name);
  if (!observed) {
    return { changes, next: null, settingsFirst: Object.keys(spec.config).some((k) => MEMBERSHIP_SETTINGS.has(k)), resourcesFirst: spec.pools.length + spec.networks.length > 0 };
  }
  const o = observed.observation;

  // ---------------------------------------------------------------- settings
  const set: Record<string, string> = {};
  for (const [key, value] of Object.entries(spec.config)) {
    const now = o.config[key];
    if ((now ?? SERVER_DEFAULTS[key]) === value) continue;
    set[key] = value;
    changes.push({ object: `setting ${key}`, action: "set", now: describe(now, key), wanted: value, status: "pending", reason: MEMBERSHIP_SETTINGS.has(key) ? "shapes membership: set before members join" : "cluster-wide server setting" });
  }

  // ---------------------------------------------------------------- pools and networks
  const resourceSteps: Step[] = [];
  const capabilityHolds: PlanChange[] = [];
  const resources: [Kind, PoolSpec | NetworkSpec][] = [...spec.pools.map((p) => ["pool", p] as [Kind, PoolSpec]), ...spec.networks.map((n) => ["network", n] as [Kind, NetworkSpec])];
  for (const [kind, wanted] of resources) {
    const list = kind === "pool" ? o.pools : o.networks;
    const have = list.find((r) => r.name === wanted.name);
    if (!wanted.present) {
      if (have) changes.push({ object: `${kind} ${wanted.name}`, action: "delete", now: have.status, wanted: null, status: "pending", reason: "marked absent in the spec" });
      if (have && via) resourceSteps.push(kind === "pool" ? { kind: "delete-pool", via, name: wanted.name } : { kind: "delete-network", via, name: wanted.name });
      continue;
    }
    const wantedKind = kind === "pool" ? (wanted as PoolSpec).driver : (wanted as NetworkSpec).type;
    const cannot = have ? [] : incapable(s, kind, wantedKind);
    if (cannot.length > 0) {
      capabilityHolds.push({
        object: `${kind} ${wanted.name}`,
        action: "create",
        now: null,
        wanted: wantedKind,
        status: "blocked",
        reason: `held at preflight: ${cannot.map((c) => `${c.member} cannot create a ${wantedKind} ${kind}: ${c.why}`).join("; ")}`,
      });
      continue;
    }
    const failure = failures.get(`${kind} ${wanted.name}`);
    const found = resourceChanges(kind, wanted, have, members, failure);
    changes.push(...found);
    if (via && !inBackoff(failure, s.now) && found.some((c) => c.status === "pending")) resourceSteps.push(kind === "pool" ? { kind: "converge-pool", via, name: wanted.name } : { kind: "converge-network", via, name: wanted.name });
  }
  // Objects incus-fleet created and the spec dropped: deleted with the prune policy, always listed.
  for (const [kind, list, wantedList] of [["pool", o.pools, spec.pools], ["network", o.networks, spec.networks]] as const) {
    for (const have of list) {
      if (have.config[MANAGED_KEY] === undefined || wantedList.some((w) => w.name === have.name)) continue;
      changes.push({
        object: `${kind} ${have.name}`,
        action: "delete",
        now: have.status,
        wanted: null,
        status: spec.policy.prune ? "pending" : "report-only",
        reason: spec.policy.prune ? "dropped from the spec; pruned" : "dropped from the spec; set prune: true or list it with present: false to delete it",
      });
      if (spec.policy.prune && via) resourceSteps.push(kind === "pool" ? { kind: "delete-pool", via, name: have.name } : { kind: "delete-network", via, name: have.name });
    }
  }
  changes.push(...capabilityHolds);

  // ---------------------------------------------------------------- members' metadata
  const memberSteps: Step[] = [];
  for (const m of spec.members.filter((x) => x.present)) {
    const view = o.members.find((v) => v.name === m.name);
    if (!view || !isClusteredHere(s, m.name)) continue;
    const diffs: PlanChange[] = [];
    if (view.description !== m.description) diffs.push({ object: `member ${m.name} description`, action: "set", now: view.description, wanted: m.description, status: "pending", reason: "member metadata" });
    if (view.failureDomain !== m.failureDomain) diffs.push({ object: `member ${m.name} failure domain`, action: "set", now: view.failureDomain, wanted: m.failureDomain, status: "pending", reason: "member metadata" });
    if (canonicalJson([...view.groups].sort()) !== canonicalJson([...m.groups].sort())) diffs.push({ object: `member ${m.name} groups`, action: "set", now: view.groups, wanted: m.groups, status: "pending", reason: "member metadata" });
    changes.push(...diffs);
    if (diffs.length > 0 && via && !inBackoff(failures.get(`member ${m.name}`), s.now)) memberSteps.push({ kind: "set-member", via, node: m.name });
  }

  if (!correct) for (const c of changes) if (c.status === "pending") c.status = "report-only";
  const settingsStep: Step | null = via && Object.keys(set).length > 0 && !inBackoff(failures.get("settings"), s.now) ? { kind: "apply-settings", via, set } : null;
  const ordered = [settingsStep, ...resourceSteps, ...memberSteps].filter((x): x is Step => x !== null);
  return {
    changes,
    next: correct ? (ordered[0] ?? null) : null,
    settingsFirst: correct && Object.keys(set).some((k) => MEMBERSHIP_SETTINGS.has(k)),
    resourcesFirst: correct && resourceSteps.some((st) => st.kind === "converge-pool" || st.kind === "converge-network"),
  };
}
