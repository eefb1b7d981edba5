import { commonSchema, loadConfig, readSecretFile } from "../shared/index.js";

const coordinatorSchema = {
  ...commonSchema,
  http: {
    host: { doc: "Address the HTTP API listens on", format: String, default: "127.0.0.1", env: "FLEET_HTTP_HOST", arg: "http-host" },
    port: { doc: "Port of the HTTP API (0 picks a free one)", format: "port", default: 8480, env: "FLEET_HTTP_PORT", arg: "http-port" },
    token: { doc: "Bearer token required on the HTTP API (empty: no authentication)", format: String, default: "", sensitive: true, env: "FLEET_API_TOKEN", arg: "api-token" },
    tokenFile: { doc: "File holding the HTTP API bearer token", format: String, default: "", env: "FLEET_API_TOKEN_FILE", arg: "api-token-file" },
  },
  store: {
    prefix: { doc: "Prefix of the JetStream key-value buckets", format: "nonempty-string", default: "fleet", env: "FLEET_STORE_PREFIX", arg: "store-prefix" },
    replicas: { doc: "Replicas of each bucket (1 for a single NATS server)", format: "nat", default: 1, env: "FLEET_STORE_REPLICAS", arg: "store-replicas" },
  },
  spec: {
    file: { doc: "Spec file applied at start when it differs from the stored one", format: String, default: "", env: "FLEET_SPEC_FILE", arg: "spec" },
  },
  health: {
    heartbeatIntervalMs: { doc: "Heartbeat interval assumed before an agent reports its own", format: "nat", default: 1_000, env: "FLEET_HEARTBEAT_INTERVAL_MS", arg: "heartbeat-interval-ms" },
    lostAfterIntervals: { doc: "An agent is lost after this many missed heartbeats", format: "nat", default: 3, env: "FLEET_LOST_AFTER", arg: "lost-after" },
    latencyThresholdMs: { doc: "Links slower than this are flagged", format: "nat", default: 50, env: "FLEET_LATENCY_THRESHOLD_MS", arg: "latency-threshold-ms" },
    clockOffsetLimitMs: { doc: "Clocks further off than this are flagged", format: "nat", default: 500, env: "FLEET_CLOCK_OFFSET_LIMIT_MS", arg: "clock-offset-limit-ms" },
    splitGraceMs: { doc: "How long agents' views must disagree before destructive actions are held; longer than agents take to refresh their views (3 heartbeats)", format: "nat", default: 4_000, env: "FLEET_SPLIT_GRACE_MS", arg: "split-grace-ms" },
  },
  join: {
    timeoutMs: { doc: "A join not finished by then is given up and retried", format: "nat", default: 120_000, env: "FLEET_JOIN_TIMEOUT_MS", arg: "join-timeout-ms" },
  },
};

export interface CoordinatorConfig {
  natsServers: string[];
  natsToken: string;
  natsCredsFile: string;
  logLevel: string;
  httpHost: string;
  httpPort: number;
  apiToken: string;
  storePrefix: string;
  storeReplicas: number;
  specFile: string;
  heartbeatIntervalMs: number;
  lostAfterIntervals: number;
  latencyThresholdMs: number;
  clockOffsetLimitMs: number;
  splitGraceMs: number;
  joinTimeoutMs: number;
}

export function loadCoordinatorConfig(args?: string[], env?: NodeJS.ProcessEnv): CoordinatorConfig {
  const c = loadConfig(coordinatorSchema, args, env);
  return {
    natsServers: c.get("nats.servers"),
    natsToken: c.get("nats.token"),
    natsCredsFile: c.get("nats.credsFile"),
    logLevel: c.get("log.level"),
    httpHost: c.get("http.host"),
    httpPort: c.get("http.port"),
    apiToken: c.get("http.tokenFile") ? readSecretFile(c.get("http.tokenFile")) : c.get("http.token"),
    storePrefix: c.get("store.prefix"),
    storeReplicas: c.get("store.replicas"),
    specFile: c.get("spec.file"),
    heartbeatIntervalMs: c.get("health.heartbeatIntervalMs"),
    lostAfterIntervals: c.get("health.lostAfterIntervals"),
    latencyThresholdMs: c.get("health.latencyThresholdMs"),
    clockOffsetLimitMs: c.get("health.clockOffsetLimitMs"),
    splitGraceMs: c.get("health.splitGraceMs"),
    joinTimeoutMs: c.get("join.timeoutMs"),
  };
}
