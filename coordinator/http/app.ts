import { timingSafeEqual } from "node:crypto";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import websocket from "@fastify/websocket";
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { NatsConnection } from "@nats-io/transport-node";
import { parse as parseYaml } from "yaml";
import { ErrorCode, FleetError, SpecError, type Logger } from "../../shared/index.js";
import type { EventPublisher } from "../event-publisher.js";
import type { Metrics } from "../metrics.js";
import type { Reconciler } from "../reconciler.js";
import type { StatusView } from "../status.js";
import { installErrorHandler } from "./errors.js";
import { clusterRoutes } from "./routes/clusters.js";
import { eventRoutes } from "./routes/events.js";
import { fleetRoutes } from "./routes/fleet.js";
import { metricsRoute } from "./routes/metrics.js";
import { specRoutes } from "./routes/spec.js";
import { webPage } from "./routes/web.js";

export interface AppDeps {
  reconciler: Reconciler;
  status: StatusView;
  events: EventPublisher;
  metrics: Metrics;
  nc: NatsConnection | null;
  apiToken: string;
  log: Logger;
}

const YAML_TYPES = ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"];

function tokenMatches(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The coordinator's HTTP API as an application that tests build without
 * listening (`inject()`); `main.ts` only starts it.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  // Requests are counted in metrics, not logged one by one.
  const app = Fastify({
    loggerInstance: deps.log.child({ part: "http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4 * 1024 * 1024,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  installErrorHandler(app, deps.log);

  app.addContentTypeParser(YAML_TYPES, { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, parseYaml(body as string, { uniqueKeys: true }));
    } catch (err) {
      done(new SpecError([{ path: "(document)", message: `not valid YAML: ${(err as Error).message.split("\n")[0]}` }]), undefined);
    }
  });

  app.addHook("onRequest", async (request) => {
    (request as { startedAt?: number }).startedAt = performance.now();
    if (!deps.apiToken) return;
    const url = request.url.split("?")[0]!;
    if (!url.startsWith("/v1/") || url === "/v1/health") return;
    const header = request.headers.authorization;
    const bearer = header?.startsWith("Bearer ") ? header.slice(7) : undefined;
    const fromQuery = url === "/v1/events/stream" ? (request.query as { token?: string }).token : undefined;
    if (!tokenMatches(bearer ?? fromQuery, deps.apiToken)) {
      throw new FleetError(ErrorCode.Unauthorized, "missing or wrong API token (Authorization: Bearer <token>)");
    }
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unknown";
    const started = (request as { startedAt?: number }).startedAt ?? performance.now();
    deps.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    deps.metrics.httpDuration.observe({ method: request.method, route }, (performance.now() - started) / 1000);
  });

  await app.register(websocket);
  await app.register(fleetRoutes, deps);
  await app.register(specRoutes, deps);
  await app.register(clusterRoutes, deps);
  await app.register(eventRoutes, deps);
  await app.register(metricsRoute, deps);
  await app.register(webPage, deps);
  return app as unknown as FastifyInstance;
}
