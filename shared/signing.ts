import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { ErrorCode, FleetError } from "./errors.js";

/**
 * The coordinators' signing key (Ed25519). Coordinators sign what they send
 * to agents (assignments, commands, acknowledgements, the time) with the
 * private half; agents hold only the public half. Knowing the cluster
 * password, which every host does, is therefore not enough to speak as a
 * coordinator.
 */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function generateSigningKey(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

function asEd25519(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== "ed25519") throw new FleetError(ErrorCode.BadRequest, `${what} is a ${key.asymmetricKeyType} key, not Ed25519`);
  return key;
}

export function signingKeyFromPem(pem: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = asEd25519(createPrivateKey(pem), "the signing key");
  } catch (cause) {
    if (cause instanceof FleetError) throw cause;
    throw new FleetError(ErrorCode.BadRequest, "the signing key is not a PEM private key", { cause });
  }
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

export function verifyingKeyFromPem(pem: string): KeyObject {
  try {
    return asEd25519(createPublicKey(pem), "the coordinator key");
  } catch (cause) {
    if (cause instanceof FleetError) throw cause;
    throw new FleetError(ErrorCode.BadRequest, "the coordinator key is not a PEM public key", { cause });
  }
}

export function readSigningKey(path: string): SigningKey {
  return signingKeyFromPem(readFileSync(path, "utf8"));
}

export function readVerifyingKey(path: string): KeyObject {
  return verifyingKeyFromPem(readFileSync(path, "utf8"));
}

export function signBytes(key: SigningKey, data: Uint8Array): Buffer {
  return sign(null, data, key.privateKey);
}

export function verifyBytes(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, data, publicKey, signature);
  } catch {
    return false;
  }
}
