import Type, { type Static } from "typebox";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { ErrorCode, FleetError, SpecError, type Problem } from "./errors.js";
import { formatAddress, isValidName, isWildcardHost, NAME_PATTERN, parseAddress } from "./names.js";
import { Validator } from "./validation.js";

// ---------------------------------------------------------------- input shapes

const ConfigValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);
const ConfigMap = Type.Record(Type.String({ minLength: 1 }), ConfigValue);
const MemberName = Type.String({ pattern: NAME_PATTERN });

const MemberInput = Type.Object(
  {
    address: Type.String({ minLength: 1 }),
    description: Type.Optional(Type.String()),
    failure_domain: Type.Optional(Type.String({ minLength: 1 })),
    groups: Type.Optional(Type.Array(MemberName)),
    /** `false` removes the member from the cluster; the Salt `cluster_member_absent` state. */
    present: Type.Optional(Type.Boolean()),
    /** With `present: false`: remove even when the member is offline for good. */
    force: Type.Optional(Type.Boolean()),
    /** Accepted per member for the Salt pillar shape; all members of a cluster must agree. */
    cluster_password: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const PoolInput = Type.Object(
  {
    driver: Type.String({ minLength: 1 }),
    description: Type.Optional(Type.String()),
    config: Type.Optional(ConfigMap),
    member_config: Type.Optional(Type.Record(Type.String(), ConfigMap)),
  },
  { additionalProperties: false },
);

const NetworkInput = Type.Object(
  {
    type: Type.Optional(Type.String({ minLength: 1 })),
    network_type: Type.Optional(Type.String({ minLength: 1 })),
    description: Type.Optional(Type.String()),
    config: Type.Optional(ConfigMap),
    member_config: Type.Optional(Type.Record(Type.String(), ConfigMap)),
  },
  { additionalProperties: false },
);

const ServerSettingsInput = Type.Object({ config: Type.Optional(ConfigMap) }, { additionalProperties: false });

const ClusterInput = Type.Object(
  {
    cluster_password: Type.Optional(Type.String()),
    bootstrap: Type.Optional(Type.String()),
    server_settings: Type.Optional(ServerSettingsInput),
    members: Type.Record(Type.String(), MemberInput),
    storage_pools: Type.Optional(Type.Record(Type.String(), PoolInput)),
    networks: Type.Optional(Type.Record(Type.String(), NetworkInput)),
  },
  { additionalProperties: false },
);

/** The Salt pillar's `incus:` key, as the formula's documentation shows it. */
const PillarInput = Type.Object(
  {
    cluster_name: Type.Optional(Type.String()),
    bootstrap: Type.Optional(Type.String()),
    server_settings: Type.Optional(ServerSettingsInput),
    cluster_members: Type.Optional(Type.Record(Type.String(), MemberInput)),
    storage_pools: Type.Optional(Type.Record(Type.String(), PoolInput)),
    networks: Type.Optional(Type.Record(Type.String(), NetworkInput)),
  },
  // Other pillar keys (instances, profiles, images…) belong to other Salt states; they are reported as warnings.
  { additionalProperties: true },
);

export const SpecInput = Type.Object(
  {
    clusters: Type.Optional(Type.Record(Type.String(), ClusterInput)),
    incus: Type.Optional(PillarInput),
  },
  { additionalProperties: false },
);
export type SpecInput = Static<typeof SpecInput>;
type ClusterInput = Static<typeof ClusterInput>;
type MemberInput = Static<typeof MemberInput>;
type PoolInput = Static<typeof PoolInput>;
type NetworkInput = Static<typeof NetworkInput>;

// ---------------------------------------------------------------- normalized spec

export interface MemberSpec {
  name: string;
  /** host:port of the member's cluster address. */
  address: string;
  description: string;
  failureDomain: string;
  groups: string[];
  present: boolean;
  force: boolean;
}

export interface PoolSpec {
  name: string;
  driver: string;
  description: string;
  config: Record<string, string>;
  memberConfig: Record<string, Record<string, string>>;
}

export interface NetworkSpec {
  name: string;
  type: string;
  description: string;
  config: Record<string, string>;
  memberConfig: Record<string, Record<string, string>>;
}

export interface ClusterSpec {
  name: string;
  /** Explicit choice, or null when the coordinator picks (see `bootstrapMemberOf`). */
  bootstrap: string | null;
  /** Cluster-wide server settings, applied once the cluster exists. */
  config: Record<string, string>;
  members: MemberSpec[];
  pools: PoolSpec[];
  networks: NetworkSpec[];
}

export interface FleetSpec {
  clusters: ClusterSpec[];
}

/** A parsed spec: the secrets are kept apart so that the spec itself can be shown and logged. */
export interface ParsedSpec {
  spec: FleetSpec;
  passwords: Record<string, string>;
  warnings: Problem[];
}

export const MIN_PASSWORD_LENGTH = 8;
export const DEFAULT_CLUSTER_NAME = "default";
export const STORAGE_DRIVERS = ["dir", "btrfs", "lvm", "lvmcluster", "zfs", "ceph", "cephfs", "cephobject", "linstor", "truenas"];
export const NETWORK_TYPES = ["bridge", "macvlan", "sriov", "ovn", "physical"];
/** Keys that name one member's own listener: incus-fleet sets them from each member's address. */
const PER_MEMBER_SERVER_KEYS = new Set(["core.https_address", "cluster.https_address"]);

const inputValidator = new Validator(SpecInput);

function stringify(value: string | number | boolean): string {
  return typeof value === "string" ? value : String(value);
}

function configOf(map: Record<string, string | number | boolean> | undefined): Record<string, string> {
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
      if (n === null || n < 1) return "must be a whole number of seconds, at least 1";
      return null;
    }
    case "cluster.images_minimal_replica": {
      const n = integerOf(value);
      if (n === null || n < -1 || n === 0) return "must be -1 (all members) or a whole number of at least 1";
      return null;
    }
    case "cluster.healing_threshold": {
      const n = integerOf(value);
      if (n === null || n < 0) return "must be a whole number of seconds, 0 to disable";
      return null;
    }
    default:
      return null;
  }
}

