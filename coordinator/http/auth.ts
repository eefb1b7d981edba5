import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ErrorCode, FleetError } from "../../shared/index.js";

/** The WebSocket subprotocol that carries the token, for browsers (which cannot set headers on a WebSocket). */
export const TOKEN_PROTOCOL_PREFIX = "bearer.";
export const EVENTS_PROTOCOL = "incus-fleet-events";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route answers without a token (health checks, metrics, the page itself). */
    public?: boolean;
  }
}

function tokenMatches(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function tokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith("Bearer ")) return header.slice(7).trim();
  const protocols = request.headers["sec-websocket-protocol"];
  if (typeof protocols === "string") {
    const offered = protocols.split(",").map((p) => p.trim()).find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
    if (offered) return offered.slice(TOKEN_PROTOCOL_PREFIX.length);
  }
  return undefined;
}

/**
 * Authentication is decided on the route the router matched, never on the
 * raw URL: a route is public only if it says so, and anything that matches
 * no route needs the token too.
 */
export function installAuth(app: FastifyInstance, apiToken: string): void {
  if (!apiToken) return;
  app.addHook("onRequest", async (request) => {
    if (request.routeOptions.config?.public === true) return;
    if (!tokenMatches(tokenOf(request), apiToken)) {
      throw new FleetError(ErrorCode.Unauthorized, "missing or wrong API token (Authorization: Bearer <token>, or the WebSocket subprotocol bearer.<token>)");
    }
  });
}
