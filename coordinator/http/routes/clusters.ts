import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { clusterOf, ErrorCode, FleetError } from "../../../shared/index.js";
import type { AppDeps } from "../app.js";
import {
  ClusterList,
  ClusterParams,
  ClusterStatusReply,
  ErrorReply,
  EvacuateBody,
  ForgetReply,
  MemberList,
  MemberParams,
  OperationReply,
  PlanReply,
  RemoveQuery,
  RemoveReply,
  RestoreBody,
  RolloutBody,
} from "../schemas.js";

export const clusterRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { specs, status, operations, facts }) => {
  app.get("/v1/clusters", { schema: { response: { 200: ClusterList } } }, async () => status.summaries());

  app.get("/v1/clusters/:cluster", { schema: { params: ClusterParams, response: { 200: ClusterStatusReply, 404: ErrorReply } } }, async (request) => status.cluster(request.params.cluster));

  app.get("/v1/clusters/:cluster/members", { schema: { params: ClusterParams, response: { 200: MemberList, 404: ErrorReply } } }, async (request) => status.cluster(request.params.cluster).memberList);

  app.get("/v1/clusters/:cluster/plan", { schema: { params: ClusterParams, response: { 200: PlanReply, 404: ErrorReply } } }, async (request) => {
    const spec = clusterOf(specs.spec(), request.params.cluster);
    if (!spec) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${request.params.cluster}' is not in the spec`);
    const s = status.cluster(spec.name);
    return [{ cluster: spec.name, phase: s.phase, convergence: s.convergence, next: s.next, changes: specs.planFor(spec) }];
  });

  /** Long actions answer at once with the operation; its progress is in GET /v1/operations/:id, the events and the page. */
  app.post(
    "/v1/clusters/:cluster/members/:member/evacuate",
    { schema: { params: MemberParams, body: EvacuateBody, response: { 202: OperationReply, 404: ErrorReply, 409: ErrorReply } } },
    async (request, reply) => reply.status(202).send(await operations.evacuate(request.params.cluster, request.params.member, request.body ?? {})),
  );

  app.post(
    "/v1/clusters/:cluster/members/:member/restore",
    { schema: { params: MemberParams, body: RestoreBody, response: { 202: OperationReply, 404: ErrorReply, 409: ErrorReply } } },
    async (request, reply) => reply.status(202).send(await operations.restore(request.params.cluster, request.params.member, request.body ?? {})),
  );

  app.post(
    "/v1/clusters/:cluster/rollouts",
    { schema: { params: ClusterParams, body: RolloutBody, response: { 202: OperationReply, 400: ErrorReply, 404: ErrorReply, 409: ErrorReply } } },
    async (request, reply) => reply.status(202).send(await operations.rollout(request.params.cluster, request.body ?? {})),
  );

  /** Marks the member absent in the stored spec (the desired state changes; the answer says so); the owner removes it. */
  app.delete(
    "/v1/clusters/:cluster/members/:member",
    { schema: { params: MemberParams, querystring: RemoveQuery, response: { 202: RemoveReply, 404: ErrorReply, 409: ErrorReply } } },
    async (request, reply) => reply.status(202).send(await specs.markAbsent(request.params.cluster, request.params.member, request.query.force === true)),
  );

  /** Forgets a host's pinned Incus certificate (after a reinstall): its next enrollment pins the one it has then. */
  app.delete(
    "/v1/clusters/:cluster/members/:member/identity",
    { schema: { params: MemberParams, response: { 200: ForgetReply, 404: ErrorReply } } },
    async (request) => {
      if (!clusterOf(specs.spec(), request.params.cluster)) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${request.params.cluster}' is not in the spec`);
      return { forgotten: await facts.forgetIdentity(request.params.cluster, request.params.member) };
    },
  );
};
