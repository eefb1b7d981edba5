import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { WebSocket } from "ws";
import { FleetEvent, Subject, WireCodec, type FleetEvent as Event } from "../../../shared/index.js";
import type { AppDeps } from "../app.js";
import { EventList, EventsQuery } from "../schemas.js";

const eventCodec = new WireCodec("FleetEvent", FleetEvent);

/**
 * Fleet events over HTTP: the recent ones as a list, and a live WebSocket
 * stream. The stream follows NATS, so it carries the events of every
 * coordinator sharing the store, in the order each one published them.
 */
export const eventRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { events, nc, log }) => {
  const clients = new Set<{ socket: WebSocket; cluster: string | undefined }>();
  const forward = (event: Event) => {
    const text = JSON.stringify(event);
    for (const c of clients) if (!c.cluster || c.cluster === event.cluster) c.socket.send(text);
  };
  if (nc) {
    const sub = nc.subscribe(Subject.eventsAll, {
      callback: (_err, msg) => {
        const decoded = eventCodec.decode(msg.data);
        if (decoded.ok) forward(decoded.value);
        else log.warn({ reason: decoded.reason }, "dropped an invalid fleet event");
      },
    });
    app.addHook("onClose", async () => sub.unsubscribe());
  } else {
    const off = events.onEvent(forward);
    app.addHook("onClose", async () => off());
  }

  app.get("/v1/events", { schema: { querystring: EventsQuery, response: { 200: EventList } } }, async (request) =>
    events.recent({ ...(request.query.cluster ? { cluster: request.query.cluster } : {}), limit: request.query.limit ?? 100 }),
  );

  app.get("/v1/events/stream", { websocket: true, schema: { querystring: EventsQuery } }, (socket, request) => {
    const { cluster, replay } = request.query;
    for (const e of events.recent({ ...(cluster ? { cluster } : {}), limit: replay ?? 0 })) if (replay) socket.send(JSON.stringify(e));
    const client = { socket, cluster };
    clients.add(client);
    socket.on("close", () => clients.delete(client));
  });
};
