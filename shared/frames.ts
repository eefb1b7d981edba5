import { createHmac, timingSafeEqual, type KeyObject } from "node:crypto";
import { signBytes, verifyBytes, type SigningKey } from "./signing.js";

/**
 * Every message on the bus is a frame: one line of proof, a newline, then
 * the JSON body. The proof covers the body's bytes exactly as received, so
 * the receiver checks it before parsing anything, and a context (the subject
 * a message was sent on, or the request a reply answers) that binds it to one
 * place: a frame moved to another subject no longer verifies.
 *
 * - Agents prove the cluster password with an HMAC made with the cluster key.
 * - Coordinators sign with their Ed25519 key, which agents can check but not make.
 */

export type OpenedFrame = { ok: true; json: string } | { ok: false; reason: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function split(data: Uint8Array | string): { proof: string; json: string } | null {
  const text = typeof data === "string" ? data : decoder.decode(data);
  const newline = text.indexOf("\n");
  if (newline < 0 || newline > 200) return null;
  return { proof: text.slice(0, newline), json: text.slice(newline + 1) };
}

function hmac(key: Buffer, context: string, json: string): Buffer {
  return createHmac("sha256", key).update(context).update("\n").update(json).digest();
}

export function macFrame(key: Buffer, context: string, body: unknown): Uint8Array {
  const json = JSON.stringify(body);
  return encoder.encode(`${hmac(key, context, json).toString("hex")}\n${json}`);
}

export function openMacFrame(key: Buffer, context: string, data: Uint8Array | string): OpenedFrame {
  const parts = split(data);
  if (!parts || !/^[0-9a-f]{64}$/.test(parts.proof)) return { ok: false, reason: "not a framed message" };
  const expected = hmac(key, context, parts.json);
  if (!timingSafeEqual(expected, Buffer.from(parts.proof, "hex"))) return { ok: false, reason: "not signed with this cluster's key" };
  return { ok: true, json: parts.json };
}

export function signedFrame(key: SigningKey, context: string, body: unknown): Uint8Array {
  const json = JSON.stringify(body);
  const signature = signBytes(key, encoder.encode(`${context}\n${json}`));
  return encoder.encode(`${signature.toString("base64")}\n${json}`);
}

export function openSignedFrame(publicKey: KeyObject, context: string, data: Uint8Array | string): OpenedFrame {
  const parts = split(data);
  if (!parts || !/^[A-Za-z0-9+/]{86}==$/.test(parts.proof)) return { ok: false, reason: "not a signed message" };
  if (!verifyBytes(publicKey, encoder.encode(`${context}\n${parts.json}`), Buffer.from(parts.proof, "base64"))) {
    return { ok: false, reason: "not signed by a coordinator of this fleet" };
  }
  return { ok: true, json: parts.json };
}

/** The context a reply is bound to: the subject its request was sent on. */
export const replyContext = (requestSubject: string) => `reply ${requestSubject}`;
