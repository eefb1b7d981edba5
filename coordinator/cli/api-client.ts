import { readFileSync } from "node:fs";

export interface Globals {
  api: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
}

/** A failure the CLI reports in one line (and a non-zero exit), never with a stack trace. */
export class CliError extends Error {}

export function tokenOf(g: Globals): string | undefined {
  if (g.token) return g.token;
  if (g.tokenFile) {
    try {
      return readFileSync(g.tokenFile, "utf8").trim();
    } catch (err) {
      throw new CliError(`cannot read the token file ${g.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return undefined;
}

function unreachable(g: Globals, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code === "ECONNREFUSED" ? "connection refused (is the coordinator running, and is this its address?)" : cause?.code ?? cause?.message ?? (err as Error).message;
  return new CliError(`cannot reach the coordinator at ${g.api}: ${why}`);
}

/** One call to the coordinator's API; an error answer becomes its code, message and problems, one per line. */
export async function call<T>(g: Globals, method: string, path: string, body?: { text: string; type: string } | object, extraHeaders: Record<string, string> = {}): Promise<T> {
  const headers: Record<string, string> = { ...extraHeaders };
  const token = tokenOf(g);
  if (token) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (body && "text" in body && "type" in body) {
    headers["content-type"] = String(body.type);
    payload = String(body.text);
  } else if (body) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let base: URL;
  try {
    base = new URL(g.api);
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new Error("not http");
  } catch {
    throw new CliError(`--api: '${g.api}' is not an http(s) URL (for example http://127.0.0.1:8480)`);
  }
  let res: Response;
  try {
    res = await fetch(`${base.href.replace(/\/$/, "")}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  } catch (err) {
    throw unreachable(g, err);
  }
  const text = await res.text();
  let data: unknown = text;
  try {
    data = JSON.parse(text);
  } catch {
    // YAML, or a body that is not JSON
  }
  if (!res.ok) {
    const e = (data as { error?: { code: string; message: string; problems?: { path: string; message: string }[] } }).error;
    const problems = e?.problems?.map((p) => `  - ${p.path}: ${p.message}`).join("\n");
    throw new CliError(`${e?.code ?? res.status}: ${e?.message ?? res.statusText}${problems ? `\n${problems}` : ""}`);
  }
  return data as T;
}
