import pRetry from "p-retry";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { DiscardPolicy, jetstream, jetstreamManager, StorageType, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { ErrorCode, FleetError, Subject, type Logger } from "../../shared/index.js";
import { isTransient } from "./jetstream-errors.js";

export interface StoreLayout {
  /** Prefix of every bucket's and stream's name: coordinators that share it share the fleet. */
  prefix: string;
  /** Copies of each bucket: 3 on a JetStream cluster of three servers, so that losing one loses nothing. */
  replicas: number;
  /** A cluster's lease lapses this long after its owner last renewed it. */
  leaseTtlMs: number;
  /** Fleet events are kept this long, and at most this many bytes of them. */
  eventMaxAgeMs: number;
  eventMaxBytes: number;
}

export const DEFAULT_LAYOUT: StoreLayout = { prefix: "fleet", replicas: 1, leaseTtlMs: 3_000, eventMaxAgeMs: 7 * 24 * 3_600_000, eventMaxBytes: 64 * 1024 * 1024 };

export interface Buckets {
  /** The desired state: the spec, one key, with its history. */
  spec: KV;
  /** Keys derived from cluster passwords, and the challenge key: readable by coordinators only. */
  secrets: KV;
  /** Per cluster: the bootstrap claim, created once and never removed. */
  clusters: KV;
  /** Per host: its pinned identity, its session, its last facts and join history. */
  nodes: KV;
  /** Long changes (joins, removals, evacuations, rollouts) and each cluster's lock. */
  ops: KV;
  /** Per cluster: the owner's latest evaluation, read by every coordinator's API. */
  status: KV;
  /** Cluster leases and live coordinators; entries lapse unless renewed. */
  leases: KV;
}

export const eventStreamName = (prefix: string) => `${prefix}-events`;

/** An event published again within this long of the first time is dropped by the stream (by its id). */
export const EVENT_DUPLICATE_WINDOW_MS = 120_000;

const STREAM_NAME_IN_USE = 10058;
const SUBJECTS_OVERLAP = 10065;

function errorCodeOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; api_error?: { err_code?: unknown } };
  const code = e.api_error?.err_code ?? e.code;
  return typeof code === "number" ? code : undefined;
}

/**
 * The event subjects are already kept: by our own stream, made a moment ago
 * by a coordinator starting beside this one (retried), or by another
 * fleet's, which no retry fixes and which is said plainly.
 */
async function refuseForeignStream(jsm: JetStreamManager, ours: string, err: unknown): Promise<never> {
  const holder = await jsm.streams.find(Subject.eventsAll).catch(() => null);
  if (holder && holder !== ours) {
    throw new FleetError(ErrorCode.Unavailable, `the fleet events (${Subject.eventsAll}) are already kept by the stream '${holder}' on this NATS account, another fleet's store (store.prefix): one account carries one fleet`);
  }
  throw err;
}

/**
 * Opens (creating where needed) the buckets and the event stream. Several
 * coordinators starting at once against a fresh store race to create them;
 * and on a JetStream cluster the meta leader may still be being elected. Both
 * pass, so every call is retried until it succeeds or a minute has gone by.
 */
export async function openBuckets(nc: NatsConnection, layout: StoreLayout, log: Logger): Promise<Buckets> {
  const retry = <T>(what: string, fn: () => Promise<T>) =>
    pRetry(fn, {
      retries: 30,
      minTimeout: 100,
      maxTimeout: 2_000,
      maxRetryTime: 60_000,
      shouldRetry: ({ error }) => isTransient(error),
      onFailedAttempt: ({ error, attemptNumber }) => {
        if (attemptNumber === 1 || attemptNumber % 5 === 0) log.warn({ what, attempt: attemptNumber, err: String(error) }, "the store is not ready yet; retrying");
      },
    });
  const kvm = new Kvm(jetstream(nc, { timeout: 5_000 }));
  const replicas = layout.replicas;
  // Reads go to the stream's leader: a replica answering a direct get may be behind (one just restarted is, for a
  // while), and a compare-and-set retried from what it says loses again and again.
  const bucket = (name: string, options: { history: number; ttl?: number }) =>
    retry(`bucket ${layout.prefix}-${name}`, () => kvm.create(`${layout.prefix}-${name}`, { replicas, history: options.history, allow_direct: false, ...(options.ttl ? { ttl: options.ttl } : {}) }));
  // One at a time: on a JetStream cluster, parallel creates while the meta leader settles fail more often than they save.
  const spec = await bucket("spec", { history: 20 });
  const secrets = await bucket("secrets", { history: 1 });
  const clusters = await bucket("clusters", { history: 1 });
  const nodes = await bucket("nodes", { history: 1 });
  const ops = await bucket("ops", { history: 1 });
  const status = await bucket("status", { history: 1 });
  const leases = await bucket("leases", { history: 1, ttl: layout.leaseTtlMs });
  const jsm = await retry("the JetStream manager", () => jetstreamManager(nc, { timeout: 5_000 }));
  const config = {
    name: eventStreamName(layout.prefix),
    subjects: [Subject.eventsAll],
    storage: StorageType.File,
    num_replicas: replicas,
    max_age: nanos(layout.eventMaxAgeMs),
    max_bytes: layout.eventMaxBytes,
    discard: DiscardPolicy.Old,
    // Two coordinators, or one resuming another's operation, may publish the same event: the stream keeps it once.
    duplicate_window: nanos(EVENT_DUPLICATE_WINDOW_MS),
    allow_direct: true,
  };
  await retry("the event stream", async () => {
    try {
      await jsm.streams.add(config);
    } catch (err) {
      // The stream exists with other limits (an earlier version, other settings): take the new ones.
      if (errorCodeOf(err) === STREAM_NAME_IN_USE) await jsm.streams.update(config.name, config);
      else if (errorCodeOf(err) === SUBJECTS_OVERLAP) await refuseForeignStream(jsm, config.name, err);
      else throw err;
    }
  });
  return { spec, secrets, clusters, nodes, ops, status, leases };
}
