import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { connect, nkeyAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import type { ExecutionContext } from "ava";
import { Coordinator } from "../../coordinator/coordinator.js";
import { loadCoordinatorConfig, type CoordinatorConfig } from "../../coordinator/config.js";
import { hostCredentials } from "../../coordinator/setup/setup.js";
import { agentInboxPrefix, createLogger, readVerifyingKey } from "../../shared/index.js";
import { startSecureNats, type SecureNats } from "../../lab/nats-server.js";
import { StillRunning, within } from "./wait.js";

export interface CoordinatorHarness {
  nats: SecureNats;
  coordinator: Coordinator;
  logs: string[];
  /** The API token of the set-up. */
  token: string;
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

/** Hosts every integration test may speak for: two clusters of five. */
export const TEST_HOSTS = ["c1", "c2"].flatMap((cluster) => ["n1", "n2", "n3", "n4", "n5"].map((node, i) => ({ cluster, node, address: `192.0.2.${11 + i}:8443` })));

/** A real nats-server locked down as `incus-fleet setup` writes it, torn down with the test. */
export async function secureNats(t: ExecutionContext, options: { servers?: number; tls?: boolean } = {}): Promise<SecureNats> {
  const nats = await startSecureNats({ hosts: TEST_HOSTS, ...options });
  t.teardown(() => nats.stop());
  return nats;
}

/** The configuration of coordinator `index` of a set-up, for tests that run coordinators in their own process. */
export function coordinatorConfig(nats: SecureNats, overrides: Partial<CoordinatorConfig> = {}, index = 1): CoordinatorConfig {
  const c = nats.setup.coordinators[index - 1]!;
  return {
    ...loadCoordinatorConfig([], {}),
    nats: { servers: nats.urls, name: `coordinator ${index}`, nkeyFile: c.nkeyFile, ...(c.tls ? { tls: c.tls } : {}) },
    signingKeyFile: c.signingKeyFile,
    apiToken: readFileSync(nats.setup.apiTokenFile, "utf8").trim(),
    httpPort: 0,
    logLevel: "debug",
    ...overrides,
  };
}

/** The coordinator in this process, over a locked-down nats-server, torn down with the test. */
export async function startCoordinator(t: ExecutionContext, overrides: Partial<CoordinatorConfig> = {}, nats?: SecureNats, index = 1): Promise<CoordinatorHarness> {
  const server = nats ?? (await secureNats(t));
  const logs: string[] = [];
  const config = coordinatorConfig(server, overrides, index);
  const lastLogs = () => `its last log lines:\n${logs.slice(-40).join("\n")}`;
  const make = () => within(`coordinator ${index} starting`, 60_000, Coordinator.start(config, createLogger({ name: "coordinator", level: "debug", destination: capture(logs) })), lastLogs);
  const stop = (c: Coordinator) => within(`coordinator ${index} stopping`, 60_000, c.stop(), lastLogs);
  const harness: CoordinatorHarness = {
    nats: server,
    coordinator: await make(),
    logs,
    token: config.apiToken,
    async restart() {
      await stop(harness.coordinator);
      harness.coordinator = await make();
      return harness.coordinator;
    },
  };
  // A test may have stopped it already; only a stop that hangs is worth failing the test for.
  t.teardown(() =>
    stop(harness.coordinator).catch((err: unknown) => {
      if (err instanceof StillRunning) throw err;
    }),
  );
  return harness;
}

/** A NATS connection with one host's own credential, as its agent has. */
export async function connectAsHost(t: ExecutionContext, nats: SecureNats, cluster: string, node: string): Promise<NatsConnection> {
  const c = hostCredentials(nats.setup, cluster, node);
  const nc = await connect({ servers: nats.urls, authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(c.nkeyFile, "utf8").trim())), inboxPrefix: agentInboxPrefix(cluster, node), ...(c.tls ? { tls: c.tls } : {}) });
  t.teardown(() => nc.close());
  return nc;
}

/** A NATS connection with a coordinator's credential: everything is allowed (to watch what agents cannot). */
export async function connectAsCoordinator(t: ExecutionContext, nats: SecureNats, index = 1): Promise<NatsConnection> {
  const c = nats.setup.coordinators[index - 1]!;
  const nc = await connect({ servers: nats.urls, authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(c.nkeyFile, "utf8").trim())), ...(c.tls ? { tls: c.tls } : {}) });
  t.teardown(() => nc.close());
  return nc;
}

export function coordinatorPublicKey(nats: SecureNats) {
  return readVerifyingKey(nats.setup.coordinatorKeyFile);
}

export async function putSpec(h: CoordinatorHarness, yaml: string, headers: Record<string, string> = {}, query = "") {
  const res = await h.coordinator.app.inject({ method: "PUT", url: `/v1/spec${query}`, headers: { "content-type": "application/yaml", authorization: `Bearer ${h.token}`, ...headers }, payload: yaml });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> & { revision?: number; error?: { code: string; message: string; problems?: { path: string; message: string }[] } } };
}

export async function getJson<T = Record<string, unknown>>(h: CoordinatorHarness, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const res = await h.coordinator.app.inject({ method: "GET", url, headers: { authorization: `Bearer ${h.token}`, ...headers } });
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

/** Any request to the API with the token (unless the test gives its own headers). */
export async function api(h: CoordinatorHarness, method: "GET" | "PUT" | "POST" | "DELETE" | "PATCH", url: string, options: { payload?: string | object | Buffer; headers?: Record<string, string> } = {}) {
  const res = await h.coordinator.app.inject({ method, url, headers: { authorization: `Bearer ${h.token}`, ...options.headers }, ...(options.payload !== undefined ? { payload: options.payload } : {}) });
  let body: unknown = res.body;
  try {
    body = res.json();
  } catch {
    // Not JSON (the page, YAML, metrics): the text is the body.
  }
  return { status: res.statusCode, body: body as Record<string, unknown> & { error?: { code: string; message: string; problems?: { path: string; message: string }[] } }, text: res.body, headers: res.headers };
}
