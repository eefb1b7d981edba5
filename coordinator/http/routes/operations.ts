import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { AppDeps } from "../app.js";
import { ErrorReply, OperationList, OperationParams, OperationReply, OperationsQuery } from "../schemas.js";

export const operationRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { operations }) => {
  app.get("/v1/operations", { schema: { querystring: OperationsQuery, response: { 200: OperationList } } }, async (request) => operations.list(request.query.cluster));

  app.get("/v1/operations/:id", { schema: { params: OperationParams, response: { 200: OperationReply, 404: ErrorReply } } }, async (request) => operations.get(request.params.id));

  for (const action of ["cancel", "pause", "resume"] as const) {
    app.post(`/v1/operations/:id/${action}`, { schema: { params: OperationParams, response: { 202: OperationReply, 400: ErrorReply, 404: ErrorReply, 409: ErrorReply } } }, async (request, reply) =>
      reply.status(202).send(await operations.request(request.params.id, action)),
    );
  }
};
