import { Writable } from "node:stream";
import { createLogger } from "../../shared/index.js";

/** A logger whose JSON lines a test can read back. */
export function capturingLogger(level: "info" | "warn" = "info") {
  const lines: { level: number; msg: string; reason?: string; [field: string]: unknown }[] = [];
  const log = createLogger({ name: "test", level, destination: new Writable({ write: (c, _e, done) => void (lines.push(JSON.parse(String(c))), done()) }) });
  return { log, lines };
}
