import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createUser, fromSeed } from "@nats-io/nkeys";
import { generateSigningKey, signingKeyFromPem } from "../../shared/index.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes a secret readable by its owner only. */
export function writeSecret(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function writePublic(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileSync(path, content, { mode: 0o644 });
}

/** An nkey user seed at `path`, made once: running setup again keeps every credential it made before. */
export function nkeyAt(path: string): { seed: string; publicKey: string } {
  if (existsSync(path)) {
    const seed = readFileSync(path, "utf8").trim();
    return { seed, publicKey: fromSeed(encoder.encode(seed)).getPublicKey() };
  }
  const user = createUser();
  const seed = decoder.decode(user.getSeed());
  writeSecret(path, `${seed}\n`);
  return { seed, publicKey: user.getPublicKey() };
}

/** The coordinators' Ed25519 signing key, made once; its public half goes to every host. */
export function signingKeyAt(privatePath: string, publicPath: string): { publicPem: string } {
  if (existsSync(privatePath)) {
    const key = signingKeyFromPem(readFileSync(privatePath, "utf8"));
    const publicPem = key.publicKey.export({ type: "spki", format: "pem" }).toString();
    writePublic(publicPath, publicPem);
    return { publicPem };
  }
  const { privatePem, publicPem } = generateSigningKey();
  writeSecret(privatePath, privatePem);
  writePublic(publicPath, publicPem);
  return { publicPem };
}

/** A random secret (an API token, a route password) made once. */
export function secretAt(path: string, bytes = 24): string {
  if (existsSync(path)) return readFileSync(path, "utf8").trim();
  const value = randomBytes(bytes).toString("hex");
  writeSecret(path, `${value}\n`);
  return value;
}
