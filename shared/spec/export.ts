import { stringify } from "yaml";
import type { FleetSpec, ResourceSpec } from "./model.js";

function resource(r: ResourceSpec): Record<string, unknown> {
  const config = { ...r.memberDefaults, ...r.config };
  return {
    ...(r.description ? { description: r.description } : {}),
    ...(Object.keys(config).length ? { config } : {}),
    ...(Object.keys(r.memberConfig).length ? { member_config: r.memberConfig } : {}),
    ...(r.present ? {} : { present: false }),
  };
}

/**
 * The stored spec as a document in incus-fleet's own shape, which parses
 * back to the same spec. Passwords are not stored and not exported: a
 * cluster that already exists keeps its keys when its password is left out.
 */
export function exportSpec(spec: FleetSpec): { clusters: Record<string, unknown> } {
  const clusters: Record<string, unknown> = {};
  for (const c of spec.clusters) {
    clusters[c.name] = {
      ...(c.bootstrap ? { bootstrap: c.bootstrap } : {}),
      ...(c.policy.drift !== "correct" ? { drift_policy: c.policy.drift } : {}),
      ...(c.policy.prune ? { prune: true } : {}),
      ...(Object.keys(c.config).length ? { server_settings: { config: c.config } } : {}),
      members: Object.fromEntries(
        c.members.map((m) => [
          m.name,
          {
            address: m.address,
            ...(m.named ? {} : { named_by_agent: true }),
            ...(m.description ? { description: m.description } : {}),
            ...(m.failureDomain !== "default" ? { failure_domain: m.failureDomain } : {}),
            ...(m.groups.length !== 1 || m.groups[0] !== "default" ? { groups: m.groups } : {}),
            ...(m.present ? {} : { present: false }),
            ...(m.force ? { force: true } : {}),
            ...(m.fingerprint ? { certificate_fingerprint: m.fingerprint } : {}),
          },
        ]),
      ),
      ...(c.pools.length ? { storage_pools: Object.fromEntries(c.pools.map((p) => [p.name, { driver: p.driver, ...resource(p) }])) } : {}),
      ...(c.networks.length ? { networks: Object.fromEntries(c.networks.map((n) => [n.name, { type: n.type, ...resource(n) }])) } : {}),
    };
  }
  return { clusters };
}

export function exportSpecYaml(spec: FleetSpec, revision: number): string {
  return `# incus-fleet spec, revision ${revision}. Cluster passwords are kept by the coordinators: leave them out to keep them.\n${stringify(exportSpec(spec))}`;
}
