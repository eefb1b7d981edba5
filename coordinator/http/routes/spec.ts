import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { parseSpec, SpecInput } from "../../../shared/index.js";
import type { AppDeps } from "../app.js";
import { ErrorReply, SpecApplied, SpecHeaders, SpecReply } from "../schemas.js";

export const specRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { reconciler }) => {
  app.get("/v1/spec", { schema: { response: { 200: SpecReply } } }, async () => {
    const { spec, revision, warnings, appliedAt } = reconciler.specState();
    return { revision, appliedAt, warnings, spec };
  });

  /**
   * Replaces the whole spec, as YAML or JSON. It is validated as a whole: on
   * any problem nothing is stored and every problem is named. `If-Match`
   * with the revision read earlier refuses the write if someone else wrote in between.
   */
  app.put(
    "/v1/spec",
    { schema: { body: SpecInput, headers: SpecHeaders, response: { 200: SpecApplied, 400: ErrorReply, 409: ErrorReply } } },
    async (request) => {
      const parsed = parseSpec(request.body);
      const ifMatch = request.headers["if-match"];
      const expected = ifMatch === undefined ? undefined : Number(ifMatch.replace(/"/g, ""));
      return reconciler.applySpec(parsed, expected);
    },
  );
};
