#!/usr/bin/env node
/**
 * incus-fleet: the operator's command line. Everything but `setup` goes
 * through the coordinator's HTTP API, so it shows exactly what the API and
 * the web page show.
 */
import { Command, Option } from "commander";
import { FLEET_VERSION } from "../../shared/index.js";
import { CliError, type Globals } from "./api-client.js";
import { clusterCommands } from "./commands/clusters.js";
import { eventCommands } from "./commands/events.js";
import { operationCommands } from "./commands/operations.js";
import { setupCommand } from "./commands/setup.js";
import { specCommands } from "./commands/spec.js";

// A reader that goes away (`incus-fleet events | head`) ends the program quietly, as for any Unix tool.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

const program = new Command()
  .name("incus-fleet")
  .description("Drive incus-fleet through the coordinator's HTTP API")
  .version(FLEET_VERSION)
  .addOption(new Option("--api <url>", "coordinator API").env("FLEET_API").default("http://127.0.0.1:8480"))
  .addOption(new Option("--token <token>", "API bearer token").env("FLEET_API_TOKEN"))
  .addOption(new Option("--token-file <file>", "file holding the API bearer token").env("FLEET_API_TOKEN_FILE"))
  .option("--json", "print the API's JSON instead of tables");
const globals = (): Globals => program.opts<Globals>();

specCommands(program, globals);
clusterCommands(program, globals);
operationCommands(program, globals);
eventCommands(program, globals);
setupCommand(program, globals);

program.parseAsync().catch((err: unknown) => {
  // Our own failures are one clear line; anything else is a bug, and its message is still one line.
  const message = err instanceof CliError ? err.message : err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  process.stderr.write(`incus-fleet: ${message}\n`);
  process.exit(1);
});
