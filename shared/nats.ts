import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";

export interface NatsOptions {
  servers: string[];
  token?: string;
  credsFile?: string;
  name: string;
}

/** Connects and keeps reconnecting for as long as the process lives: NATS outages are waited out, not fatal. */
export function connectNats(options: NatsOptions): Promise<NatsConnection> {
  return connect({
    servers: options.servers,
    name: options.name,
    ...(options.token ? { token: options.token } : {}),
    ...(options.credsFile ? { authenticator: credsAuthenticator(readFileSync(options.credsFile)) } : {}),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
  });
}
