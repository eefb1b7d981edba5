import { parseSpec, type ClusterSpec, type NodeFacts } from "../../shared/index.js";
import type { ClusterSnapshot, NodeSnapshot } from "../../coordinator/planner.js";

/** Builds planner inputs for tests: a spec of n members and what each agent says. */
export function specOf(names: string[], extra: Record<string, unknown> = {}): ClusterSpec {
  const members = Object.fromEntries(names.map((n, i) => [n, { address: `192.0.2.${11 + i}` }]));
  return parseSpec({ clusters: { c: { cluster_password: "test-password", members, ...extra } } }).spec.clusters[0]!;
}

export function facts(clustered: boolean, members?: string[], address = "192.0.2.99:8443"): NodeFacts {
  return {
    address,
    agentVersion: "test",
    incus: { observedAt: Date.now(), reachable: true, version: "6.0.4", clustered, ...(members ? { members } : {}) },
  };
}

export function node(name: string, f: NodeFacts | null, extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return { node: name, enrolled: true, agentOnline: true, facts: f, preflight: null, preflightAt: null, failures: 0, lastFailure: null, lastFailureAt: null, ...extra };
}

export function snapshotOf(spec: ClusterSpec, nodes: NodeSnapshot[], extra: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return {
    spec,
    claim: null,
    op: null,
    nodes: Object.fromEntries(nodes.map((n) => [n.node, n])),
    members: null,
    hold: { held: false, reasons: [] },
    clusterVersion: "6.0.4",
    meta: { settingsApplied: null, resourcesApplied: [] },
    now: 1_000_000,
    ...extra,
  };
}

export function passingPreflight(target: string) {
  return { target, at: new Date().toISOString(), checks: [{ name: "port" as const, ok: true, detail: "ok" }] };
}
