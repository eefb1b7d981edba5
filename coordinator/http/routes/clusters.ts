import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ErrorCode, FleetError } from "../../../shared/index.js";
import type { AppDeps } from "../app.js";
import {
  ClusterList,
  ClusterParams,
  ClusterStatusReply,
  ErrorReply,
  EvacuateBody,
  MaintenanceReply,
  MemberList,
  MemberParams,
  PlanReply,
  RemoveQuery,
  RemoveReply,
  RestoreBody,
} from "../schemas.js";

export const clusterRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { reconciler, status }) => {
  app.get("/v1/clusters", { schema: { response: { 200: ClusterList } } }, async () => status.summaries());

  app.get("/v1/clusters/:cluster", { schema: { params: ClusterParams, response: { 200: ClusterStatusReply, 404: ErrorReply } } }, async (request) =>
    status.cluster(request.params.cluster),
  );

  app.get("/v1/clusters/:cluster/members", { schema: { params: ClusterParams, response: { 200: MemberList, 404: ErrorReply } } }, async (request) =>
    status.cluster(request.params.cluster).memberList,
  );

  app.get("/v1/clusters/:cluster/plan", { schema: { params: ClusterParams, response: { 200: PlanReply, 404: ErrorReply } } }, async (request) => {
    const plan = reconciler.plan(request.params.cluster);
    if (!plan) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${request.params.cluster}' is not in the spec`);
    return [{ cluster: plan.cluster, phase: plan.phase, steps: plan.steps.map((s) => ({ ...s })), decisions: plan.decisions }];
  });

  app.post(
    "/v1/clusters/:cluster/members/:member/evacuate",
    { schema: { params: MemberParams, body: EvacuateBody, response: { 200: MaintenanceReply, 404: ErrorReply, 409: ErrorReply } } },
    async (request) => reconciler.maintenance(request.params.cluster, request.params.member, "evacuate", request.body ?? {}),
  );

  app.post(
    "/v1/clusters/:cluster/members/:member/restore",
    { schema: { params: MemberParams, body: RestoreBody, response: { 200: MaintenanceReply, 404: ErrorReply, 409: ErrorReply } } },
    async (request) => reconciler.maintenance(request.params.cluster, request.params.member, "restore", request.body ?? {}),
  );

  /** Marks the member absent in the spec; the reconciler removes it. Refused at once if the rules say no. */
  app.delete(
    "/v1/clusters/:cluster/members/:member",
    { schema: { params: MemberParams, querystring: RemoveQuery, response: { 202: RemoveReply, 404: ErrorReply, 409: ErrorReply } } },
    async (request, reply) => {
      const force = request.query.force === true;
      const { revision, verdict } = await reconciler.markAbsent(request.params.cluster, request.params.member, force);
      return reply.status(202).send({ revision, forced: force, reasons: verdict.reasons });
    },
  );
};
