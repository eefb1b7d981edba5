import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { ErrorCode, FleetError } from "./errors.js";

/**
 * The cluster password never crosses the wire. Both sides stretch it into a
 * cluster key; messages carry an HMAC made with that key, and join tokens are
 * sealed with it, so that neither NATS nor the coordinator's logs ever hold
 * anything that lets a listener join the cluster.
 */
export interface ClusterKeys {
  mac: Buffer;
  seal: Buffer;
}

const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export function deriveClusterKeys(cluster: string, password: string): ClusterKeys {
  const root = scryptSync(password, `incus-fleet/v1/cluster/${cluster}`, 32, SCRYPT);
  return {
    mac: Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), "incus-fleet mac", 32)),
    seal: Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), "incus-fleet seal", 32)),
  };
}

/** JSON with object keys sorted at every level, so both sides hash the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** Purposes keep a MAC made for one kind of message from being accepted as another. */
export const MacPurpose = {
  Hello: "hello",
  Assign: "assign",
  AssignReply: "assign-reply",
  Report: "report",
  Heartbeat: "heartbeat",
  Command: "command",
  CommandReply: "command-reply",
} as const;
export type MacPurpose = (typeof MacPurpose)[keyof typeof MacPurpose];

export function macOf(key: Buffer, purpose: MacPurpose, body: object): string {
  return createHmac("sha256", key).update(`${purpose}\n`).update(canonicalJson(body)).digest("hex");
}

/** Signs a message: returns it with its `mac` field set over all its other fields. */
export function signed<T extends object>(key: Buffer, purpose: MacPurpose, body: T): T & { mac: string } {
  return { ...body, mac: macOf(key, purpose, body) };
}

export function verifyMac<T extends { mac: string }>(key: Buffer, purpose: MacPurpose, message: T): boolean {
  const { mac, ...body } = message;
  const expected = Buffer.from(macOf(key, purpose, body), "hex");
  const given = Buffer.from(mac, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function randomNonce(bytes = 16): string {
  return randomBytes(bytes).toString("hex");
}

/** AES-256-GCM; the associated data binds a sealed token to the one joiner it was minted for. */
export function seal(key: Buffer, plaintext: string, associated: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(associated));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
}

export function unseal(key: Buffer, sealed: string, associated: string): string {
  const raw = Buffer.from(sealed, "base64");
  if (raw.length < 29) throw new FleetError(ErrorCode.AuthFailed, "sealed value is too short");
  const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  decipher.setAAD(Buffer.from(associated));
  try {
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  } catch (cause) {
    throw new FleetError(ErrorCode.AuthFailed, "sealed value does not open with this cluster's key (wrong cluster password?)", { cause });
  }
}
