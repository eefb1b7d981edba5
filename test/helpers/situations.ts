import { parseSpec, quorumOf, type ClusterSpec, type NodeFacts, type Observation, type PreflightCheck } from "../../shared/index.js";
import type { HealthSnapshot, MemberHealth } from "../../coordinator/health/health-types.js";
import type { ClusterSituation, HostView, ObservedState } from "../../coordinator/planner/types.js";

export const NOW = 1_000_000;

/** Builds planner inputs for tests: a spec of n members and what each host says. */
export function specOf(names: string[], extra: Record<string, unknown> = {}): ClusterSpec {
  const members = Object.fromEntries(names.map((n, i) => [n, { address: `192.0.2.${11 + i}` }]));
  return parseSpec({ clusters: { c: { cluster_password: "test-password", members, ...extra } } }).spec.clusters[0]!;
}

export function facts(clustered: boolean, members?: string[], address = "192.0.2.99:8443", extra: Partial<NodeFacts> = {}): NodeFacts {
  return {
    address,
    agentVersion: "test",
    capabilities: { storageDrivers: ["dir"], networkTypes: ["bridge", "macvlan"] },
    ...extra,
    incus: { observedAt: NOW, reachable: true, version: "6.0.4", clustered, ...(members ? { members } : {}) },
  };
}

export function host(name: string, f: NodeFacts | null, extra: Partial<HostView> = {}): HostView {
  return { node: name, enrolled: true, agentOnline: true, facts: f, preflight: null, failures: 0, lastFailure: null, lastFailureAt: null, ...extra };
}

export function preflight(target: string, ok = true, at = NOW, reverse = true): HostView["preflight"] {
  const checks: PreflightCheck[] = [{ name: "port", ok, detail: ok ? "reachable" : `cannot reach ${target}: ECONNREFUSED`, ...(ok ? {} : { fix: "open TCP 8443" }) }];
  if (reverse) checks.push({ name: "reverse-port", ok: true, detail: "reached back" });
  return { report: { target, at: new Date(at).toISOString(), checks }, at };
}

type MemberInput = { name: string; status?: string; roles?: string[]; description?: string; failureDomain?: string; groups?: string[] };

/** A health snapshot in which Incus reports these members; the first is the leader unless roles say otherwise. */
export function healthOf(members: MemberInput[], extra: Partial<HealthSnapshot> = {}): HealthSnapshot {
  const list: MemberHealth[] = members.map((m, i) => {
    const status = m.status ?? "Online";
    return {
      name: m.name,
      status,
      message: "",
      roles: m.roles ?? (i === 0 ? ["database-leader", "database"] : i < 3 ? ["database"] : []),
      url: `https://192.0.2.${11 + i}:8443`,
      failureDomain: m.failureDomain ?? "default",
      groups: m.groups ?? ["default"],
      description: m.description ?? "",
      effectiveStatus: status,
      safetyStatus: status,
    };
  });
  const quorum = quorumOf(list.map((m) => ({ name: m.name, status: m.effectiveStatus, roles: m.roles })));
  return {
    status: "healthy",
    quorum,
    members: list,
    reasons: [],
    hold: { held: false, reasons: [] },
    links: [],
    worstLinkMs: {},
    clockOffsets: {},
    versions: Object.fromEntries(list.map((m) => [m.name, "6.0.4"])),
    guidance: [],
    evaluatedAt: NOW,
    ...extra,
  };
}

export function observed(observation: Partial<Observation> = {}, at = NOW): ObservedState {
  return { at, via: "node1", observation: { config: {}, members: [], pools: [], networks: [], instances: [], ...observation } };
}

export function situationOf(spec: ClusterSpec, hosts: HostView[], extra: Partial<ClusterSituation> = {}): ClusterSituation {
  return {
    spec,
    claim: null,
    active: null,
    hosts: Object.fromEntries(hosts.map((h) => [h.node, h])),
    health: null,
    observed: null,
    observationDue: false,
    recentlyRemoved: new Set(),
    tokensAhead: new Set(),
    now: NOW,
    ...extra,
  };
}

export const formed = (node = "node1") => ({ node, claimedAt: "t", completedAt: new Date(NOW - 60_000).toISOString() });
