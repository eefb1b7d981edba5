import { ErrorCode, FleetError } from "../../shared/index.js";
import { FINISHED, type Operation } from "../operations/operation.js";
import type { KvCache } from "./kv-cache.js";
import { isCasConflict } from "./jetstream-errors.js";

const opKey = (cluster: string, id: string) => `op.${cluster}.${id}`;
const lockKey = (cluster: string) => `lock.${cluster}`;
const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));

interface Lock {
  id: string;
  at: number;
}

type Entry = Operation | Lock;

/** Finished operations are kept this long for the API and then forgotten. */
const KEEP_FINISHED_MS = 7 * 24 * 3_600_000;

/**
 * Operations and the per-cluster lock that lets one run at a time. Every
 * write is a compare-and-set on the operation's revision, so two writers
 * (an old owner that has not noticed it lost its lease, an operator
 * cancelling) can never both move an operation on.
 */
export class OperationStore {
  constructor(private readonly cache: KvCache<Entry>) {}

  get(cluster: string, id: string): { op: Operation; revision: number } | null {
    const e = this.cache.entry(opKey(cluster, id));
    return e ? { op: e.value as Operation, revision: e.revision } : null;
  }

  find(id: string): { op: Operation; revision: number } | null {
    for (const [key, e] of this.cache.withPrefix("op.")) if (key.endsWith(`.${id}`)) return { op: e.value as Operation, revision: e.revision };
    return null;
  }

  /** The running (or paused) operation holding the cluster's lock, if any. */
  active(cluster: string): { op: Operation; revision: number } | null {
    const lock = this.cache.get(lockKey(cluster)) as Lock | undefined;
    const found = lock ? this.get(cluster, lock.id) : null;
    return found && !FINISHED.has(found.op.state) ? found : null;
  }

  /**
   * A lock nothing runs under: its operation ended but the release did not
   * reach the store (it is released at once), or it was never written (the
   * writer died between the two writes; released once clearly abandoned).
   */
  staleLock(cluster: string): { revision: number; at: number; ended: boolean } | null {
    const e = this.cache.entry(lockKey(cluster));
    if (!e) return null;
    const lock = e.value as Lock;
    const found = this.get(cluster, lock.id);
    if (found && !FINISHED.has(found.op.state)) return null;
    return { revision: e.revision, at: lock.at, ended: found !== null };
  }

  /** The cluster's operations whose latest change was announced between the two times, in the order announced. */
  announcedBetween(cluster: string, from: number, to: number): Operation[] {
    const out: Operation[] = [];
    for (const [, e] of this.cache.childrenOf(`op.${cluster}`)) {
      const at = (e.value as Operation).announced?.at;
      if (at !== undefined && at >= from && at <= to) out.push(e.value as Operation);
    }
    return out.sort((a, b) => a.announced!.at - b.announced!.at);
  }

  list(cluster?: string): Operation[] {
    const out: Operation[] = [];
    for (const [, e] of (cluster ? this.cache.childrenOf(`op.${cluster}`) : this.cache.withPrefix("op."))) out.push(e.value as Operation);
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Takes the cluster's lock and stores the new operation. Null when another
   * operation holds the lock: the caller is told which.
   */
  async begin(op: Operation, now: number): Promise<{ op: Operation; revision: number } | null> {
    const take = async () => {
      const lockRevision = await this.cache.kv.create(lockKey(op.cluster), json({ id: op.id, at: now } satisfies Lock));
      this.cache.remember(lockKey(op.cluster), { id: op.id, at: now }, lockRevision);
    };
    try {
      await take();
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      // The cache may lag behind the bucket (its watch being re-created after a server died): decide on what the
      // server holds, or a lock this cache never saw would keep the cluster busy for good.
      await this.cache.refresh(lockKey(op.cluster)).catch(() => undefined);
      const held = this.cache.get(lockKey(op.cluster)) as Lock | undefined;
      if (held) await this.cache.refresh(opKey(op.cluster, held.id)).catch(() => undefined);
      // The lock of an operation that has ended, whose release did not reach the store: anyone may give it back.
      const stale = this.staleLock(op.cluster);
      if (!stale?.ended) return null;
      await this.releaseStale(op.cluster, stale.revision);
      try {
        await take();
      } catch (again) {
        if (isCasConflict(again)) return null;
        throw again;
      }
    }
    const revision = await this.cache.kv.put(opKey(op.cluster, op.id), json(op));
    this.cache.remember(opKey(op.cluster, op.id), op, revision);
    return { op, revision };
  }

  /**
   * Writes the next state of an operation, if nobody wrote it since
   * `revision`. An operation written as ended gives its lock back here; if
   * that release does not reach the store, the lock is stale and the
   * cluster's controller releases it (see `staleLock`).
   */
  async update(op: Operation, revision: number): Promise<number> {
    try {
      const next = await this.cache.kv.update(opKey(op.cluster, op.id), json(op), revision);
      this.cache.remember(opKey(op.cluster, op.id), op, next);
      if (FINISHED.has(op.state)) await this.releaseLock(op.cluster, op.id).catch(() => undefined);
      return next;
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      await this.cache.refresh(opKey(op.cluster, op.id)).catch(() => undefined);
      throw new FleetError(ErrorCode.Busy, `operation ${op.id} was changed by someone else; reading it again`);
    }
  }

  /**
   * Releases the cluster's lock, only if this operation holds it. The cached
   * revision is tried first (it is what this coordinator wrote), sparing a
   * read on the way from one join to the next; the server is read only when
   * the cache turns out to lag.
   */
  private async releaseLock(cluster: string, id: string): Promise<void> {
    const cached = this.cache.entry(lockKey(cluster));
    if (cached && (cached.value as Lock).id === id && (await this.deleteLock(cluster, cached.revision))) return;
    const entry = await this.cache.kv.get(lockKey(cluster));
    if (!entry || entry.operation !== "PUT" || entry.json<Lock>().id !== id) return;
    await this.deleteLock(cluster, entry.revision);
  }

  /** False when the lock is not at that revision any more. */
  private async deleteLock(cluster: string, revision: number): Promise<boolean> {
    try {
      await this.cache.kv.delete(lockKey(cluster), { previousSeq: revision });
      return true;
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      return false;
    }
  }

  async releaseStale(cluster: string, revision: number): Promise<void> {
    await this.deleteLock(cluster, revision);
  }

  /** Forgets finished operations older than a week. */
  async prune(now: number): Promise<void> {
    for (const [key, e] of [...this.cache.withPrefix("op.")]) {
      const op = e.value as Operation;
      if (op.finishedAt && now - Date.parse(op.finishedAt) > KEEP_FINISHED_MS) await this.cache.kv.purge(key).catch(() => undefined);
    }
  }

  onChange(listener: (cluster: string) => void): () => void {
    return this.cache.onChange((key) => {
      const parts = key.split(".");
      if (parts[1]) listener(parts[1]);
    });
  }
}
