import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { FLEET_VERSION } from "../../../shared/index.js";
import type { AppDeps } from "../app.js";
import { CoordinatorList, HealthReply, NodeList, PlanReply } from "../schemas.js";

export const fleetRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { specs, status, metrics, nc, leases }) => {
  app.get("/v1/health", { config: { public: true }, schema: { response: { 200: HealthReply } } }, async () => {
    const connected = !!nc && !nc.isClosed();
    const degraded = !connected || status.quorumLost().length > 0;
    return {
      status: degraded ? ("degraded" as const) : ("ok" as const),
      version: FLEET_VERSION,
      coordinator: { id: leases.id, name: leases.name, owns: leases.ownedClusters().length },
      nats: { connected, heartbeatBacklog: metrics.heartbeatBacklogNow() },
      specRevision: specs.current().revision,
      clusters: specs.spec().clusters.length,
    };
  });

  app.get("/v1/nodes", { schema: { response: { 200: NodeList } } }, async () => status.nodes());

  /** The coordinators sharing the fleet, and the clusters each owns now. */
  app.get("/v1/coordinators", { schema: { response: { 200: CoordinatorList } } }, async () => {
    const owners = new Map<string, string[]>();
    for (const c of specs.spec().clusters) {
      const owner = leases.ownerOf(c.name);
      if (owner) owners.set(owner.owner, [...(owners.get(owner.owner) ?? []), c.name]);
    }
    return leases.liveCoordinators().map((c) => ({ id: c.id, name: c.name, startedAt: new Date(c.startedAt).toISOString(), owns: owners.get(c.id) ?? [] }));
  });

  /** A dry run of the stored spec: every change with its value now and the value wanted, and every refusal with its reason. */
  app.get("/v1/plan", { schema: { response: { 200: PlanReply } } }, async () =>
    specs.spec().clusters.map((c) => {
      const s = status.cluster(c.name);
      return { cluster: c.name, phase: s.phase, convergence: s.convergence, next: s.next, changes: specs.planFor(c) };
    }),
  );
};
