import { FleetLab } from "../lab/fleet-lab.js";

/** Benchmark output: one JSON line per result on stdout, so that scripts and tests can read it. */
export function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Math.max(...values) overflows the stack past about a hundred thousand values. */
export function maxOf(values: number[]): number {
  return values.reduce((a, b) => (b > a ? b : a), -Infinity);
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Reads `--name value` from argv, with a default. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** Runs a benchmark's main function; any failure ends the process with a non-zero status. */
export function runBenchmark(main: () => Promise<void>): void {
  // Interrupted, it still stops every daemon it started and removes its namespaces; what fails as they go is no result.
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    void Promise.allSettled([...FleetLab.live].map((lab) => lab.destroy())).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      if (interrupted) return;
      emit({ bench: "error", error: err instanceof Error ? err.message : String(err) });
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
