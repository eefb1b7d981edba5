import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { AppDeps } from "../app.js";

export const metricsRoute: FastifyPluginAsyncTypebox<AppDeps> = async (app, { metrics }) => {
  // Prometheus text, not JSON: the one route besides the page without a JSON schema.
  app.get("/metrics", { config: { public: true } }, async (_request, reply) => {
    reply.header("Content-Type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
