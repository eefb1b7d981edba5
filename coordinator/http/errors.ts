import type { Socket } from "node:net";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { asFleetError, ErrorCode, FleetError, pointerToPath, type Logger, type Problem } from "../../shared/index.js";
import { isTransient } from "../store/jetstream-errors.js";

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

/** The stable code of an error the framework itself raised, by its HTTP status. */
function codeForStatus(status: number): ErrorCode {
  if (status === 401) return ErrorCode.Unauthorized;
  if (status === 404) return ErrorCode.NotFound;
  if (status === 405) return ErrorCode.NotAllowed;
  if (status === 413) return ErrorCode.PayloadTooLarge;
  if (status === 429) return ErrorCode.RateLimited;
  return ErrorCode.BadRequest;
}

export function errorBody(code: ErrorCode, message: string, problems?: Problem[]) {
  return { error: { code, message, ...(problems && problems.length > 0 ? { problems } : {}) } };
}

function send(reply: FastifyReply, status: number, code: ErrorCode, message: string, problems?: Problem[]): FastifyReply {
  return reply.status(status).type("application/json; charset=utf-8").send(errorBody(code, message, problems));
}

/** A request the framework could not even route (a bad URL): answered in the same shape. */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void send(reply, err.statusCode && err.statusCode < 500 ? err.statusCode : 400, ErrorCode.BadRequest, `bad request: ${err.message}`);
}

/**
 * What Node's HTTP parser refuses before Fastify sees a request (headers too
 * large, a malformed request line) is answered in the same error shape too.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, text, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, "Request Header Fields Too Large", "the request's headers are too large"]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "Request Timeout", "the request took too long to arrive"]
        : [400, "Bad Request", "the request is not valid HTTP"];
  const body = JSON.stringify(errorBody(ErrorCode.BadRequest, message));
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * One error shape for every route and every failure, the framework's own
 * included: `{ error: { code, message, problems? } }` with a stable code.
 * Failures inside the coordinator are logged in full and answered without
 * their internals; nothing a caller sends is answered with a 500.
 */
export function installErrorHandler(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError | FleetError, request, reply) => {
    if ("validation" in err && err.validation) {
      const problems = problemsOf(err as FastifyError);
      const code = request.routeOptions.url === "/v1/spec" && (err as FastifyError).validationContext === "body" ? ErrorCode.SpecInvalid : ErrorCode.BadRequest;
      const first = problems[0];
      return send(reply, 400, code, `${code === ErrorCode.SpecInvalid ? "spec rejected" : "bad request"}: ${first ? `${first.path} ${first.message}` : err.message}`, problems);
    }
    if (err instanceof FleetError) {
      if (err.code === ErrorCode.Internal) {
        log.error({ err: err.message, stack: err.stack, url: request.url }, "request failed");
        return send(reply, 500, ErrorCode.Internal, "internal error; see the coordinator log");
      }
      return send(reply, err.httpStatus, err.code, err.message, err.problems);
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) return send(reply, status, codeForStatus(status), err.message);
    if (isTransient(err)) {
      log.warn({ err: err.message, url: request.url }, "the fleet store is unavailable for a moment");
      return send(reply, 503, ErrorCode.Unavailable, "the fleet store is unavailable for a moment (a NATS server or its leader is changing); try again");
    }
    const fleet = asFleetError(err);
    log.error({ err: err.message, stack: err.stack, url: request.url }, "request failed");
    return send(reply, fleet.httpStatus >= 500 ? fleet.httpStatus : 500, fleet.code === ErrorCode.Internal ? ErrorCode.Internal : fleet.code, fleet.code === ErrorCode.Internal ? "internal error; see the coordinator log" : fleet.message);
  });
  app.setNotFoundHandler((request, reply) => {
    void send(reply, 404, ErrorCode.NotFound, `no route ${request.method} ${request.url.split("?")[0]!.slice(0, 200)}`);
  });
}
