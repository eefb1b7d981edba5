import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { ErrorCode, FleetError, type FleetEvent } from "../../../shared/index.js";
import type { AppDeps } from "../app.js";
import { EventList, EventsQuery, StreamQuery } from "../schemas.js";

/** Whether a browser page from this origin may open the stream: the API's own origin, or one configured. */
function originAllowed(request: FastifyRequest, allowed: string[]): boolean {
  const origin = request.headers.origin;
  // Clients that are not browsers send no Origin; they authenticate with the token like any other.
  if (origin === undefined) return true;
  const host = request.headers.host;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false;
  }
  return (host !== undefined && parsed.host === host && (parsed.protocol === "http:" || parsed.protocol === "https:")) || allowed.includes(parsed.origin);
}

/**
 * Fleet events over HTTP: history from the event stream (the same from
 * every coordinator, after restarts), and a live WebSocket that replays
 * history first and never gives an event twice.
 */
export const eventRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { events, allowedOrigins }) => {
  app.get("/v1/events", { schema: { querystring: EventsQuery, response: { 200: EventList } } }, async (request) => {
    const { cluster, limit, after, since } = request.query;
    const sinceTime = since === undefined ? undefined : Date.parse(since);
    if (sinceTime !== undefined && Number.isNaN(sinceTime)) throw new FleetError(ErrorCode.BadRequest, "since: not a time", { problems: [{ path: "querystring.since", message: "is not a time (ISO 8601)" }] });
    const oldest = events.oldestRecent();
    const beyondRecent = (after !== undefined && oldest !== undefined && after < oldest.seq - 1) || (sinceTime !== undefined && oldest !== undefined && sinceTime < Date.parse(oldest.at));
    if (beyondRecent) return events.read(after !== undefined ? { seq: after + 1 } : { time: sinceTime! }, { ...(cluster ? { cluster } : {}), limit: limit ?? 100 });
    return events.recent({ ...(cluster ? { cluster } : {}), limit: limit ?? 100, ...(after !== undefined ? { afterSeq: after } : {}), ...(sinceTime !== undefined ? { sinceTime } : {}) });
  });

  app.get(
    "/v1/events/stream",
    {
      websocket: true,
      schema: { querystring: StreamQuery },
      preValidation: async (request) => {
        if (!originAllowed(request, allowedOrigins)) throw new FleetError(ErrorCode.Unauthorized, `origin ${request.headers.origin} may not open the event stream`);
      },
    },
    (socket: WebSocket, request) => {
      const { cluster, replay, after } = request.query;
      let last = after ?? 0;
      const send = (e: FleetEvent) => {
        if (e.seq <= last || (cluster && e.cluster !== cluster)) return;
        last = e.seq;
        socket.send(JSON.stringify(e));
      };
      const history = after !== undefined ? events.recent({ ...(cluster ? { cluster } : {}), afterSeq: after, limit: 2_000 }) : events.recent({ ...(cluster ? { cluster } : {}), limit: replay ?? 0 });
      if (after !== undefined || replay) for (const e of history) send(e);
      else last = events.recent({ limit: 1 })[0]?.seq ?? 0;
      const off = events.onEvent(send);
      socket.on("close", off);
    },
  );
};
