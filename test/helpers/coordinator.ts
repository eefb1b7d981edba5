import { Writable } from "node:stream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ExecutionContext } from "ava";
import { Coordinator } from "../../coordinator/coordinator.js";
import { loadCoordinatorConfig, type CoordinatorConfig } from "../../coordinator/config.js";
import { createLogger } from "../../shared/index.js";
import { startNatsServer, type NatsServer } from "../../lab/nats-server.js";

export interface CoordinatorHarness {
  nats: NatsServer;
  coordinator: Coordinator;
  logs: string[];
  /** A separate client connection, as an agent or operator would have. */
  client: NatsConnection;
  restart(): Promise<Coordinator>;
}

function capture(lines: string[]): Writable {
  return new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
}

/** A real nats-server on a free port with JetStream, and the coordinator in this process, torn down with the test. */
export async function startCoordinator(t: ExecutionContext, overrides: Partial<CoordinatorConfig> = {}, nats?: NatsServer): Promise<CoordinatorHarness> {
  const server = nats ?? (await startNatsServer());
  const logs: string[] = [];
  const config: CoordinatorConfig = { ...loadCoordinatorConfig([], {}), natsServers: [server.url], httpPort: 0, logLevel: "debug", ...overrides };
  const make = () => Coordinator.start(config, createLogger({ name: "coordinator", level: "debug", destination: capture(logs) }));
  const harness: CoordinatorHarness = {
    nats: server,
    coordinator: await make(),
    logs,
    client: await connect({ servers: server.url }),
    async restart() {
      await harness.coordinator.stop();
      harness.coordinator = await make();
      return harness.coordinator;
    },
  };
  t.teardown(async () => {
    await harness.client.close().catch(() => undefined);
    await harness.coordinator.stop().catch(() => undefined);
    if (!nats) await server.stop();
  });
  return harness;
}

export async function putSpec(h: CoordinatorHarness, yaml: string, headers: Record<string, string> = {}) {
  const res = await h.coordinator.app.inject({ method: "PUT", url: "/v1/spec", headers: { "content-type": "application/yaml", ...headers }, payload: yaml });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> & { revision?: number; error?: { code: string; message: string; problems?: { path: string; message: string }[] } } };
}

export async function getJson<T = Record<string, unknown>>(h: CoordinatorHarness, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const res = await h.coordinator.app.inject({ method: "GET", url, headers });
  return { status: res.statusCode, body: res.json() as T };
}

export const threeMembers = (cluster = "c1", password = "integration-password") => `
clusters:
  ${cluster}:
    cluster_password: ${password}
    members:
      n1: { address: 192.0.2.11 }
      n2: { address: 192.0.2.12 }
      n3: { address: 192.0.2.13 }
`;
