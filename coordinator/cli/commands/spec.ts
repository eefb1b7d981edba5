import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { call, CliError, type Globals } from "../api-client.js";
import { out, show } from "../output.js";

interface Applied {
  revision: number;
  dryRun: boolean;
  warnings: { path: string; message: string }[];
  plans: { cluster: string; changes: { object: string; action: string; status: string; reason: string; now: unknown; wanted: unknown }[] }[];
}

export function renderChanges(plans: Applied["plans"]): string[] {
  return plans.flatMap((p) => [
    `${p.cluster}:${p.changes.length === 0 ? " no change" : ""}`,
    ...p.changes.map((c) => `  ${c.status.padEnd(11)} ${c.action} ${c.object}: ${show(c.now)} -> ${show(c.wanted)}  (${c.reason})`),
  ]);
}

export function specCommands(program: Command, globals: () => Globals): void {
  const spec = program.command("spec").description("the desired state");
  spec
    .command("apply <file>")
    .description("validate and store a spec (YAML or JSON; Salt pillars, pillar.items output and member states are accepted)")
    .option("--if-match <revision>", "only if the stored spec is still at this revision")
    .option("--dry-run", "show every change it would make, with the value now and the value wanted, and store nothing")
    .action(async (file: string, opts: { ifMatch?: string; dryRun?: boolean }) => {
      const g = globals();
      let text: string;
      try {
        text = file === "-" ? readFileSync(0, "utf8") : readFileSync(file, "utf8");
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const data = await call<Applied>(g, "PUT", `/v1/spec${opts.dryRun ? "?dry_run=true" : ""}`, { text, type: "application/yaml" }, opts.ifMatch ? { "if-match": opts.ifMatch } : {});
      out(g, data, () =>
        [
          data.dryRun ? `dry run against revision ${data.revision}: nothing stored` : `spec stored as revision ${data.revision}`,
          ...data.warnings.map((w) => `warning: ${w.path}: ${w.message}`),
          ...renderChanges(data.plans),
        ].join("\n"),
      );
    });
  spec
    .command("show")
    .description("print the stored spec as YAML that applies back as it is (passwords are not stored: leave them out to keep them)")
    .action(async () => {
      const g = globals();
      if (g.json) {
        out(g, await call(g, "GET", "/v1/spec"), () => "");
        return;
      }
      process.stdout.write(await call<string>(g, "GET", "/v1/spec?format=yaml"));
    });
}
