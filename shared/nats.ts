import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import pRetry from "p-retry";
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "./logger.js";

export interface NatsTlsOptions {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface NatsOptions {
  servers: string[];
  name: string;
  token?: string;
  user?: string;
  password?: string;
  /** A file holding an nkey seed ("SU…"): the per-host credential `incus-fleet setup` writes. */
  nkeyFile?: string;
  /** A NATS credentials file (JWT and seed), for operator-mode servers. */
  credsFile?: string;
  tls?: NatsTlsOptions;
  /** Where replies to this client's requests arrive; agents get one only their credential may subscribe to. */
  inboxPrefix?: string;
}

/** Why a connection attempt failed, in words an operator can act on. */
export function describeNatsFailure(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (e?.name === "AuthorizationError") return "NATS refused the credentials (Authorization Violation): check the nkey, creds, token or user for this host";
  if (code === "ECONNREFUSED") return "connection refused: nats-server is not listening there (yet)";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `cannot resolve the NATS host (${code})`;
  if (typeof code === "string" && /CERT|SIGNATURE|SELF_SIGNED|VERIFY|TLS|SSL/i.test(code)) {
    return `TLS failed (${code}): ${e.message ?? ""}; check the CA file and the server certificate's names`;
  }
  if (e?.name === "TimeoutError") return "no answer within the connect timeout (a TLS client certificate refused by the server looks like this too)";
  return `${e?.name ?? "Error"}: ${e?.message ?? String(err)}`;
}

/** An address as a certificate's subjectAltName spells it once canonical (IPv6 compressed). */
function canonicalHost(host: string): string {
  const bare = host.replace(/^\[|\]$/g, "");
  return isIP(bare) === 6 ? new URL(`http://[${bare}]`).hostname.replace(/^\[|\]$/g, "") : bare.toLowerCase();
}

/**
 * The NATS client upgrades an open socket to TLS, and for a server given by
 * its IP address Node then checks the certificate against "localhost". A
 * server's certificate is accepted if it passes Node's own check or names
 * one of the configured servers, by DNS name or IP address; the CA the
 * set-up made is what vouches for it either way.
 */
function serverIdentity(servers: string[]): (host: string, cert: PeerCertificate) => Error | undefined {
  const configured = new Set(servers.map((s) => canonicalHost(new URL(s.includes("://") ? s : `nats://${s}`).hostname)));
  return (host, cert) => {
    const byName = checkServerIdentity(host, cert);
    if (!byName) return undefined;
    const names = (cert.subjectaltname ?? "").split(/,\s*/).map((n) => canonicalHost(n.replace(/^(DNS|IP Address):/, "")));
    return names.some((n) => configured.has(n)) ? undefined : byName;
  };
}

/** The client options the agent and the coordinator connect with. */
export function natsConnectionOptions(options: NatsOptions): ConnectionOptions {
  const files = options.tls && (options.tls.caFile || options.tls.certFile || options.tls.keyFile) ? { ...options.tls } : undefined;
  const tls = files ? { ...files, checkServerIdentity: serverIdentity(options.servers) } : undefined;
  return {
    servers: options.servers,
    name: options.name,
    ...(options.token ? { token: options.token } : {}),
    ...(options.user ? { user: options.user, pass: options.password ?? "" } : {}),
    ...(options.nkeyFile ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(options.nkeyFile, "utf8").trim())) } : {}),
    ...(options.credsFile ? { authenticator: credsAuthenticator(readFileSync(options.credsFile)) } : {}),
    ...(tls ? { tls } : {}),
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
    // Once connected, outages are waited out: the process lives as long as its service does.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // Rotated or fixed credentials must be picked up by retrying, not by a restart.
    ignoreAuthErrorAbort: true,
    // A hung server is noticed in seconds, not the client's default six minutes.
    pingInterval: 3_000,
    maxPingOut: 2,
    timeout: 5_000,
  };
}

/** Logs every change of the connection: lost, retrying (once per outage, then every 30 s), back, refused. */
function logStatus(nc: NatsConnection, log: Logger): void {
  void (async () => {
    let lostAt = 0;
    let attempts = 0;
    let lastRetryLog = 0;
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          lostAt = Date.now();
          attempts = 0;
          log.warn({ server: s.server }, "NATS connection lost; reconnecting");
          break;
        case "reconnecting":
          attempts += 1;
          if (Date.now() - lastRetryLog > 30_000) {
            lastRetryLog = Date.now();
            log.warn({ attempts, downForMs: Date.now() - lostAt }, "still reconnecting to NATS");
          }
          break;
        case "reconnect":
          log.info({ server: s.server, downForMs: Date.now() - lostAt, attempts }, "NATS connection back");
          lastRetryLog = 0;
          break;
        case "error":
          log.error({ err: describeNatsFailure(s.error), reason: s.error?.message }, "NATS reported an error");
          break;
        case "ldm":
          log.warn({ server: s.server }, "the NATS server is shutting down (lame duck); moving to another");
          break;
        case "staleConnection":
          log.warn("the NATS server stopped answering pings");
          break;
        default:
          break;
      }
    }
  })();
}

/**
 * Connects to NATS, retrying the first connection with backoff for as long
 * as it takes, and logging each failure with its reason (the client's own
 * wait-on-first-connect retries TLS failures silently and forever). Once
 * connected, every change of the connection is logged.
 */
export async function connectNats(options: NatsOptions, log: Logger, signal?: AbortSignal): Promise<NatsConnection> {
  const base = natsConnectionOptions(options);
  let lastReason = "";
  let lastLogged = 0;
  const nc = await pRetry(() => connect(base), {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 250,
    maxTimeout: 5_000,
    factor: 2,
    ...(signal ? { signal } : {}),
    onFailedAttempt: ({ error, attemptNumber }) => {
      const reason = describeNatsFailure(error);
      if (reason !== lastReason || Date.now() - lastLogged > 30_000) {
        log.warn({ servers: options.servers, attempt: attemptNumber, reason }, "cannot connect to NATS yet; retrying");
        lastReason = reason;
        lastLogged = Date.now();
      }
    },
  });
  log.info({ server: nc.getServer(), name: options.name }, "connected to NATS");
  logStatus(nc, log);
  return nc;
}
