import convict from "convict";
import { existsSync, readFileSync } from "node:fs";
import type { NatsOptions } from "./nats.js";
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
    nkeyFile: {
      doc: "File holding this process's NATS nkey seed (written by incus-fleet setup)",
      format: String,
      default: "",
      env: "FLEET_NATS_NKEY_FILE",
      arg: "nats-nkey-file",
    },
    credsFile: {
      doc: "NATS credentials file (JWT and nkey seed), for operator-mode servers",
      format: String,
      default: "",
      env: "FLEET_NATS_CREDS",
      arg: "nats-creds",
    },
    user: { doc: "NATS user name", format: String, default: "", env: "FLEET_NATS_USER", arg: "nats-user" },
    password: { doc: "NATS password (prefer passwordFile)", format: String, default: "", sensitive: true, env: "FLEET_NATS_PASSWORD", arg: "nats-password" },
    passwordFile: { doc: "File holding the NATS password", format: String, default: "", env: "FLEET_NATS_PASSWORD_FILE", arg: "nats-password-file" },
    token: {
      doc: "NATS authentication token",
      format: String,
      default: "",
      sensitive: true,
      env: "FLEET_NATS_TOKEN",
      arg: "nats-token",
    },
    tls: {
      caFile: { doc: "CA certificate that signed the NATS servers' certificates", format: String, default: "", env: "FLEET_NATS_TLS_CA", arg: "nats-tls-ca" },
      certFile: { doc: "Client certificate, for servers that verify clients (mutual TLS)", format: String, default: "", env: "FLEET_NATS_TLS_CERT", arg: "nats-tls-cert" },
      keyFile: { doc: "Key of the client certificate", format: String, default: "", env: "FLEET_NATS_TLS_KEY", arg: "nats-tls-key" },
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

interface NatsSettings {
  servers: string[];
  nkeyFile: string;
  credsFile: string;
  user: string;
  password: string;
  passwordFile: string;
  token: string;
  tls: { caFile: string; certFile: string; keyFile: string };
}

/** The NATS connection settings of a loaded configuration, checked: unreadable files are reported here, by key. */
export function natsOptionsOf(c: { get(key: "nats"): unknown }, name: string, inboxPrefix?: string): NatsOptions {
  const n = c.get("nats") as NatsSettings;
  for (const [key, file] of [["nats.nkeyFile", n.nkeyFile], ["nats.credsFile", n.credsFile], ["nats.passwordFile", n.passwordFile], ["nats.tls.caFile", n.tls.caFile], ["nats.tls.certFile", n.tls.certFile], ["nats.tls.keyFile", n.tls.keyFile]] as const) {
    if (file && !existsSync(file)) throw new Error(`${key}: ${file} does not exist`);
  }
  if ((n.tls.certFile === "") !== (n.tls.keyFile === "")) throw new Error("nats.tls: give both certFile and keyFile, or neither");
  return {
    servers: n.servers,
    name,
    ...(n.token ? { token: n.token } : {}),
    ...(n.user ? { user: n.user, password: n.passwordFile ? readSecretFile(n.passwordFile) : n.password } : {}),
    ...(n.nkeyFile ? { nkeyFile: n.nkeyFile } : {}),
    ...(n.credsFile ? { credsFile: n.credsFile } : {}),
    tls: { ...(n.tls.caFile ? { caFile: n.tls.caFile } : {}), ...(n.tls.certFile ? { certFile: n.tls.certFile, keyFile: n.tls.keyFile } : {}) },
    ...(inboxPrefix ? { inboxPrefix } : {}),
  };
}
