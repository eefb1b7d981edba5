import type { Problem } from "../errors.js";
import { checkAddress, formatAddress, isValidName, isWildcardHost } from "../names.js";
import type { MemberInput, NetworkInput, PoolInput } from "./input.js";
import {
  MIN_PASSWORD_LENGTH,
  NETWORK_MEMBER_KEYS,
  NETWORK_TYPES,
  POOL_MEMBER_KEYS,
  STORAGE_DRIVERS,
  type ClusterSpec,
  type MemberSpec,
  type NetworkSpec,
  type PoolSpec,
  type ResourceSpec,
} from "./model.js";

type ConfigValue = string | number | boolean;

export interface MemberDraft {
  name: string;
  named: boolean;
  input: MemberInput;
  path: string;
}

/** One cluster as read from any document shape, before it is checked and normalized. */
export interface ClusterDraft {
  name: string;
  path: string;
  password: string | undefined;
  passwordPath: string;
  bootstrap: string | undefined;
  bootstrapPath: string;
  settings: Record<string, { value: ConfigValue; path: string }>;
  members: MemberDraft[];
  membersPath: string;
  pools: { name: string; input: PoolInput; path: string }[];
  networks: { name: string; input: NetworkInput; path: string }[];
  drift: "correct" | "report" | undefined;
  prune: boolean | undefined;
  /** Read from Salt: per-member server keys and the trust password are warnings, not errors. */
  salt: boolean;
}

/** Keys that name one member's own listener: incus-fleet sets them from each member's address. */
export const PER_MEMBER_SERVER_KEYS: ReadonlySet<string> = new Set(["core.https_address", "cluster.https_address"]);

function stringify(value: ConfigValue): string {
  return typeof value === "string" ? value : String(value);
}

function configOf(map: Record<string, ConfigValue> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map ?? {})) out[k] = stringify(v);
  return out;
}

function integerOf(value: string): number | null {
  return /^-?\d+$/.test(value.trim()) ? Number(value) : null;
}

/** Rules for the cluster-wide keys whose bad values would hurt quorum or healing. */
export function checkServerSetting(key: string, value: string): string | null {
  switch (key) {
    case "cluster.max_voters": {
      const n = integerOf(value);
      if (n === null) return "must be a whole number";
      if (n < 3) return "must be at least 3: fewer voters cannot survive the loss of a member";
      if (n % 2 === 0) return `must be odd: ${n} voters tolerate no more failures than ${n - 1} and split evenly`;
      return null;
    }
    case "cluster.max_standby": {
      const n = integerOf(value);
      if (n === null) return "must be a whole number";
      if (n < 0 || n > 5) return "must be between 0 and 5";
      return null;
    }
    case "cluster.offline_threshold": {
      const n = integerOf(value);
      if (n === null || n < 10) return "must be a whole number of seconds, at least 10 (Incus refuses less)";
      return null;
    }
    case "cluster.images_minimal_replica": {
      const n = integerOf(value);
      if (n === null || n < -1 || n === 0) return "must be -1 (all members) or a whole number of at least 1";
      return null;
    }
    case "cluster.healing_threshold": {
      const n = integerOf(value);
      if (n === null || n < 0) return "must be a whole number of seconds, 0 to disable healing";
      return null;
    }
    default:
      return null;
  }
}

function normalizeFingerprint(text: string): string {
  return text.replace(/:/g, "").toLowerCase();
}

/**
 * A pool's or network's keys, split the way Incus keeps them: member-specific
 * keys given cluster-wide (the seed's `source`) become every member's default.
 */
