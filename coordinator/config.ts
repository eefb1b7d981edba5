import { commonSchema, loadConfig, natsOptionsOf, readSecretFile, type NatsOptions } from "../shared/index.js";

const coordinatorSchema = {
  ...commonSchema,
  signingKeyFile: {
    doc: "The coordinators' Ed25519 signing key (PEM), written by incus-fleet setup; agents hold its public half",
    format: "nonempty-string",
    default: "/etc/incus-fleet/coordinator/signing.key",
    env: "FLEET_SIGNING_KEY_FILE",
    arg: "signing-key-file",
  },
  http: {
    host: { doc: "Address the HTTP API listens on", format: String, default: "127.0.0.1", env: "FLEET_HTTP_HOST", arg: "http-host" },
    port: { doc: "Port of the HTTP API (0 picks a free one)", format: "port", default: 8480, env: "FLEET_HTTP_PORT", arg: "http-port" },
    token: { doc: "Bearer token required on the HTTP API (prefer tokenFile)", format: String, default: "", sensitive: true, env: "FLEET_API_TOKEN", arg: "api-token" },
    tokenFile: { doc: "File holding the HTTP API bearer token", format: String, default: "", env: "FLEET_API_TOKEN_FILE", arg: "api-token-file" },
    insecureNoToken: {
      doc: "Listen beyond loopback without an API token anyway (anyone who reaches the port can then evacuate and remove members)",
      format: Boolean,
      default: false,
      env: "FLEET_HTTP_INSECURE_NO_TOKEN",
      arg: "http-insecure-no-token",
    },
    allowedOrigins: {
      doc: "Web origins (scheme://host:port) allowed to open the event WebSocket besides the API's own",
      format: Array,
      default: [] as string[],
      env: "FLEET_HTTP_ALLOWED_ORIGINS",
      arg: "http-allowed-origins",
    },
  },
  store: {
    prefix: { doc: "Prefix of the JetStream buckets and stream: coordinators sharing it share the fleet", format: "nonempty-string", default: "fleet", env: "FLEET_STORE_PREFIX", arg: "store-prefix" },
    replicas: { doc: "Copies of each bucket (3 on a JetStream cluster of three servers)", format: "nat", default: 1, env: "FLEET_STORE_REPLICAS", arg: "store-replicas" },
    leaseTtlMs: { doc: "A cluster's lease lapses this long after its owner stops renewing it; another coordinator takes over then", format: "nat", default: 3_000, env: "FLEET_LEASE_TTL_MS", arg: "lease-ttl-ms" },
  },
  spec: {
    file: { doc: "Spec file applied at start into an empty store, or when it changed since it was last applied", format: String, default: "", env: "FLEET_SPEC_FILE", arg: "spec" },
  },
  health: {
    heartbeatIntervalMs: { doc: "Heartbeat interval assumed before an agent reports its own", format: "nat", default: 1_000, env: "FLEET_HEARTBEAT_INTERVAL_MS", arg: "heartbeat-interval-ms" },
    lostAfterIntervals: { doc: "An agent is lost after this many missed heartbeats", format: "nat", default: 3, env: "FLEET_LOST_AFTER", arg: "lost-after" },
    latencyThresholdMs: { doc: "Links slower than this (several probes in a row) are flagged", format: "nat", default: 50, env: "FLEET_LATENCY_THRESHOLD_MS", arg: "latency-threshold-ms" },
    clockOffsetLimitMs: { doc: "Clocks further off than this (for a while) are flagged", format: "nat", default: 500, env: "FLEET_CLOCK_OFFSET_LIMIT_MS", arg: "clock-offset-limit-ms" },
    splitGraceMs: { doc: "How long agents' views must disagree before destructive actions are held", format: "nat", default: 4_000, env: "FLEET_SPLIT_GRACE_MS", arg: "split-grace-ms" },
  },
  join: {
    timeoutMs: { doc: "A join not finished by then is given up and retried", format: "nat", default: 120_000, env: "FLEET_JOIN_TIMEOUT_MS", arg: "join-timeout-ms" },
  },
  observe: {
    everyMs: { doc: "How often each cluster's settings, pools and networks are read back from Incus and compared with the spec", format: "nat", default: 30_000, env: "FLEET_OBSERVE_EVERY_MS", arg: "observe-every-ms" },
  },
};

export interface CoordinatorConfig {
  nats: NatsOptions;
  logLevel: string;
  signingKeyFile: string;
  httpHost: string;
  httpPort: number;
  apiToken: string;
  httpInsecureNoToken: boolean;
  allowedOrigins: string[];
  storePrefix: string;
  storeReplicas: number;
  leaseTtlMs: number;
  specFile: string;
  heartbeatIntervalMs: number;
  lostAfterIntervals: number;
  latencyThresholdMs: number;
  clockOffsetLimitMs: number;
  splitGraceMs: number;
  joinTimeoutMs: number;
  observeEveryMs: number;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export function loadCoordinatorConfig(args?: string[], env?: NodeJS.ProcessEnv): CoordinatorConfig {
  const c = loadConfig(coordinatorSchema, args, env);
  const apiToken = c.get("http.tokenFile") ? readSecretFile(c.get("http.tokenFile")) : c.get("http.token");
  const httpHost = c.get("http.host");
  const httpInsecureNoToken = c.get("http.insecureNoToken");
  if (!apiToken && !LOOPBACK.has(httpHost) && !httpInsecureNoToken) {
    throw new Error(`http.host: ${httpHost} is beyond loopback and no API token is set; give http.tokenFile (or --http-insecure-no-token to accept that anyone reaching the port controls the fleet)`);
  }
  return {
    nats: natsOptionsOf(c as never, "incus-fleet coordinator"),
    logLevel: c.get("log.level"),
    signingKeyFile: c.get("signingKeyFile"),
    httpHost,
    httpPort: c.get("http.port"),
    apiToken,
    httpInsecureNoToken,
    allowedOrigins: c.get("http.allowedOrigins") as string[],
    storePrefix: c.get("store.prefix"),
    storeReplicas: c.get("store.replicas"),
    leaseTtlMs: c.get("store.leaseTtlMs"),
    specFile: c.get("spec.file"),
    heartbeatIntervalMs: c.get("health.heartbeatIntervalMs"),
    lostAfterIntervals: c.get("health.lostAfterIntervals"),
    latencyThresholdMs: c.get("health.latencyThresholdMs"),
    clockOffsetLimitMs: c.get("health.clockOffsetLimitMs"),
    splitGraceMs: c.get("health.splitGraceMs"),
    joinTimeoutMs: c.get("join.timeoutMs"),
    observeEveryMs: c.get("observe.everyMs"),
  };
}
