import type { ExecutionContext } from "ava";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { FleetLab, type LabOptions } from "../../lab/fleet-lab.js";
import { Subject, type FleetEvent } from "../../shared/index.js";

/** A lab torn down with the test, pass or fail; its logs are kept in the test output on failure. */
export async function labFor(t: ExecutionContext, options: LabOptions): Promise<FleetLab> {
  const lab = await FleetLab.create(options);
  t.teardown(async () => {
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

/** Follows fleet events on NATS directly, so that the record survives coordinator restarts. */
export async function eventLog(t: ExecutionContext, lab: FleetLab): Promise<{ events: FleetEvent[]; nc: NatsConnection; waitFor(kind: string, node?: string, timeoutMs?: number): Promise<FleetEvent> }> {
  const nc = await connect({ servers: lab.nats.url });
  t.teardown(() => nc.close());
  const events: FleetEvent[] = [];
  nc.subscribe(Subject.eventsAll, {
    callback: (_e, m) => {
      events.push(m.json<FleetEvent>());
    },
  });
  await nc.flush();
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