function resourceOf(
  name: string,
  input: { description?: string; config?: Record<string, ConfigValue>; member_config?: Record<string, Record<string, ConfigValue>>; present?: boolean },
  memberKeys: ReadonlySet<string>,
  at: string,
  members: Set<string>,
  problems: Problem[],
): ResourceSpec {
  const config: Record<string, string> = {};
  const memberDefaults: Record<string, string> = {};
  for (const [k, v] of Object.entries(configOf(input.config))) (memberKeys.has(k) ? memberDefaults : config)[k] = v;
  const memberConfig: Record<string, Record<string, string>> = {};
  for (const [member, cfg] of Object.entries(input.member_config ?? {})) {
    if (!members.has(member)) problems.push({ path: `${at}.member_config.${member}`, message: `unknown member '${member}'` });
    const own = configOf(cfg);
    for (const k of Object.keys(own)) {
      if (!memberKeys.has(k)) problems.push({ path: `${at}.member_config.${member}.${k}`, message: `is not a member-specific key; Incus keeps it the same on every member (put it under config)` });
    }
    memberConfig[member] = own;
  }
  if (!isValidName(name)) problems.push({ path: at, message: `name '${name}' is not valid: use letters, digits and '-'` });
  return { name, description: input.description ?? "", config, memberConfig, memberDefaults, present: input.present !== false };
}

