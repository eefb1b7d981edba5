import { Option, type Command } from "commander";
import { call, CliError, type Globals } from "../api-client.js";
import { out, table } from "../output.js";

interface Operation {
  id: string;
  cluster: string;
  kind: string;
  member: string | null;
  state: string;
  phase: string;
  reason: string;
  progress: { done: number; total: number } | null;
  createdAt: string;
  result?: unknown;
  data?: { moved?: { name: string; from: string; to: string }[] };
}

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

function line(op: Operation): string {
  const progress = op.progress ? ` [${Math.min(op.progress.done + (FINISHED.has(op.state) ? 0 : 1), op.progress.total)}/${op.progress.total}]` : "";
  return `${op.kind}${op.member ? ` ${op.member}` : ""}${progress} ${op.state}: ${op.reason}`;
}

/** Follows an operation until it ends: a live line on a terminal, a line per change otherwise. Fails when it does. */
async function follow(g: Globals, op: Operation): Promise<Operation> {
  const tty = process.stdout.isTTY && !g.json;
  let last = "";
  let current = op;
  for (;;) {
    const text = line(current);
    if (text !== last && !g.json) {
      process.stdout.write(tty ? `\r\x1b[2K${text}` : `${text}\n`);
      last = text;
    }
    if (FINISHED.has(current.state)) break;
    await new Promise((r) => setTimeout(r, 500));
    current = await call<Operation>(g, "GET", `/v1/operations/${current.id}`);
  }
  if (tty) process.stdout.write("\n");
  if (g.json) out(g, current, () => "");
  for (const m of current.data?.moved ?? []) if (!g.json) process.stdout.write(`  ${m.name}: ${m.from} -> ${m.to}\n`);
  if (current.state !== "succeeded") throw new CliError(`${current.kind} ${current.state}: ${current.reason}`);
  return current;
}

async function started(g: Globals, op: Operation, noWait: boolean | undefined): Promise<void> {
  if (noWait) {
    out(g, op, () => `operation ${op.id} started: ${line(op)}\nfollow it with: incus-fleet operations show ${op.id} --wait`);
    return;
  }
  await follow(g, op);
}

const MODES = ["auto", "migrate", "live-migrate", "stop", "stateful-stop", "force-stop"];

