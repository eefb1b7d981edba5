import pino, { type DestinationStream, type Logger } from "pino";

/**
 * Field names that hold secrets anywhere in a log line. pino's redaction
 * matches paths, so each name is listed at the depths our log calls use.
 */
const SECRET_FIELDS = [
  "password",
  "cluster_password",
  "clusterPassword",
  "token",
  "sealedToken",
  "cluster_token",
  "secret",
  "mac",
  "proof",
  "authorization",
  "credentials",
  "keys",
];
export const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  ...SECRET_FIELDS.map((f) => `*.*.${f}`),
  'req.headers["authorization"]',
];
export const REDACTED = "[redacted]";

export type { Logger };

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Where the JSON lines go; tests pass an in-memory stream. */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

export function createLogger({ name, level = "info", destination, base = {} }: LoggerOptions): Logger {
  const options = {
    name,
    level,
    base: { ...base },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * Replaces every occurrence of the given secret values in a text. Used on
 * error messages from Incus before they are logged or sent on, because a
 * failing call may echo what it was given.
 */
export function scrub(text: string, secrets: Iterable<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 6) out = out.split(secret).join(REDACTED);
  }
  return out;
}