/** Checks and normalizes one cluster. Addresses already used (by any cluster) are in `seenAddresses`. */
export function buildCluster(draft: ClusterDraft, seenAddresses: Map<string, string>, problems: Problem[], warnings: Problem[], passwordKept = false): { cluster: ClusterSpec; password: string } {
  const { path } = draft;
  if (!isValidName(draft.name)) problems.push({ path, message: `cluster name '${draft.name}' is not valid: use letters, digits and '-'` });
  if ((draft.password === undefined || draft.password === "") && passwordKept) {
    // The coordinators hold this cluster's keys already; an exported spec carries no password.
  } else if (draft.password === undefined || draft.password === "") {
    problems.push({
      path: draft.passwordPath,
      message: draft.salt
        ? "missing cluster_password: add cluster_password to the cluster_members entries or the incus.cluster_member_present states (or to the pillar's incus: key)"
        : "missing cluster_password: agents prove they know it before they get a role",
    });
  } else if (draft.password.length < MIN_PASSWORD_LENGTH) {
    problems.push({ path: draft.passwordPath, message: `cluster_password is too short: at least ${MIN_PASSWORD_LENGTH} characters` });
  }

  const members: MemberSpec[] = [];
  for (const { name, named, input: m, path: at } of draft.members) {
    if (named && !isValidName(name)) problems.push({ path: at, message: `member name '${name}' is not valid: use letters, digits and '-'` });
    const parsed = checkAddress(m.address);
    let address = m.address;
    if (m.address === "" && m.present === false) {
      // A member to remove need not say where it was.
    } else if (!parsed.ok) {
      problems.push({ path: `${at}.address`, message: `'${m.address}' ${parsed.reason}` });
    } else if (isWildcardHost(parsed.value.host)) {
      problems.push({ path: `${at}.address`, message: `'${m.address}' is a wildcard; a member needs the address others reach it on` });
    } else {
      address = formatAddress(parsed.value);
      const owner = seenAddresses.get(address);
      if (owner) problems.push({ path: `${at}.address`, message: `duplicate address ${address}: already used by ${owner}` });
      else seenAddresses.set(address, at);
    }
    if (m.force && m.present !== false) problems.push({ path: `${at}.force`, message: "force only applies to a member marked present: false" });
    members.push({
      name,
      named,
      address,
      description: m.description ?? "",
      failureDomain: m.failure_domain ?? "default",
      groups: m.groups ?? ["default"],
      present: m.present !== false,
      force: m.force === true,
      fingerprint: m.certificate_fingerprint ? normalizeFingerprint(m.certificate_fingerprint) : null,
    });
  }
  const present = members.filter((m) => m.present);
  if (members.length === 0) problems.push({ path: draft.membersPath, message: "a cluster needs at least one member" });
  else if (present.length === 0) {
    // A spec gives the whole cluster, so a removal alone (the seed's cluster_member_absent example) leaves nothing to keep.
    problems.push({
      path: draft.membersPath,
      message: draft.salt
        ? "every member is marked absent; a cluster needs at least one present member: add the members that stay (cluster_members entries or incus.cluster_member_present states) beside the one to remove"
        : "every member is marked absent; a cluster needs at least one present member",
    });
  }

  let bootstrap: string | null = null;
  if (draft.bootstrap !== undefined) {
    const chosen = members.find((m) => m.name === draft.bootstrap);
    if (!chosen) problems.push({ path: draft.bootstrapPath, message: `unknown member '${draft.bootstrap}': it is not listed under members` });
    else if (!chosen.present) problems.push({ path: draft.bootstrapPath, message: `member '${draft.bootstrap}' is marked absent and cannot bootstrap` });
    else bootstrap = chosen.name;
  }

  const config: Record<string, string> = {};
  for (const [key, { value: raw, path: at }] of Object.entries(draft.settings)) {
    const value = stringify(raw);
    if (PER_MEMBER_SERVER_KEYS.has(key)) {
      if (draft.salt) warnings.push({ path: at, message: "is set per member from its address; the pillar value is not used" });
      else problems.push({ path: at, message: "is set per member from members.<name>.address; remove it here" });
      continue;
    }
    if (key === "core.trust_password") {
      if (draft.salt) warnings.push({ path: at, message: "Incus 6 has no trust password; incus-fleet uses it as the cluster password agents prove, and members join with single-use tokens" });
      else problems.push({ path: at, message: "Incus 6 has no trust password; use cluster_password" });
      continue;
    }
    const problem = checkServerSetting(key, value);
    if (problem) problems.push({ path: at, message: problem });
    config[key] = value;
  }

  const maxVoters = integerOf(config["cluster.max_voters"] ?? "3") ?? 3;
  if (present.length > 0 && present.length < 3) {
    warnings.push({ path: draft.membersPath, message: `${present.length} member(s): a cluster needs at least 3 to survive the loss of one` });
  } else if (present.length % 2 === 0 && present.length > 0) {
    warnings.push({ path: draft.membersPath, message: `${present.length} members is an even count; an odd count spends members better on quorum` });
  }
  if (present.length > 50) warnings.push({ path: draft.membersPath, message: `${present.length} members: beyond 50, split the fleet into several clusters` });
  const votersAt = draft.settings["cluster.max_voters"]?.path ?? `${path}.server_settings.config.cluster.max_voters`;
  if (maxVoters > present.length && present.length >= 3) warnings.push({ path: votersAt, message: `${maxVoters} voters wanted but only ${present.length} members` });

  const memberNames = new Set(members.map((m) => m.name));
  const pools: PoolSpec[] = draft.pools.map(({ name, input: p, path: at }) => {
    if (!STORAGE_DRIVERS.includes(p.driver)) problems.push({ path: `${at}.driver`, message: `unknown driver '${p.driver}' (one of ${STORAGE_DRIVERS.join(", ")})` });
    return { ...resourceOf(name, p, POOL_MEMBER_KEYS, at, memberNames, problems), driver: p.driver };
  });
  const networks: NetworkSpec[] = draft.networks.map(({ name, input: n, path: at }) => {
    const type = n.type ?? n.network_type;
    if (type === undefined) problems.push({ path: `${at}.type`, message: "missing required field 'type'" });
    else if (!NETWORK_TYPES.includes(type)) problems.push({ path: `${at}.type`, message: `unknown network type '${type}' (one of ${NETWORK_TYPES.join(", ")})` });
    return { ...resourceOf(name, n, NETWORK_MEMBER_KEYS, at, memberNames, problems), type: type ?? "" };
  });

  return {
    cluster: { name: draft.name, bootstrap, config, members, pools, networks, policy: { drift: draft.drift ?? "correct", prune: draft.prune ?? false } },
    password: draft.password ?? "",
  };
}
