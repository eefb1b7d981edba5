import { isMap, isScalar, isSeq, parseDocument } from "yaml";
import type { Problem } from "./errors.js";

/**
 * Reading documents an operator sends (a spec, a request body) without
 * guessing: bytes that are not UTF-8, keys given twice and absurd nesting are
 * refused with the place named, instead of being silently replaced, silently
 * won by the last key, or crashing the parser.
 */

/** Deeper than any spec; far below what exhausts a parser. */
export const MAX_DOCUMENT_DEPTH = 64;

export type Parsed = { ok: true; value: unknown } | { ok: false; problem: Problem };

function joinPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

const where = (path: string) => (path === "" ? "(top level)" : path);

/** The first string or key holding U+FFFD, where a lossy decode put it. */
function replacementCharPath(value: unknown, path = ""): string | null {
  if (typeof value === "string") return value.includes("\uFFFD") ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = replacementCharPath(value[i], joinPath(path, i));
      if (found !== null) return found;
    }
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes("\uFFFD")) return joinPath(path, k);
      const found = replacementCharPath(v, joinPath(path, k));
      if (found !== null) return found;
    }
  }
  return null;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lossyUtf8 = new TextDecoder("utf-8");

/** Decodes UTF-8 strictly; `locate` names the field the bad bytes sit in, from a lossy parse. */
export function decodeUtf8(bytes: Uint8Array, locate: (text: string) => unknown): { ok: true; text: string } | { ok: false; problem: Problem } {
  try {
    return { ok: true, text: strictUtf8.decode(bytes) };
  } catch {
    let path: string | null = null;
    try {
      path = replacementCharPath(locate(lossyUtf8.decode(bytes)));
    } catch {
      // the document does not parse either way; the position below is all there is
    }
    return { ok: false, problem: { path: path ?? "(document)", message: `holds bytes that are not UTF-8 (at byte ${firstInvalidUtf8(bytes)}); send the document as UTF-8` } };
  }
}

/** Where the first malformed UTF-8 sequence starts. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const length = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (length === 0 || i + length > bytes.length) return i;
    try {
      strictUtf8.decode(bytes.subarray(i, i + length));
    } catch {
      return i;
    }
    i += length;
  }
  return i;
}

/**
 * How deeply flow brackets nest, outside quoted strings and comments. YAML
 * block nesting costs the sender quadratic indentation and is bounded by the
 * body limit; brackets are cheap to send and expensive to parse.
 */
function flowDepthProblem(text: string, yaml: boolean): Problem | null {
  let depth = 0;
  let max = 0;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i += 1;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || (yaml && c === "'")) quote = c;
    else if (yaml && c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end;
    } else if (c === "[" || c === "{") {
      depth += 1;
      if (depth > max) max = depth;
      if (max > MAX_DOCUMENT_DEPTH) return { path: "(document)", message: `nests deeper than ${MAX_DOCUMENT_DEPTH} levels` };
    } else if (c === "]" || c === "}") depth -= 1;
  }
  return null;
}

/**
 * The first key that appears twice in one object of a JSON text, with its
 * path. The text is already known to be valid JSON, so only strings and
 * brackets need telling apart.
 */
function duplicateJsonKey(text: string): string | null {
  const stack: { object: boolean; keys: Set<string>; path: string; index: number; key: string | null }[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const top = stack[stack.length - 1];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (top?.object && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return joinPath(top.path, key);
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      const path = !top ? "" : top.object ? joinPath(top.path, top.key ?? "") : joinPath(top.path, top.index);
      stack.push({ object: c === "{", keys: new Set(), path, index: 0, key: null });
      expectKey = c === "{";
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      if (top?.object) expectKey = true;
      else if (top) top.index += 1;
    }
  }
  return null;
}

export function parseJsonText(text: string): Parsed {
  const deep = flowDepthProblem(text, false);
  if (deep) return { ok: false, problem: deep };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: { path: "(document)", message: `not valid JSON: ${(err as Error).message}` } };
  }
  const duplicate = duplicateJsonKey(text);
  if (duplicate !== null) return { ok: false, problem: { path: where(duplicate), message: "is given more than once; each key may appear once" } };
  return { ok: true, value };
}

/** The path of the first key a YAML mapping gives twice, found on the document as written. */
function duplicateYamlKey(node: unknown, path: string): string | null {
  if (isMap(node)) {
    const seen = new Set<string>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const here = path ? `${path}.${key}` : key;
      if (seen.has(key)) return here;
      seen.add(key);
      const inner = duplicateYamlKey(pair.value, here);
      if (inner !== null) return inner;
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const inner = duplicateYamlKey(item, path ? `${path}.${i}` : String(i));
      if (inner !== null) return inner;
    }
  }
  return null;
}

export function parseYamlText(text: string): Parsed {
  const deep = flowDepthProblem(text, true);
  if (deep) return { ok: false, problem: deep };
  const doc = parseDocument(text, { uniqueKeys: true });
  const error = doc.errors[0];
  if (error) {
    const message = error.message.split("\n")[0]!;
    if (error.code === "DUPLICATE_KEY") {
      const line = error.linePos?.[0];
      const at = line ? ` (line ${line.line}, column ${line.col})` : "";
      const path = duplicateYamlKey(parseDocument(text, { uniqueKeys: false }).contents, "");
      return { ok: false, problem: { path: path ?? "(document)", message: `is given more than once${at}; each key may appear once` } };
    }
    return { ok: false, problem: { path: "(document)", message: `not valid YAML: ${message}` } };
  }
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (err) {
    return { ok: false, problem: { path: "(document)", message: `not valid YAML: ${(err as Error).message.split("\n")[0]}` } };
  }
}

/** Parses YAML or JSON text, whichever it is (JSON first: it is the stricter). */
export function parseDocumentText(text: string): Parsed {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    const json = parseJsonText(text);
    if (json.ok || json.problem.message.startsWith("nests") || json.problem.message.includes("more than once")) return json;
  }
  return parseYamlText(text);
}