export function operationCommands(program: Command, globals: () => Globals): void {
  program
    .command("evacuate <cluster> <member>")
    .description("move a member's instances away before maintenance (refused if it would endanger quorum or another member is out of service)")
    .addOption(new Option("--mode <mode>", "how instances move").choices(MODES).default("auto"))
    .option("--force", "override the rules (recorded as a forced action)")
    .option("--no-wait", "start it and return")
    .action(async (cluster: string, member: string, opts: { mode: string; force?: boolean; wait: boolean }) => {
      const g = globals();
      const op = await call<Operation>(g, "POST", `/v1/clusters/${encodeURIComponent(cluster)}/members/${encodeURIComponent(member)}/evacuate`, { mode: opts.mode, ...(opts.force ? { force: true } : {}) });
      await started(g, op, !opts.wait);
    });

  program
    .command("restore <cluster> <member>")
    .description("bring an evacuated member back, and its instances with it (waits until its Incus is ready)")
    .option("--force", "restore even when the rules say no")
    .option("--no-wait", "start it and return")
    .action(async (cluster: string, member: string, opts: { force?: boolean; wait: boolean }) => {
      const g = globals();
      const op = await call<Operation>(g, "POST", `/v1/clusters/${encodeURIComponent(cluster)}/members/${encodeURIComponent(member)}/restore`, opts.force ? { force: true } : {});
      await started(g, op, !opts.wait);
    });

  program
    .command("rollout <cluster>")
    .description("rolling maintenance, one member at a time: gate, evacuate, host action, wait, restore, wait healthy")
    .option("--members <names>", "comma-separated members, in order (default: all, spares first, the leader last)")
    .addOption(new Option("--action <action>", "what each host does").choices(["restart-incus", "upgrade-incus", "reboot"]).default("restart-incus"))
    .addOption(new Option("--mode <mode>", "how instances move off each member").choices(MODES).default("auto"))
    .option("--settle <seconds>", "how long the cluster must stay healthy before the next member", "10")
    .option("--target-version <version>", "for upgrade-incus: the Incus version every member must reach")
    .option("--no-wait", "start it and return")
    .action(async (cluster: string, opts: { members?: string; action: string; mode: string; settle: string; targetVersion?: string; wait: boolean }) => {
      const g = globals();
      const settle = Number(opts.settle);
      if (!Number.isFinite(settle) || settle < 0) throw new CliError(`--settle: '${opts.settle}' is not a number of seconds`);
      const body = {
        ...(opts.members ? { members: opts.members.split(",").map((m) => m.trim()).filter(Boolean) } : {}),
        action: opts.action,
        mode: opts.mode,
        settleMs: Math.round(settle * 1000),
        ...(opts.targetVersion ? { targetVersion: opts.targetVersion } : {}),
      };
      const op = await call<Operation>(g, "POST", `/v1/clusters/${encodeURIComponent(cluster)}/rollouts`, body);
      await started(g, op, !opts.wait);
    });

  program
    .command("remove <cluster> <member>")
    .description("mark a member absent in the stored spec; it is evacuated and removed (refused if it would endanger quorum)")
    .option("--force", "remove a member that is gone for good, overriding the rules")
    .action(async (cluster: string, member: string, opts: { force?: boolean }) => {
      const g = globals();
      const data = await call<{ revision: number; forced: boolean; reasons: string[] }>(g, "DELETE", `/v1/clusters/${encodeURIComponent(cluster)}/members/${encodeURIComponent(member)}${opts.force ? "?force=true" : ""}`);
      out(g, data, () =>
        [
          `${member} marked absent in spec revision ${data.revision}; its removal follows.`,
          "The stored spec changed: export it (incus-fleet spec show > spec.yaml) to keep your file in step, or re-applying your file brings the member back.",
          ...data.reasons.map((r) => `  overridden: ${r}`),
        ].join("\n"),
      );
    });

  program
    .command("forget-identity <cluster> <member>")
    .description("forget a host's pinned Incus certificate (after a reinstall); its next enrollment pins the one it has then")
    .action(async (cluster: string, member: string) => {
      const g = globals();
      const data = await call<{ forgotten: boolean }>(g, "DELETE", `/v1/clusters/${encodeURIComponent(cluster)}/members/${encodeURIComponent(member)}/identity`);
      out(g, data, () => (data.forgotten ? `${member}'s certificate is forgotten; it is pinned again at its next enrollment` : `${member} had no pinned certificate`));
    });

  const ops = program.command("operations").description("long changes: joins, removals, evacuations, restores, rollouts");
  ops
    .command("list")
    .option("--cluster <name>", "only this cluster")
    .action(async (opts: { cluster?: string }) => {
      const g = globals();
      const data = await call<Operation[]>(g, "GET", `/v1/operations${opts.cluster ? `?cluster=${encodeURIComponent(opts.cluster)}` : ""}`);
      out(g, data, () => table([["ID", "CLUSTER", "KIND", "MEMBER", "STATE", "PHASE", "STARTED"], ...data.map((o) => [o.id, o.cluster, o.kind, o.member, o.state, o.phase, o.createdAt])]));
    });
  ops
    .command("show <id>")
    .option("--wait", "follow it until it ends")
    .action(async (id: string, opts: { wait?: boolean }) => {
      const g = globals();
      const op = await call<Operation>(g, "GET", `/v1/operations/${encodeURIComponent(id)}`);
      if (opts.wait) await follow(g, op);
      else out(g, op, () => line(op));
    });
  for (const action of ["cancel", "pause", "resume"] as const) {
    ops
      .command(`${action} <id>`)
      .description(action === "cancel" ? "stop at the next safe point" : action === "pause" ? "stop before the next member (rollouts)" : "go on after a pause")
      .action(async (id: string) => {
        const g = globals();
        const op = await call<Operation>(g, "POST", `/v1/operations/${encodeURIComponent(id)}/${action}`);
        out(g, op, () => `${action} asked: ${line(op)}`);
      });
  }
}
