/**
 * Renders the fleet event reference (docs/events.md) from the event table,
 * so the documentation cannot drift from what the coordinator publishes.
 * Run: node dist/coordinator/events-doc.js > docs/events.md
 */
import { fileURLToPath } from "node:url";
import { EventKinds, Subject, WIRE_VERSION } from "../shared/index.js";

export function renderEventsDoc(): string {
  const rows = Object.entries(EventKinds).map(([kind, k]) => `| \`${kind}\` | ${k.severity} | ${k.when} | ${k.data ? k.data.replace(/\|/g, "\\|") : "(none)"} |`);
  return `# Fleet events

The coordinator publishes every change of state as a fleet event.

- **NATS subject:** \`${Subject.event("<cluster>", "<kind>")}\`; subscribe to
  \`${Subject.eventsAll}\` for all, \`${Subject.eventsOf("<cluster>")}\` for one cluster
  (the \`observer\` credential of \`incus-fleet setup\` may do exactly that). Only
  coordinators may publish there.
- **Stream:** every event is kept in the JetStream stream \`<prefix>-events\`
  (seven days, 64 MB by default), so history survives restarts and is the
  same from every coordinator; an event published twice (a coordinator
  resuming another's operation) is kept once. An operation's events are
  stored with the change they announce, so a coordinator that dies between
  storing a change and publishing its events loses none: the next owner of
  the cluster publishes them (within the stream's two-minute duplicate
  window, where a copy it already has is dropped).
- **HTTP:** \`GET /v1/events?cluster=<name>&limit=<n>\`, \`&after=<seq>\` or
  \`&since=<ISO time>\` lists them, oldest first.
- **WebSocket:** \`GET /v1/events/stream?cluster=<name>&replay=<n>\` (or
  \`&after=<seq>\`, to pick up after a reconnect) streams them live; the token
  goes in the \`Authorization\` header or, from a browser, as the subprotocol
  \`bearer.<token>\` beside \`incus-fleet-events\`.

Events are only published on a change (a link turning slow for several probes,
an agent going silent), never on every heartbeat. No event carries a password,
token or key.

## Payload (wire version ${WIRE_VERSION})

JSON, validated on receipt against the \`FleetEvent\` schema in \`shared/events.ts\`:

| field | type | meaning |
| --- | --- | --- |
| \`id\` | string | unique; the same change published twice has the same id |
| \`seq\` | integer | the event's place in the stream: rises with every event of the fleet |
| \`at\` | string | ISO 8601 time of publication |
| \`cluster\` | string | the cluster the event is about |
| \`kind\` | string | one of the kinds below |
| \`severity\` | string | \`info\`, \`warning\` or \`critical\` |
| \`node\` | string, optional | the member the event is about |
| \`message\` | string | one line for people |
| \`data\` | object | the fields listed per kind below |

## Kinds

| kind | severity | published when | data |
| --- | --- | --- | --- |
${rows.join("\n")}
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(renderEventsDoc());
