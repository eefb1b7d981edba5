import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import websocket from "@fastify/websocket";
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../shared/index.js";
import type { EventLog } from "../events/event-log.js";
import type { AgentFacts } from "../gateway/agent-facts.js";
import type { LeaseManager } from "../leases/lease-manager.js";
import type { Metrics } from "../metrics.js";
import type { OperationService } from "../operations/operation-service.js";
import type { SpecService } from "../spec/spec-service.js";
import type { StatusView } from "../status/status-view.js";
import { EVENTS_PROTOCOL, installAuth } from "./auth.js";
import { installBodyParsers } from "./body-parsers.js";
import { clientErrorHandler, frameworkErrors, installErrorHandler } from "./errors.js";
import { clusterRoutes } from "./routes/clusters.js";
import { eventRoutes } from "./routes/events.js";
import { fleetRoutes } from "./routes/fleet.js";
import { metricsRoute } from "./routes/metrics.js";
import { operationRoutes } from "./routes/operations.js";
import { specRoutes } from "./routes/spec.js";
import { webPage } from "./routes/web.js";

export interface AppDeps {
  specs: SpecService;
  operations: OperationService;
  status: StatusView;
  events: EventLog;
  metrics: Metrics;
  leases: LeaseManager;
  facts: AgentFacts;
  nc: NatsConnection | null;
  apiToken: string;
  /** Web origins besides the API's own that may open the event WebSocket. */
  allowedOrigins: string[];
  log: Logger;
}

/**
 * The largest request body: the stored spec must fit in one NATS message
 * (1 MB by default) with room for what is stored beside it.
 */
export const BODY_LIMIT = 512 * 1024;

/**
 * The coordinator's HTTP API as an application that tests build without
 * listening (`inject()`); `main.ts` only starts it.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ part: "http" }) as FastifyBaseLogger,
    // Requests are counted in metrics, not logged one by one.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: 200 },
    frameworkErrors,
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  installErrorHandler(app, deps.log);
  installBodyParsers(app);
  // Before the token check: a refused upgrade must still be marked as one, so that its socket is closed after the 401.
  await app.register(websocket, {
    options: {
      maxPayload: 64 * 1024,
      // The browser offers the token as a second subprotocol; the server answers with the events one.
      handleProtocols: (protocols: Set<string>) => (protocols.has(EVENTS_PROTOCOL) ? EVENTS_PROTOCOL : false),
    },
  });
  installAuth(app, deps.apiToken);

  app.addHook("onRequest", async (request) => {
    (request as { startedAt?: number }).startedAt = performance.now();
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const started = (request as { startedAt?: number }).startedAt ?? performance.now();
    deps.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    deps.metrics.httpDuration.observe({ method: request.method, route }, (performance.now() - started) / 1000);
  });

  await app.register(fleetRoutes, deps);
  await app.register(specRoutes, deps);
  await app.register(clusterRoutes, deps);
  await app.register(operationRoutes, deps);
  await app.register(eventRoutes, deps);
  await app.register(metricsRoute, deps);
  await app.register(webPage, deps);
  return app as unknown as FastifyInstance;
}
