import type { Static, TSchema } from "typebox";
import { Compile } from "typebox/compile";
import type { Problem } from "./errors.js";

interface RawError {
  keyword: string;
  instancePath: string;
  message: string;
  params: Record<string, unknown>;
}

/** `/clusters/prod/members/0` becomes `clusters.prod.members[0]`. */
export function pointerToPath(pointer: string, root = ""): string {
  const parts = pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  let path = root;
  for (const part of parts) {
    if (/^\d+$/.test(part)) path += `[${part}]`;
    else path += path === "" ? part : `.${part}`;
  }
  return path === "" ? "(top level)" : path;
}

function describe(error: RawError): { at: string; message: string } {
  const at = error.instancePath;
  switch (error.keyword) {
    case "required": {
      const names = (error.params.requiredProperties as string[] | undefined) ?? [];
      return { at, message: `missing required field ${names.map((n) => `'${n}'`).join(", ")}` };
    }
    case "additionalProperties": {
      const names = (error.params.additionalProperties as string[] | undefined) ?? [];
      return { at, message: `unknown field ${names.map((n) => `'${n}'`).join(", ")}` };
    }
    case "pattern":
      return { at, message: "is not a valid name: use letters, digits and '-' (at most 63, not starting or ending with '-')" };
    case "type":
      return { at, message: `must be ${String(error.params.type ?? "of another type")}` };
    default:
      return { at, message: error.message };
  }
}

/**
 * A compiled schema with readable errors. TypeBox reports one error per failed
 * branch and an extra one for the container; only the informative ones are kept.
 */
export class Validator<S extends TSchema> {
  private readonly compiled;
  constructor(readonly schema: S) {
    this.compiled = Compile(schema);
  }
  check(value: unknown): value is Static<S> {
    return this.compiled.Check(value);
  }
  problems(value: unknown, root = ""): Problem[] {
    const seen = new Set<string>();
    const out: Problem[] = [];
    for (const raw of this.compiled.Errors(value) as RawError[]) {
      if (raw.keyword === "boolean" || raw.keyword === "anyOf" || raw.keyword === "oneOf") continue;
      const { at, message } = describe(raw);
      const path = pointerToPath(at, root);
      const key = `${path}|${message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ path, message });
    }
    if (out.length === 0 && !this.compiled.Check(value)) out.push({ path: root || "(top level)", message: "does not match the expected shape" });
    return out;
  }
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** JSON over the wire, checked against its schema on the way in. */
export class WireCodec<S extends TSchema> {
  private readonly validator: Validator<S>;
  constructor(readonly name: string, schema: S) {
    this.validator = new Validator(schema);
  }
  decode(data: Uint8Array): Decoded<Static<S>> {
    return this.decodeText(decoder.decode(data));
  }
  decodeText(text: string): Decoded<Static<S>> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { ok: false, reason: `${this.name}: not valid JSON` };
    }
    return this.validate(value);
  }
  validate(value: unknown): Decoded<Static<S>> {
    if (this.validator.check(value)) return { ok: true, value };
    const problems = this.validator.problems(value).slice(0, 3);
    return { ok: false, reason: `${this.name}: ${problems.map((p) => `${p.path} ${p.message}`).join("; ")}` };
  }
  encode(value: Static<S>): Uint8Array {
    return encoder.encode(JSON.stringify(value));
  }
}
