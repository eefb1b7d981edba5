/** JetStream's "wrong last sequence": a compare-and-set lost to another writer. */
const CAS_CONFLICT = 10071;
/** Two coordinators creating the same bucket at once: the loser's add fails, its retry finds the stream. */
const CREATE_RACES = new Set([10058, 10065]);

function codeOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; api_error?: { err_code?: unknown } } | null;
  const code = e?.api_error?.err_code ?? e?.code;
  return typeof code === "number" ? code : undefined;
}

export function isCasConflict(err: unknown): boolean {
  return codeOf(err) === CAS_CONFLICT || /wrong last sequence/.test(String(err));
}

export function isCreateRace(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && CREATE_RACES.has(code);
}

/**
 * Failures that pass: no stream leader during an election (which the client
 * reports as "jetstream is not enabled"), a timeout, a connection between
 * servers. Worth retrying; anything else is a bug or a misconfiguration.
 */
export function isTransient(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name ?? "";
  return isCreateRace(err) || name === "TimeoutError" || name === "JetStreamNotEnabled" || /jetstream is not enabled|timeout|no responders|disconnect|503/i.test(String(err));
}
