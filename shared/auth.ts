import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scrypt, scryptSync } from "node:crypto";
import { ErrorCode, FleetError } from "./errors.js";

/**
 * The cluster password never crosses the wire. Both sides stretch it into a
 * cluster key: agents prove they know the password with an HMAC made with it
 * (see frames.ts), and join tokens travel sealed with it, so that neither NATS
 * nor the coordinator's logs ever hold anything that lets a listener join.
 */
export interface ClusterKeys {
  mac: Buffer;
  seal: Buffer;
}

const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

function keysFrom(root: Buffer): ClusterKeys {
  return {
    mac: Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), "incus-fleet mac", 32)),
    seal: Buffer.from(hkdfSync("sha256", root, Buffer.alloc(0), "incus-fleet seal", 32)),
  };
}

const saltOf = (cluster: string) => `incus-fleet/v1/cluster/${cluster}`;

export function deriveClusterKeys(cluster: string, password: string): ClusterKeys {
  return keysFrom(scryptSync(password, saltOf(cluster), 32, SCRYPT));
}

/** The same keys, derived on libuv's thread pool: a coordinator deriving keys for many clusters stays responsive. */
export function deriveClusterKeysAsync(cluster: string, password: string): Promise<ClusterKeys> {
  return new Promise((resolve, reject) => {
    scrypt(password, saltOf(cluster), 32, SCRYPT, (err, root) => (err ? reject(err) : resolve(keysFrom(root))));
  });
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
