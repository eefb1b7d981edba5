import { memberConfigOf, type Assignment, type ClusterSpec, type MemberConfigEntry } from "../../shared/index.js";
import type { Operation } from "../operations/operation.js";
import type { ClusterPlan, ObservedState, PlannerLimits } from "../planner/types.js";

/** Member-specific keys a joiner must bring for the pools and networks the cluster already has. */
export function memberConfigFor(spec: ClusterSpec, observed: ObservedState | null, node: string): MemberConfigEntry[] {
  const out: MemberConfigEntry[] = [];
  const exists = (list: { name: string }[] | undefined, name: string) => !!list?.some((r) => r.name === name);
  for (const pool of spec.pools) {
    if (!pool.present || !exists(observed?.observation.pools, pool.name)) continue;
    for (const [key, value] of Object.entries(memberConfigOf(pool, node))) out.push({ entity: "storage-pool", name: pool.name, key, value });
  }
  for (const network of spec.networks) {
    if (!network.present || !exists(observed?.observation.networks, network.name)) continue;
    for (const [key, value] of Object.entries(memberConfigOf(network, node))) out.push({ entity: "network", name: network.name, key, value });
  }
  return out;
}

export interface AssignmentContext {
  spec: ClusterSpec;
  plan: ClusterPlan | null;
  active: Operation | null;
  observed: ObservedState | null;
  clusterVersion: string | null;
  inView: boolean;
  limits: PlannerLimits;
}

/** What a host is told on its pull: the decision of the cluster's latest plan, with what the host needs to carry it out. */
export function assignmentFor(node: string, ctx: AssignmentContext): Assignment {
  const { spec, plan, active } = ctx;
  const d = plan?.decisions[node];
  if (!plan) return { kind: "wait", reason: "the coordinator is working out the plan", retryAfterMs: 500 };
  if (!d) {
    return ctx.inView ? { kind: "member", reason: "no longer in the spec; its removal is pending" } : { kind: "retired", reason: `not in the spec of cluster '${spec.name}'` };
  }
  const member = spec.members.find((m) => m.name === node);
  switch (d.kind) {
    case "bootstrap":
      return { kind: "bootstrap", serverName: node, address: member!.address };
    case "join": {
      const token = active?.kind === "join" && active.member === node ? active.data.token : undefined;
      if (!token) return { kind: "wait", reason: "a join token is being minted", retryAfterMs: 500 };
      return {
        kind: "join",
        serverName: node,
        address: member!.address,
        clusterAddress: token.clusterAddress,
        clusterCertificate: token.clusterCertificate,
        sealedToken: token.sealedToken,
        memberConfig: memberConfigFor(spec, ctx.observed, node),
      };
    }
    case "prepare":
      return {
        kind: "prepare",
        reason: d.reason,
        target: d.target,
        ...(ctx.clusterVersion ? { expectedVersion: ctx.clusterVersion } : {}),
        limits: { latencyMs: ctx.limits.latencyMs, clockOffsetMs: ctx.limits.clockOffsetMs },
        needs: { storageDrivers: [...new Set(spec.pools.filter((p) => p.present).map((p) => p.driver))], networkTypes: [...new Set(spec.networks.filter((n) => n.present).map((n) => n.type))] },
      };
    default:
      return d;
  }
}

/** Whether an answer (by its signature) leaves the agent asking again only at its idle pull interval. */
export const isIdleSignature = (signature: string): boolean => signature.startsWith("member:") || signature.startsWith("retired:");

/** Two assignments are the same answer when a waiting agent would not act differently. */
export function assignmentSignature(a: Assignment): string {
  return a.kind === "wait" ? "wait" : a.kind === "join" ? `join:${a.sealedToken.slice(0, 16)}` : `${a.kind}:${"reason" in a ? a.reason : ""}`;
}
