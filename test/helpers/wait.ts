/** Waits until the condition holds, checking often, and fails with what it waited for after the deadline. */
export async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 10): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export class StillRunning extends Error {}

/**
 * The work, or after the deadline an error saying what did not finish and
 * what `context` tells of it: a step that hangs fails its test instead of
 * holding the whole run until its timeout.
 */
export async function within<T>(what: string, timeoutMs: number, work: Promise<T>, context: () => string = () => ""): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StillRunning(`${what} did not finish within ${timeoutMs} ms${context() ? `\n${context()}` : ""}`)), timeoutMs);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
