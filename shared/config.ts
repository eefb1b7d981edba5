import convict from "convict";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";

convict.addParser([
  { extension: ["yml", "yaml"], parse: (text: string) => parseYaml(text) as object },
  { extension: "json", parse: (text: string) => JSON.parse(text) as object },
]);

convict.addFormat({
  name: "nonempty-string",
  validate(value: unknown) {
    if (typeof value !== "string" || value.trim() === "") throw new Error("must not be empty");
  },
});

convict.addFormat({
  name: "string-list",
  validate(value: unknown) {
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
      throw new Error("must be a list of non-empty strings");
    }
  },
  coerce: (value: string) => value.split(",").map((s) => s.trim()).filter(Boolean),
});

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** The configuration keys both processes share: NATS and logging. */
export const commonSchema = {
  config: {
    doc: "Path of a YAML or JSON configuration file",
    format: String,
    default: "",
    env: "FLEET_CONFIG",
    arg: "config",
  },
  nats: {
    servers: {
      doc: "NATS server URLs",
      format: "string-list",
      default: ["nats://127.0.0.1:4222"],
      env: "FLEET_NATS_SERVERS",
      arg: "nats-servers",
    },
    token: {
      doc: "NATS authentication token",
      format: String,
      default: "",
      sensitive: true,
      env: "FLEET_NATS_TOKEN",
      arg: "nats-token",
    },
    credsFile: {
      doc: "NATS credentials file (JWT and NKey seed)",
      format: String,
      default: "",
      env: "FLEET_NATS_CREDS",
      arg: "nats-creds",
    },
  },
  log: {
    level: {
      doc: "Log level",
      format: LOG_LEVELS,
      default: "info",
      env: "FLEET_LOG_LEVEL",
      arg: "log-level",
    },
  },
};

/**
 * Builds a configuration from defaults, the file named by --config or
 * FLEET_CONFIG, the environment and the flags (later ones win), and
 * validates it strictly: an unknown key is an error, not a silent typo.
 */
export function loadConfig<T>(schema: convict.Schema<T>, args: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): convict.Config<T> {
  const config = convict(schema, { args, env });
  const file = (config as unknown as convict.Config<{ config: string }>).get("config");
  if (file) config.loadFile(file);
  config.validate({ allowed: "strict" });
  return config;
}

export function readSecretFile(path: string): string {
  return readFileSync(path, "utf8").trim();
}
