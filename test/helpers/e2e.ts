import type { ExecutionContext } from "ava";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { connect, nkeyAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { DEFAULT_LAYOUT, eventStreamName } from "../../coordinator/store/buckets.js";
import { FleetLab, type LabOptions } from "../../lab/fleet-lab.js";
import type { FleetEvent } from "../../shared/index.js";

/** A lab torn down with the test, pass or fail; its logs are kept in the test output on failure. */
export async function labFor(t: ExecutionContext, options: LabOptions): Promise<FleetLab> {
  // A hang is reported as this test's failure, with the logs, before the run's own timeout would end every test.
  t.timeout(9 * 60_000, "the end-to-end test did not finish in 9 minutes");
  const lab = await FleetLab.create(options);
  t.teardown(async () => {
    if (!t.passed && lab.coordinators.some((c) => c.daemon)) {
      // What the coordinator thought it should do next says more than any log line.
      for (const cluster of lab.options.clusters ?? ["lab"]) {
        const s = await lab.api<{ phase: string; next: string | null; plan: unknown[]; reasons: unknown[]; operation: unknown }>(`/v1/clusters/${cluster}`, { coordinator: lab.coordinators.find((c) => c.daemon)!.index }).catch(() => null);
        if (s) t.log(`--- status of ${cluster}: ${JSON.stringify({ phase: s.body.phase, next: s.body.next, operation: s.body.operation, plan: s.body.plan, reasons: s.body.reasons })}`);
      }
    }
    if (!t.passed && existsSync(lab.root)) {
      for (const file of readdirSync(lab.root).filter((f) => f.endsWith(".log"))) {
        const tail = readFileSync(join(lab.root, file), "utf8").split("\n").filter((l) => !/level=warning|cpuset|instance types/.test(l)).slice(-25).join("\n");
        t.log(`--- ${file}\n${tail}`);
      }
    }
    await lab.destroy();
  });
  return lab;
}

/**
 * Follows the fleet's event stream in JetStream from its first event, with a
 * coordinator's credential: the record survives coordinator restarts, and it
 * is what every coordinator serves (each event once).
 */
export async function eventLog(t: ExecutionContext, lab: FleetLab): Promise<{ events: FleetEvent[]; nc: NatsConnection; waitFor(kind: string, node?: string, timeoutMs?: number): Promise<FleetEvent> }> {
  const credentials = lab.nats.setup.coordinators[0]!;
  const nc = await connect({ servers: lab.nats.urls, authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(credentials.nkeyFile, "utf8").trim())), ...(credentials.tls ? { tls: credentials.tls } : {}) });
  const events: FleetEvent[] = [];
  const js = jetstream(nc);
  let stopped = false;
  // Batches fetched by short-lived consumers rather than one long one: the stream appears when the first
  // coordinator starts and moves when a JetStream server dies, and the record must not stall through either.
  const follow = async () => {
    let from = 1;
    while (!stopped) {
      try {
        const consumer = await js.consumers.get(eventStreamName(DEFAULT_LAYOUT.prefix), { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from });
        const batch = await consumer.fetch({ max_messages: 500, expires: 1_000 });
        // A pull whose server died in flight is never answered: stop waiting for it and pull again.
        const watchdog = setTimeout(() => batch.stop(), 5_000);
        try {
          for await (const m of batch) {
            if (m.seq < from) continue;
            from = m.seq + 1;
            events.push({ ...m.json<FleetEvent>(), seq: m.seq });
          }
        } finally {
          clearTimeout(watchdog);
          await consumer.delete().catch(() => undefined);
        }
      } catch {
        // not there yet, or its leader is moving
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 100));
    }
  };
  const following = follow();
  t.teardown(async () => {
    stopped = true;
    await nc.close();
    await following;
  });
  return {
    events,
    nc,
    async waitFor(kind, node, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const found = events.find((e) => e.kind === kind && (!node || e.node === node));
        if (found) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no ${kind}${node ? ` for ${node}` : ""} event within ${timeoutMs} ms; saw: ${events.map((e) => e.kind).join(", ")}`);
    },
  };
}

export const onlineMembers = (s: { memberList: { name: string; status: string | null }[] }) => s.memberList.filter((m) => m.status === "Online").map((m) => m.name).sort();

/** What Incus itself says the members are, asked on one member's socket. */
export async function incusMembers(lab: FleetLab, on: string): Promise<{ name: string; status: string; roles: string[] }[]> {
  const client = lab.member(on).client();
  try {
    return (await client.members()).map((m) => ({ name: m.server_name, status: m.status, roles: m.roles ?? [] })).sort((a, b) => a.name.localeCompare(b.name));
  } finally {
    client.close();
  }
}

/** Fleet events as a WebSocket client of the coordinator receives them. */
export async function socketEvents(t: ExecutionContext, lab: FleetLab, cluster?: string): Promise<FleetEvent[]> {
  const { default: WebSocket } = await import("ws");
  const ws = new WebSocket(`${lab.coordinatorUrl.replace("http", "ws")}/v1/events/stream${cluster ? `?cluster=${cluster}` : ""}`, ["incus-fleet-events", `bearer.${lab.apiToken}`]);
  const events: FleetEvent[] = [];
  ws.on("message", (data) => events.push(JSON.parse(data.toString()) as FleetEvent));
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  t.teardown(() => ws.close());
  return events;
}

/** Asserts that the given kinds occur in the stream in this order (other events may come between). */
export function inOrder(events: FleetEvent[], expected: { kind: string; node?: string }[]): boolean {
  let i = 0;
  for (const e of events) if (i < expected.length && e.kind === expected[i]!.kind && (!expected[i]!.node || e.node === expected[i]!.node)) i += 1;
  return i === expected.length;
}

export interface OperationBody {
  id: string;
  kind: string;
  member: string | null;
  state: "running" | "paused" | "succeeded" | "failed" | "cancelled";
  phase: string;
  reason: string;
  progress: { done: number; total: number } | null;
  data: Record<string, unknown>;
  history: { at: string; phase: string; note: string }[];
}

/** Starts a long action (answered 202 with its operation) and returns the operation; "another change is in progress" is retried for a while, as an operator would. */
export async function startOperation(lab: FleetLab, path: string, body: object = {}, busyForMs = 30_000): Promise<OperationBody> {
  const end = Date.now() + busyForMs;
  for (;;) {
    const res = await lab.api<OperationBody & { error?: { code: string; message: string } }>(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (res.status === 202) return res.body;
    if (res.body.error?.code !== "FLEET_BUSY" || Date.now() > end) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Waits until an operation has ended, and returns it as it ended. */
export async function operationEnd(lab: FleetLab, id: string, timeoutMs = 120_000): Promise<OperationBody> {
  const end = Date.now() + timeoutMs;
  let last: OperationBody | null = null;
  while (Date.now() < end) {
    const res = await lab.api<OperationBody>(`/v1/operations/${id}`).catch(() => null);
    if (res?.status === 200) {
      last = res.body;
      if (["succeeded", "failed", "cancelled"].includes(last.state)) return last;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`operation ${id} did not end within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}