function collectTemplates(value: unknown, path: string, problems: Problem[]): void {
  if (typeof value === "string") {
    if (value.includes("{{") || value.includes("{%")) {
      problems.push({ path, message: "holds an unrendered Salt/Jinja template; render the pillar first (salt-call pillar.items --out=yaml)" });
    }
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => collectTemplates(v, `${path}[${i}]`, problems));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) collectTemplates(v, path ? `${path}.${k}` : k, problems);
  }
}

interface ClusterDraft {
  name: string;
  path: string;
  password: string | undefined;
  passwordPath: string;
  bootstrap: string | undefined;
  settings: Record<string, string | number | boolean> | undefined;
  settingsPath: string;
  members: Record<string, MemberInput>;
  membersPath: string;
  pools: Record<string, PoolInput> | undefined;
  networks: Record<string, NetworkInput> | undefined;
  pillar: boolean;
}

function draftsFromPillar(pillar: NonNullable<SpecInput["incus"]>, problems: Problem[], warnings: Problem[]): ClusterDraft[] {
  const known = new Set(["cluster_name", "bootstrap", "server_settings", "cluster_members", "storage_pools", "networks"]);
  for (const key of Object.keys(pillar)) {
    if (!known.has(key)) warnings.push({ path: `incus.${key}`, message: "is not about cluster membership; incus-fleet ignores it" });
  }
  const members = pillar.cluster_members ?? {};
  const passwords = new Set<string>();
  for (const member of Object.values(members)) if (member.cluster_password !== undefined) passwords.add(member.cluster_password);
  if (passwords.size > 1) {
    problems.push({ path: "incus.cluster_members", message: "members give different cluster_password values; one cluster has one password" });
  }
  let bootstrap = pillar.bootstrap;
  const clusterAddress = pillar.server_settings?.config?.["cluster.https_address"];
  if (bootstrap === undefined && typeof clusterAddress === "string") {
    // The seed's bootstrap node is the one whose server settings carry its cluster address.
    const wanted = parseAddress(clusterAddress);
    const match = Object.entries(members).find(([, m]) => {
      const got = parseAddress(m.address);
      return wanted && got && formatAddress(wanted) === formatAddress(got);
    });
    if (match) bootstrap = match[0];
  }
  return [
    {
      name: pillar.cluster_name ?? DEFAULT_CLUSTER_NAME,
      path: "incus",
      password: [...passwords][0],
      passwordPath: "incus.cluster_members.*.cluster_password",
      bootstrap,
      settings: pillar.server_settings?.config,
      settingsPath: "incus.server_settings.config",
      members,
      membersPath: "incus.cluster_members",
      pools: pillar.storage_pools,
      networks: pillar.networks,
      pillar: true,
    },
  ];
}

