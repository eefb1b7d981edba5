import type { Globals } from "./api-client.js";

export function table(rows: (string | number | null | undefined)[][]): string {
  const text = rows.map((r) => r.map((c) => (c === null || c === undefined || c === "" ? "-" : String(c))));
  const widths = text[0]!.map((_, i) => Math.max(...text.map((r) => r[i]!.length)));
  return text.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

export function out(g: Globals, data: unknown, human: () => string): void {
  process.stdout.write(`${g.json ? JSON.stringify(data, null, 2) : human()}\n`);
}

/** A value of a plan change, short: a string as it is, anything else as compact JSON. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return "(none)";
  return typeof value === "string" ? value : JSON.stringify(value);
}
