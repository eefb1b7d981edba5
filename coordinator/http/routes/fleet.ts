import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { FLEET_VERSION } from "../../../shared/index.js";
import type { AppDeps } from "../app.js";
import { HealthReply, NodeList, PlanReply } from "../schemas.js";

export const fleetRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { reconciler, nc, status, metrics }) => {
  app.get("/v1/health", { schema: { response: { 200: HealthReply } } }, async () => {
    const connected = !!nc && !nc.isClosed();
    const degraded = !connected || status.quorumLost().length > 0;
    return {
      status: degraded ? ("degraded" as const) : ("ok" as const),
      version: FLEET_VERSION,
      nats: { connected, heartbeatBacklog: metrics.heartbeatBacklogNow() },
      specRevision: reconciler.specState().revision,
      clusters: reconciler.spec().clusters.length,
    };
  });

  app.get("/v1/nodes", { schema: { response: { 200: NodeList } } }, async () =>
    reconciler.nodes().map((r) => ({ cluster: r.cluster, node: r.node, state: r.state, reason: r.reason, since: r.since, address: r.facts?.address ?? null, incus: r.facts?.incus ?? null, failures: r.failures })),
  );

  /** A dry run: what the coordinator would do next for every cluster, and why each node gets what it gets. */
  app.get("/v1/plan", { schema: { response: { 200: PlanReply } } }, async () =>
    reconciler.spec().clusters.flatMap((c) => {
      const plan = reconciler.plan(c.name);
      return plan ? [{ cluster: plan.cluster, phase: plan.phase, steps: plan.steps.map((s) => ({ ...s })), decisions: plan.decisions }] : [];
    }),
  );
};
