import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ErrorCode, exportSpecYaml, FleetError, parseSpec, type ParsedSpec } from "../../../shared/index.js";
import type { AppDeps } from "../app.js";
import { ErrorReply, SpecApplied, SpecHeaders, SpecQuery, SpecReply } from "../schemas.js";

export const specRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { specs }) => {
  /** The stored spec: JSON by default, or YAML in incus-fleet's own shape that parses back to it (?format=yaml, or Accept: application/yaml). */
  app.get("/v1/spec", { schema: { querystring: SpecQuery, response: { 200: SpecReply } } }, async (request, reply) => {
    const current = specs.current();
    const wantsYaml = request.query.format === "yaml" || (request.query.format === undefined && /yaml/.test(request.headers.accept ?? ""));
    if (wantsYaml) return reply.type("application/yaml; charset=utf-8").serializer((x: unknown) => String(x)).send(exportSpecYaml(current.spec, current.revision));
    return { revision: current.revision, appliedAt: current.appliedAt, source: current.source, warnings: current.warnings, spec: current.spec };
  });

  /**
   * Replaces the whole spec, as YAML or JSON, in any shape the parser takes.
   * It is validated as a whole and checked against the clusters as they are;
   * on any problem nothing is stored and every problem is named. With
   * ?dry_run=true the answer is the same and nothing is stored. `If-Match`
   * with the revision read earlier refuses the write if someone else wrote
   * in between.
   */
  app.put(
    "/v1/spec",
    { schema: { querystring: SpecQuery, headers: SpecHeaders, response: { 200: SpecApplied, 400: ErrorReply, 409: ErrorReply, 413: ErrorReply } } },
    async (request) => {
      if (request.body === undefined || request.body === null) throw new FleetError(ErrorCode.SpecInvalid, "spec rejected: the body is empty", { problems: [{ path: "(document)", message: "is empty" }] });
      const parsed: ParsedSpec = parseSpec(request.body, { knownClusters: specs.knownClusters() });
      const ifMatch = request.headers["if-match"];
      const expectedRevision = ifMatch === undefined ? undefined : Number(ifMatch.replace(/"/g, ""));
      return specs.apply(parsed, { ...(expectedRevision !== undefined ? { expectedRevision } : {}), source: "api", dryRun: request.query.dry_run === true });
    },
  );
};
