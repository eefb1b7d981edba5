import { isIPv4, isIPv6 } from "node:net";

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

export type AddressResult = { ok: true; value: HostPort } | { ok: false; reason: string };

const HOSTNAME_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** RFC 1123 host names: dot-separated labels, 253 characters at most, not all digits (that would be a bad IPv4). */
function hostnameProblem(host: string): string | null {
  if (host.length > 253) return "is longer than 253 characters";
  const labels = host.replace(/\.$/, "").split(".");
  if (labels.some((l) => !HOSTNAME_LABEL.test(l))) return "is not a host name: use letters, digits, '-' and dots";
  if (/^[0-9.]+$/.test(host)) return "is not a valid IPv4 address: four numbers from 0 to 255";
  return null;
}

/**
 * The canonical spelling of an IPv6 address: lower case, the longest run of
 * zero groups compressed, an embedded IPv4 kept as dotted quads. Two
 * spellings of one address compare equal once canonical.
 */
function canonicalIPv6(host: string): string {
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

/**
 * Parses "host", "host:port", "[v6]:port" or a bare IPv6 address, strictly:
 * IPv4 octets from 0 to 255 without leading zeros, IPv6 as the RFC writes
 * it, host names by RFC 1123, ports from 1 to 65535. The result is in
 * canonical form (lower case, IPv6 compressed), so that equal addresses are
 * equal strings.
 */
export function checkAddress(text: string, defaultPort = DEFAULT_CLUSTER_PORT): AddressResult {
  const value = text.trim();
  if (value === "") return { ok: false, reason: "is empty" };
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::([^:]*))?$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (!isIPv6(host)) return { ok: false, reason: `'${host}' in brackets is not an IPv6 address` };
  } else if (value.includes(":") && value.indexOf(":") !== value.lastIndexOf(":")) {
    if (!isIPv6(value)) return { ok: false, reason: "is not an IPv6 address (write [address]:port to give a port)" };
    host = value;
  } else {
    const colon = value.indexOf(":");
    host = colon < 0 ? value : value.slice(0, colon);
    portText = colon < 0 ? undefined : value.slice(colon + 1);
  }
  if (isIPv6(host)) {
    host = canonicalIPv6(host);
  } else if (/^[0-9.]+$/.test(host)) {
    if (!isIPv4(host)) return { ok: false, reason: `'${host}' is not a valid IPv4 address: four numbers from 0 to 255, no leading zeros` };
  } else {
    host = host.toLowerCase();
    const problem = hostnameProblem(host);
    if (problem) return { ok: false, reason: `'${host}' ${problem}` };
    host = host.replace(/\.$/, "");
  }
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) return { ok: false, reason: `port '${portText}' is not a number` };
    port = Number(portText);
    if (port < 1 || port > 65535) return { ok: false, reason: `port ${port} is outside 1-65535` };
  }
  return { ok: true, value: { host, port } };
}

/** Like `checkAddress`, for callers that only need to know whether it parsed. */
export function parseAddress(text: string, defaultPort = DEFAULT_CLUSTER_PORT): HostPort | null {
  const r = checkAddress(text, defaultPort);
  return r.ok ? r.value : null;
}

export function formatAddress({ host, port }: HostPort): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The canonical "host:port" of an address, or null when it does not parse. */
export function canonicalAddress(text: string, defaultPort = DEFAULT_CLUSTER_PORT): string | null {
  const parsed = parseAddress(text, defaultPort);
  return parsed ? formatAddress(parsed) : null;
}

export function isWildcardHost(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}
