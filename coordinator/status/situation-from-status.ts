import type { ClusterSpec } from "../../shared/index.js";
import type { Operation } from "../operations/operation.js";
import type { ClusterSituation, HostView } from "../planner/types.js";
import type { BootstrapClaim } from "../store/records.js";
import type { ClusterStatusRecord } from "./cluster-status.js";

/**
 * The cluster as its owner last described it in the store, as a situation
 * the planner can plan against: any coordinator can answer a dry run or a
 * plan this way, for a spec that is not stored yet.
 */
export function situationFromStatus(spec: ClusterSpec, record: ClusterStatusRecord | undefined, claim: BootstrapClaim | null, active: Operation | null, now: number): ClusterSituation {
  const hosts: Record<string, HostView> = {};
  for (const h of record?.hosts ?? []) {
    hosts[h.name] = {
      node: h.name,
      enrolled: h.enrolled,
      agentOnline: h.agentOnline,
      facts: h.facts,
      preflight: h.preflight ? { report: { target: h.preflight.target, at: new Date(h.preflight.at).toISOString(), checks: h.preflight.checks }, at: h.preflight.at } : null,
      failures: h.failures,
      lastFailure: h.lastFailure,
      lastFailureAt: h.lastFailureAt,
    };
  }
  const o = record?.observed;
  return {
    spec,
    claim,
    active,
    hosts,
    health: record?.health ?? null,
    observed: o ? { at: o.at, via: o.via, observation: { config: o.config, members: o.members, pools: o.pools, networks: o.networks, instances: [] } } : null,
    observationDue: false,
    recentlyRemoved: new Set(),
    tokensAhead: new Set(),
    now,
  };
}
