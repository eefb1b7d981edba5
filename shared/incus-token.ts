import { X509Certificate, createHash } from "node:crypto";
import { ErrorCode, FleetError } from "./errors.js";

/** The fields Incus packs, base64-encoded JSON, into a cluster join token. */
export interface JoinTokenFields {
  serverName: string;
  fingerprint: string;
  addresses: string[];
  secret: string;
  expiresAt: string;
}

export function encodeJoinToken(fields: JoinTokenFields): string {
  const json = JSON.stringify({
    server_name: fields.serverName,
    fingerprint: fields.fingerprint,
    addresses: fields.addresses,
    secret: fields.secret,
    expires_at: fields.expiresAt,
  });
  return Buffer.from(json).toString("base64");
}

export function decodeJoinToken(token: string): JoinTokenFields {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(token, "base64").toString("utf8")) as Record<string, unknown>;
  } catch (cause) {
    throw new FleetError(ErrorCode.TokenMismatch, "join token is not base64-encoded JSON", { cause });
  }
  const { server_name, fingerprint, addresses, secret, expires_at } = raw;
  if (typeof server_name !== "string" || typeof fingerprint !== "string" || typeof secret !== "string" || !Array.isArray(addresses)) {
    throw new FleetError(ErrorCode.TokenMismatch, "join token lacks server_name, fingerprint, addresses or secret");
  }
  return {
    serverName: server_name,
    fingerprint: fingerprint.toLowerCase(),
    addresses: addresses.map(String),
    secret,
    expiresAt: typeof expires_at === "string" ? expires_at : "",
  };
}

/** SHA-256 over the DER bytes: the fingerprint Incus shows and puts in tokens. */
export function certificateFingerprint(pem: string): string {
  let der: Buffer;
  try {
    der = new X509Certificate(pem).raw;
  } catch (cause) {
    throw new FleetError(ErrorCode.TokenMismatch, "cluster certificate is not a PEM certificate", { cause });
  }
  return createHash("sha256").update(der).digest("hex");
}
