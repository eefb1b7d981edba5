#!/usr/bin/env node
/**
 * incus-fleet: the operator's command line. Everything it does goes through
 * the coordinator's HTTP API, so it shows exactly what the API and the web
 * page show.
 */
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import WebSocket from "ws";
import { stringify as toYaml } from "yaml";
import { FLEET_VERSION } from "../shared/index.js";

interface Globals {
  api: string;
  token?: string;
  json?: boolean;
}

class CliError extends Error {}

async function call<T>(g: Globals, method: string, path: string, body?: { text: string; type: string } | object, extraHeaders: Record<string, string> = {}): Promise<T> {
  const headers: Record<string, string> = { ...extraHeaders };
  if (g.token) headers.authorization = `Bearer ${g.token}`;
  let payload: string | undefined;
  if (body && "text" in body && "type" in body) {
    headers["content-type"] = String(body.type);
    payload = String(body.text);
  } else if (body) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(`${g.api.replace(/\/$/, "")}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  } catch (err) {
    throw new CliError(`cannot reach the coordinator at ${g.api}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  const data = (await res.json().catch(() => ({}))) as T & { error?: { code: string; message: string; problems?: { path: string; message: string }[] } };
  if (!res.ok) {
    const e = data.error;
    const problems = e?.problems?.map((p) => `  - ${p.path}: ${p.message}`).join("\n");
    throw new CliError(`${e?.code ?? res.status}: ${e?.message ?? res.statusText}${problems ? `\n${problems}` : ""}`);
  }
  return data;
}

function table(rows: (string | number | null | undefined)[][]): string {
  const text = rows.map((r) => r.map((c) => (c === null || c === undefined || c === "" ? "-" : String(c))));
  const widths = text[0]!.map((_, i) => Math.max(...text.map((r) => r[i]!.length)));
  return text.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

function out(g: Globals, data: unknown, human: () => string): void {
  process.stdout.write(`${g.json ? JSON.stringify(data, null, 2) : human()}\n`);
}

interface Summary { name: string; phase: string; health: string; held: boolean; members: number; online: number; voters: number | null; votersOnline: number | null; failuresTolerated: number | null }
interface Status extends Summary {
  quorum: { majority: number } | null;
  reasons: { message: string }[];
  guidance: string[];
  operation: { kind: string; node: string } | null;
  memberList: { name: string; address: string; state: string; status: string | null; roles: string[]; agent: { online: boolean }; incus: { version: string | null }; reason: string }[];
  plan: { action: string; detail: string }[];
}

const program = new Command()
  .name("incus-fleet")
  .description("Drive incus-fleet through the coordinator's HTTP API")
  .version(FLEET_VERSION)
  .addOption(new Option("--api <url>", "coordinator API").env("FLEET_API").default("http://127.0.0.1:8480"))
  .addOption(new Option("--token <token>", "API bearer token").env("FLEET_API_TOKEN"))
  .option("--json", "print the API's JSON instead of tables");
const globals = (): Globals => program.opts<Globals>();

const spec = program.command("spec").description("the desired state");
spec
  .command("apply <file>")
  .description("validate and store a spec (YAML or JSON; the Salt pillar shape is accepted)")
  .option("--if-match <revision>", "only if the stored spec is still at this revision")
  .action(async (file: string, opts: { ifMatch?: string }) => {
    const g = globals();
    const text = file === "-" ? readFileSync(0, "utf8") : readFileSync(file, "utf8");
    const data = await call<{ revision: number; warnings: { path: string; message: string }[] }>(g, "PUT", "/v1/spec", { text, type: "application/yaml" }, opts.ifMatch ? { "if-match": opts.ifMatch } : {});
    out(g, data, () => [`spec stored as revision ${data.revision}`, ...data.warnings.map((w) => `warning: ${w.path}: ${w.message}`)].join("\n"));
  });
spec
  .command("show")
  .description("print the stored spec (without secrets)")
  .action(async () => {
    const g = globals();
    const data = await call<{ revision: number; spec: unknown }>(g, "GET", "/v1/spec");
    out(g, data, () => `# revision ${data.revision}\n${toYaml(data.spec)}`);
  });

program
  .command("clusters")
  .description("list clusters with their phase, health and quorum")
  .action(async () => {
    const g = globals();
    const data = await call<Summary[]>(g, "GET", "/v1/clusters");
    out(g, data, () =>
      table([
        ["CLUSTER", "PHASE", "HEALTH", "HELD", "MEMBERS", "ONLINE", "VOTERS", "TOLERATES"],
        ...data.map((c) => [c.name, c.phase, c.health, c.held ? "yes" : "no", c.members, c.online, c.voters === null ? null : `${c.votersOnline}/${c.voters}`, c.failuresTolerated]),
      ]),
    );
  });

program
  .command("status <cluster>")
  .description("members, quorum, what is wrong and what to do, and the next steps")
  .action(async (cluster: string) => {
    const g = globals();
    const s = await call<Status>(g, "GET", `/v1/clusters/${encodeURIComponent(cluster)}`);
    out(g, s, () => {
      const lines = [
        `${s.name}: ${s.phase}, ${s.health}${s.held ? ", destructive actions held" : ""}`,
        s.quorum ? `voters ${s.votersOnline}/${s.voters} online, majority ${s.quorum.majority}, tolerates ${s.failuresTolerated} more failure(s)` : "no view of the cluster yet",
      ];
      if (s.operation) lines.push(`in progress: ${s.operation.kind} of ${s.operation.node}`);
      lines.push("", table([["MEMBER", "ADDRESS", "STATE", "STATUS", "ROLES", "AGENT", "INCUS", "WHY"], ...s.memberList.map((m) => [m.name, m.address, m.state, m.status, m.roles.join(","), m.agent.online ? "up" : "silent", m.incus.version, m.reason])]));
      if (s.reasons.length) lines.push("", "problems:", ...s.reasons.map((r) => `  - ${r.message}`));
      if (s.guidance.length) lines.push("", "what to do:", ...s.guidance.map((x, i) => `  ${i + 1}. ${x}`));
      if (s.plan.length) lines.push("", "next steps:", ...s.plan.map((p) => `  - ${p.action}: ${p.detail}`));
      return lines.join("\n");
    });
  });

program
  .command("plan [cluster]")
  .description("a dry run: what the coordinator would do next, and why")
  .action(async (cluster?: string) => {
    const g = globals();
    const data = await call<{ cluster: string; phase: string; steps: { action: string; detail: string }[]; decisions: Record<string, { kind: string; reason: string }> }[]>(g, "GET", cluster ? `/v1/clusters/${encodeURIComponent(cluster)}/plan` : "/v1/plan");
    out(g, data, () =>
      data
        .map((p) => [`${p.cluster} (${p.phase})`, ...p.steps.map((s) => `  - ${s.action}: ${s.detail}`), ...Object.entries(p.decisions).map(([n, d]) => `    ${n}: ${d.kind} (${d.reason})`)].join("\n"))
        .join("\n\n"),
    );
  });

program
  .command("nodes")
  .description("every enrolled host and its state")
  .action(async () => {
    const g = globals();
    const data = await call<{ cluster: string; node: string; state: string; reason: string }[]>(g, "GET", "/v1/nodes");
    out(g, data, () => table([["CLUSTER", "NODE", "STATE", "WHY"], ...data.map((n) => [n.cluster, n.node, n.state, n.reason])]));
  });

interface Maintenance { member: string; action: string; moved: { name: string; from: string; to: string }[]; durationMs: number; forced: boolean }
const showMaintenance = (m: Maintenance) =>
  [`${m.action} of ${m.member} done in ${(m.durationMs / 1000).toFixed(1)} s${m.forced ? " (forced)" : ""}`, ...m.moved.map((i) => `  ${i.name}: ${i.from} -> ${i.to}`)].join("\n");

program
  .command("evacuate <cluster> <member>")
  .description("move a member's instances away before maintenance (refused if it would endanger quorum)")
  .addOption(new Option("--mode <mode>", "how instances move").choices(["auto", "migrate", "live-migrate", "stop"]).default("auto"))
  .option("--force", "override the quorum rules (recorded as a forced action)")
  .action(async (cluster: string, member: string, opts: { mode: string; force?: boolean }) => {
    const g = globals();
    const data = await call<Maintenance>(g, "POST", `/v1/clusters/${encodeURIComponent(cluster)}/members/${encodeURIComponent(member)}/evacuate`, { mode: opts.mode, ...(opts.force ? { force: true } : {}) });
    out(g, data, () => showMaintenance(data));
  });

program
  .command("restore <cluster> <member>")
  .description("bring an evacuated member back and its instances with it")
  .option("--force", "restore even when the cluster has lost quorum")
  .action(async (cluster: string, member: string, opts: { force?: boolean }) => {
    const g = globals();
    const data = await call<Maintenance>(g, "POST", `/v1/clusters/${encodeURIComponent(cluster)}/members/${encodeURIComponent(member)}/restore`, opts.force ? { force: true } : {});
    out(g, data, () => showMaintenance(data));
  });

program
  .command("remove <cluster> <member>")
  .description("mark a member absent; it is evacuated and removed (refused if it would endanger quorum)")
  .option("--force", "remove a member that is gone for good, overriding the rules")
  .action(async (cluster: string, member: string, opts: { force?: boolean }) => {
    const g = globals();
    const data = await call<{ revision: number; forced: boolean; reasons: string[] }>(g, "DELETE", `/v1/clusters/${encodeURIComponent(cluster)}/members/${encodeURIComponent(member)}${opts.force ? "?force=true" : ""}`);
    out(g, data, () => [`${member} marked absent in spec revision ${data.revision}; removal follows`, ...data.reasons.map((r) => `  overridden: ${r}`)].join("\n"));
  });

program
  .command("events")
  .description("follow fleet events live")
  .option("--cluster <name>", "only this cluster")
  .option("--replay <n>", "start with the last n events", "20")
  .action(async (opts: { cluster?: string; replay: string }) => {
    const g = globals();
    const query = new URLSearchParams({ replay: opts.replay, ...(opts.cluster ? { cluster: opts.cluster } : {}), ...(g.token ? { token: g.token } : {}) });
    const ws = new WebSocket(`${g.api.replace(/^http/, "ws").replace(/\/$/, "")}/v1/events/stream?${query}`);
    ws.on("message", (data: WebSocket.RawData) => {
      const e = JSON.parse(data.toString()) as { at: string; cluster: string; kind: string; severity: string; message: string };
      process.stdout.write(g.json ? `${data.toString()}\n` : `${e.at}  ${e.cluster}  ${e.severity.padEnd(8)} ${e.kind.padEnd(22)} ${e.message}\n`);
    });
    await new Promise<void>((resolve, reject) => {
      ws.on("close", () => resolve());
      ws.on("error", (err: Error) => reject(new CliError(`event stream: ${err.message}`)));
    });
  });

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`incus-fleet: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
