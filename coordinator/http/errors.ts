import type { FastifyError, FastifyInstance } from "fastify";
import { asFleetError, ErrorCode, FleetError, type Logger, type Problem } from "../../shared/index.js";
import { pointerToPath } from "../../shared/index.js";

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

function problemsOf(err: FastifyError): Problem[] {
  const context = err.validationContext ?? "request";
  return ((err.validation ?? []) as ValidationIssue[])
    .filter((v) => v.keyword !== "anyOf" && v.keyword !== "boolean")
    .map((v) => {
      const path = pointerToPath(v.instancePath ?? "");
      const where = context === "body" ? path : `${context}.${path === "(top level)" ? "" : path}`.replace(/\.$/, "");
      const extra = v.keyword === "additionalProperties" ? ` '${(v.params?.additionalProperties as string[] | undefined)?.join("', '")}'` : "";
      return { path: where, message: `${v.message ?? "is not valid"}${extra}` };
    });
}

/**
 * One error shape for every route: `{ error: { code, message, problems? } }`.
 * Failures inside the coordinator are logged in full and answered without
 * their internals.
 */
export function installErrorHandler(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError | FleetError, request, reply) => {
    if ("validation" in err && err.validation) {
      const problems = problemsOf(err as FastifyError);
      const code = request.routeOptions.url === "/v1/spec" && err.validationContext === "body" ? ErrorCode.SpecInvalid : ErrorCode.BadRequest;
      const first = problems[0];
      const message = `${code === ErrorCode.SpecInvalid ? "spec rejected" : "bad request"}: ${first ? `${first.path} ${first.message}` : err.message}`;
      return reply.status(400).send({ error: { code, message, problems } });
    }
    const fleet = err instanceof FleetError ? err : (err as FastifyError).statusCode && (err as FastifyError).statusCode! < 500 ? new FleetError(ErrorCode.BadRequest, err.message) : asFleetError(err);
    const status = fleet.httpStatus;
    if (status >= 500 && fleet.code === ErrorCode.Internal) {
      log.error({ err: err.message, stack: err.stack, url: request.url }, "request failed");
      return reply.status(500).send({ error: { code: fleet.code, message: "internal error; see the coordinator log" } });
    }
    return reply.status(status).send({ error: fleet.toJSON() });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: { code: ErrorCode.NotFound, message: `no route ${request.method} ${request.url.split("?")[0]}` } });
  });
}
