import { fileURLToPath } from "node:url";
import { run } from "../../lab/processes.js";

/** Runs a benchmark script and returns its JSON result lines; a failing run fails the test with its output. */
export async function runBench(script: string, args: string[]): Promise<Record<string, unknown>[]> {
  const path = fileURLToPath(new URL(`../../bench/${script}.js`, import.meta.url));
  const result = await run(process.execPath, [path, ...args], { allowFail: true, env: process.env });
  if (result.code !== 0) throw new Error(`${script} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
}
