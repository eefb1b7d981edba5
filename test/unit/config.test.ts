import test from "ava";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAgentConfig } from "../../agent/config.js";
import { loadCoordinatorConfig } from "../../coordinator/config.js";

test("agent configuration comes from a file, then the environment, then flags", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "fleet-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, "password");
  writeFileSync(passwordFile, "from-a-file-password\n");
  const file = join(dir, "agent.yaml");
  writeFileSync(file, `cluster:\n  name: prod\n  passwordFile: ${passwordFile}\nnode:\n  name: node7\n  address: 192.0.2.17\nheartbeat:\n  intervalMs: 2000\n`);
  const config = loadAgentConfig(["--config", file, "--heartbeat-interval-ms", "500"], { FLEET_NODE_NAME: "node8" });
  t.is(config.cluster, "prod");
  t.is(config.password, "from-a-file-password");
  t.is(config.node, "node8", "environment beats the file");
  t.is(config.heartbeatIntervalMs, 500, "flags beat the environment");
  t.is(config.address, "192.0.2.17");
});

test("unknown keys and missing essentials are configuration errors naming the key", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "fleet-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "agent.json");
  writeFileSync(file, JSON.stringify({ cluster: { name: "prod", pasword: "typo" } }));
  t.throws(() => loadAgentConfig(["--config", file], {}), { message: /cluster\.pasword/ });
  t.throws(() => loadAgentConfig([], { FLEET_NODE_ADDRESS: "192.0.2.1" }), { message: /cluster\.password: not set/ });
  t.throws(() => loadAgentConfig([], { FLEET_CLUSTER_PASSWORD: "pw-long-enough" }), { message: /node\.address: not set/ });
});

test("coordinator defaults listen on loopback only", (t) => {
  const config = loadCoordinatorConfig([], {});
  t.is(config.httpHost, "127.0.0.1");
  t.is(config.latencyThresholdMs, 50);
  t.is(config.lostAfterIntervals, 3);
});

test("the coordinator refuses to listen beyond loopback without an API token, unless told to", (t) => {
  t.throws(() => loadCoordinatorConfig(["--http-host", "0.0.0.0"], {}), { message: /http\.host: 0\.0\.0\.0 is beyond loopback and no API token is set/ });
  t.throws(() => loadCoordinatorConfig([], { FLEET_HTTP_HOST: "198.51.100.7" }), { message: /beyond loopback/ });
  t.is(loadCoordinatorConfig(["--http-host", "0.0.0.0", "--api-token", "a-long-enough-token-for-the-api"], {}).httpHost, "0.0.0.0");
  t.is(loadCoordinatorConfig(["--http-host", "0.0.0.0", "--http-insecure-no-token"], {}).httpHost, "0.0.0.0");
  t.is(loadCoordinatorConfig(["--http-host", "::1"], {}).httpHost, "::1", "loopback needs no token");
});
