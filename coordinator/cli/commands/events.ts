import type { Command } from "commander";
import WebSocket from "ws";
import { call, CliError, tokenOf, type Globals } from "../api-client.js";

interface Event {
  seq: number;
  at: string;
  cluster: string;
  kind: string;
  severity: string;
  message: string;
}

function print(g: Globals, e: Event, raw: string): void {
  process.stdout.write(g.json ? `${raw}\n` : `${e.at}  ${e.cluster}  ${e.severity.padEnd(8)} ${e.kind.padEnd(22)} ${e.message}\n`);
}

export function eventCommands(program: Command, globals: () => Globals): void {
  program
    .command("events")
    .description("fleet events: history, then live (the same from any coordinator)")
    .option("--cluster <name>", "only this cluster")
    .option("--since <time>", "start at this time (ISO 8601, e.g. 2026-11-29T10:00:00Z)")
    .option("--replay <n>", "start with the last n events", "20")
    .option("--no-follow", "print the history and stop")
    .action(async (opts: { cluster?: string; since?: string; replay: string; follow: boolean }) => {
      const g = globals();
      let last = 0;
      const history = opts.since
        ? await call<Event[]>(g, "GET", `/v1/events?${new URLSearchParams({ since: opts.since, limit: "2000", ...(opts.cluster ? { cluster: opts.cluster } : {}) })}`)
        : await call<Event[]>(g, "GET", `/v1/events?${new URLSearchParams({ limit: String(Math.max(1, Number(opts.replay) || 1)), ...(opts.cluster ? { cluster: opts.cluster } : {}) })}`);
      for (const e of opts.since || Number(opts.replay) > 0 ? history : []) {
        print(g, e, JSON.stringify(e));
        last = Math.max(last, e.seq);
      }
      if (!opts.follow) return;
      if (last === 0) last = history.at(-1)?.seq ?? 0;
      const token = tokenOf(g);
      // The stream starts right after the last event printed: nothing is missed, nothing shown twice.
      const url = `${g.api.replace(/^http/, "ws").replace(/\/$/, "")}/v1/events/stream?${new URLSearchParams({ after: String(last), ...(opts.cluster ? { cluster: opts.cluster } : {}) })}`;
      const ws = new WebSocket(url, ["incus-fleet-events", ...(token ? [`bearer.${token}`] : [])]);
      ws.on("message", (data: WebSocket.RawData) => {
        const raw = data.toString();
        print(g, JSON.parse(raw) as Event, raw);
      });
      await new Promise<void>((resolve, reject) => {
        ws.on("close", () => resolve());
        ws.on("unexpected-response", (_req, res) => reject(new CliError(`event stream refused: HTTP ${res.statusCode}${res.statusCode === 401 ? " (give --token)" : ""}`)));
        ws.on("error", (err: Error) => reject(new CliError(`event stream: ${(err as NodeJS.ErrnoException).code === "ECONNREFUSED" ? `cannot reach the coordinator at ${g.api}` : err.message}`)));
      });
    });
}
