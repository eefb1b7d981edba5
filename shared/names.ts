import { isIP } from "node:net";

/**
 * Cluster and member names travel inside NATS subjects and Incus URLs, so they
 * are held to a hostname-label alphabet: no dots, no wildcards, no spaces.
 */
export const NAME_PATTERN = "^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$";
const NAME_RE = new RegExp(NAME_PATTERN);

export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}

export const DEFAULT_CLUSTER_PORT = 8443;

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses "host", "host:port", "[v6]:port" or a bare IPv6 address.
 * Returns null when the text is not a usable member address.
 */
export function parseAddress(text: string, defaultPort = DEFAULT_CLUSTER_PORT): HostPort | null {
  const value = text.trim();
  if (value === "") return null;
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (isIP(host) !== 6) return null;
  } else if (isIP(value) === 6) {
    host = value;
  } else {
    const parts = value.split(":");
    if (parts.length > 2) return null;
    host = parts[0]!;
    portText = parts[1];
    if (isIP(host) !== 4 && !/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) return null;
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host, port };
}

export function formatAddress({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function isWildcardHost(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}