function draftsFromClusters(clusters: Record<string, ClusterInput>, problems: Problem[]): ClusterDraft[] {
  return Object.entries(clusters).map(([name, c]) => {
    const memberPasswords = Object.entries(c.members).filter(([, m]) => m.cluster_password !== undefined);
    for (const [member] of memberPasswords) {
      problems.push({ path: `clusters.${name}.members.${member}.cluster_password`, message: "belongs on the cluster (clusters.<name>.cluster_password), not on a member" });
    }
    return {
      name,
      path: `clusters.${name}`,
      password: c.cluster_password,
      passwordPath: `clusters.${name}.cluster_password`,
      bootstrap: c.bootstrap,
      settings: c.server_settings?.config,
      settingsPath: `clusters.${name}.server_settings.config`,
      members: c.members,
      membersPath: `clusters.${name}.members`,
      pools: c.storage_pools,
      networks: c.networks,
      pillar: false,
    };
  });
}

function buildCluster(draft: ClusterDraft, seenAddresses: Map<string, string>, problems: Problem[], warnings: Problem[]): { cluster: ClusterSpec; password: string } {
  const { path } = draft;
  if (!isValidName(draft.name)) problems.push({ path, message: `cluster name '${draft.name}' is not valid: use letters, digits and '-'` });
  if (draft.password === undefined || draft.password === "") {
    problems.push({ path: draft.passwordPath, message: "missing cluster_password: agents prove they know it before they get a role" });
  } else if (draft.password.length < MIN_PASSWORD_LENGTH) {
    problems.push({ path: draft.passwordPath, message: `cluster_password is too short: at least ${MIN_PASSWORD_LENGTH} characters` });
  }

  const members: MemberSpec[] = [];
  for (const [name, m] of Object.entries(draft.members)) {
    const at = `${draft.membersPath}.${name}`;
    if (!isValidName(name)) problems.push({ path: at, message: `member name '${name}' is not valid: use letters, digits and '-'` });
    const parsed = parseAddress(m.address);
    let address = m.address;
    if (!parsed) {
      problems.push({ path: `${at}.address`, message: `'${m.address}' is not an address (host or host:port)` });
    } else if (isWildcardHost(parsed.host)) {
      problems.push({ path: `${at}.address`, message: `'${m.address}' is a wildcard; a member needs the address others reach it on` });
    } else {
      address = formatAddress(parsed);
      const owner = seenAddresses.get(address);
      if (owner) problems.push({ path: `${at}.address`, message: `duplicate address ${address}: already used by ${owner}` });
      else seenAddresses.set(address, at);
    }
    if (m.force && m.present !== false) {
      problems.push({ path: `${at}.force`, message: "force only applies to a member marked present: false" });
    }
    members.push({
      name,
      address,
      description: m.description ?? "",
      failureDomain: m.failure_domain ?? "default",
      groups: m.groups ?? ["default"],
      present: m.present !== false,
      force: m.force === true,
    });
  }
  const present = members.filter((m) => m.present);
  if (members.length === 0) problems.push({ path: draft.membersPath, message: "a cluster needs at least one member" });
  else if (present.length === 0) problems.push({ path: draft.membersPath, message: "every member is marked absent; a cluster needs at least one present member" });

  let bootstrap: string | null = null;
  if (draft.bootstrap !== undefined) {
    const chosen = members.find((m) => m.name === draft.bootstrap);
    if (!chosen) problems.push({ path: `${path}.bootstrap`, message: `unknown member '${draft.bootstrap}': it is not listed under members` });
    else if (!chosen.present) problems.push({ path: `${path}.bootstrap`, message: `member '${draft.bootstrap}' is marked absent and cannot bootstrap` });
    else bootstrap = chosen.name;
  }

  const config: Record<string, string> = {};
  for (const [key, raw] of Object.entries(draft.settings ?? {})) {
    const value = stringify(raw);
    const at = `${draft.settingsPath}.${key}`;
    if (PER_MEMBER_SERVER_KEYS.has(key)) {
      if (draft.pillar) warnings.push({ path: at, message: "is set per member from its address; the pillar value is not used" });
      else problems.push({ path: at, message: "is set per member from members.<name>.address; remove it here" });
      continue;
    }
    if (key === "core.trust_password") {
      if (draft.pillar) warnings.push({ path: at, message: "Incus 6 has no trust password; members join with single-use tokens and agents prove cluster_password instead" });
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
  if (maxVoters > present.length && present.length >= 3) {
    warnings.push({ path: `${draft.settingsPath}.cluster.max_voters`, message: `${maxVoters} voters wanted but only ${present.length} members` });
  }

  const memberNames = new Set(members.map((m) => m.name));
  const memberConfigOf = (at: string, map: Record<string, Record<string, string | number | boolean>> | undefined) => {
    const out: Record<string, Record<string, string>> = {};
    for (const [member, cfg] of Object.entries(map ?? {})) {
      if (!memberNames.has(member)) problems.push({ path: `${at}.member_config.${member}`, message: `unknown member '${member}'` });
      out[member] = configOf(cfg);
    }
    return out;
  };
  const pools: PoolSpec[] = Object.entries(draft.pools ?? {}).map(([name, p]) => {
    const at = `${path}.storage_pools.${name}`;
    if (!isValidName(name)) problems.push({ path: at, message: `pool name '${name}' is not valid` });
    if (!STORAGE_DRIVERS.includes(p.driver)) problems.push({ path: `${at}.driver`, message: `unknown driver '${p.driver}' (one of ${STORAGE_DRIVERS.join(", ")})` });
    return { name, driver: p.driver, description: p.description ?? "", config: configOf(p.config), memberConfig: memberConfigOf(at, p.member_config) };
  });
  const networks: NetworkSpec[] = Object.entries(draft.networks ?? {}).map(([name, n]) => {
    const at = `${path}.networks.${name}`;
    if (!isValidName(name)) problems.push({ path: at, message: `network name '${name}' is not valid` });
    const type = n.type ?? n.network_type;
    if (type === undefined) problems.push({ path: `${at}.type`, message: "missing required field 'type'" });
    else if (!NETWORK_TYPES.includes(type)) problems.push({ path: `${at}.type`, message: `unknown network type '${type}' (one of ${NETWORK_TYPES.join(", ")})` });
    return { name, type: type ?? "", description: n.description ?? "", config: configOf(n.config), memberConfig: memberConfigOf(at, n.member_config) };
  });

  return { cluster: { name: draft.name, bootstrap, config, members, pools, networks }, password: draft.password ?? "" };
}

/** Validates and normalizes a spec document. Throws SpecError naming every problem at once. */
export function parseSpec(input: unknown): ParsedSpec {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new SpecError([{ path: "(top level)", message: "the spec must be a mapping with 'clusters' or 'incus'" }]);
  }
  collectTemplates(input, "", problems);
  if (!inputValidator.check(input)) {
    throw new SpecError([...problems, ...inputValidator.problems(input)]);
  }
  const doc = input as SpecInput;
  if (doc.clusters !== undefined && doc.incus !== undefined) {
    problems.push({ path: "(top level)", message: "give either 'clusters' or a Salt pillar 'incus', not both" });
  }
  if (doc.clusters === undefined && doc.incus === undefined) {
    problems.push({ path: "(top level)", message: "missing 'clusters' (or a Salt pillar 'incus')" });
  }
  const drafts = doc.incus ? draftsFromPillar(doc.incus, problems, warnings) : draftsFromClusters(doc.clusters ?? {}, problems);
  if (doc.clusters !== undefined && drafts.length === 0) problems.push({ path: "clusters", message: "no clusters defined" });

  const seenAddresses = new Map<string, string>();
  const clusters: ClusterSpec[] = [];
  const passwords: Record<string, string> = {};
  for (const draft of drafts) {
    const { cluster, password } = buildCluster(draft, seenAddresses, problems, warnings);
    clusters.push(cluster);
    passwords[cluster.name] = password;
  }
  if (problems.length > 0) throw new SpecError(problems);
  return { spec: { clusters }, passwords, warnings };
}

/** Parses YAML (or JSON, which is YAML) text, then validates it. */
export function parseSpecText(text: string): ParsedSpec {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (cause) {
    const where = cause instanceof YAMLParseError && cause.linePos ? `line ${cause.linePos[0].line}` : "(document)";
    const message = cause instanceof Error ? cause.message.split("\n")[0]! : String(cause);
    throw new SpecError([{ path: where, message: `not valid YAML: ${message}` }]);
  }
  return parseSpec(doc);
}

/** Which member bootstraps: the spec's choice, or else the first present member, so every coordinator agrees. */
export function bootstrapMemberOf(cluster: ClusterSpec): MemberSpec {
  const named = cluster.bootstrap ? cluster.members.find((m) => m.name === cluster.bootstrap && m.present) : undefined;
  const chosen = named ?? cluster.members.find((m) => m.present);
  if (!chosen) throw new FleetError(ErrorCode.SpecInvalid, `cluster ${cluster.name} has no present member`);
  return chosen;
}

export function clusterOf(spec: FleetSpec, name: string): ClusterSpec | undefined {
  return spec.clusters.find((c) => c.name === name);
}

export function memberOf(cluster: ClusterSpec, name: string): MemberSpec | undefined {
  return cluster.members.find((m) => m.name === name);
}
