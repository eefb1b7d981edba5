import test from "ava";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadAgentConfig } from "../../agent/config.js";
import { COORDINATOR_ENV, COORDINATOR_NODE_FLAGS } from "../../coordinator/node-flags.js";
import { run } from "../../lab/processes.js";

function unit(name: string): Map<string, string[]> {
  const text = readFileSync(new URL(`../../../systemd/${name}`, import.meta.url), "utf8");
  const keys = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}

for (const name of ["incus-fleet-agent.service", "incus-fleet-coordinator.service"]) {
  test(`${name}: Type=exec, restarted on failure, hardened, and JIT-friendly`, (t) => {
    const u = unit(name);
    t.deepEqual(u.get("Type"), ["exec"]);
    t.deepEqual(u.get("Restart"), ["on-failure"]);
    for (const key of ["NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "CapabilityBoundingSet", "SystemCallFilter", "RestrictAddressFamilies"]) t.true(u.has(key), `${key} is set`);
    t.false(u.has("MemoryDenyWriteExecute"), "V8 needs writable executable memory");
    t.regex(u.get("ExecStart")![0]!, /^\/usr\/bin\/node (--\S+ )*\/opt\/incus-fleet\/dist\/(agent|coordinator)\/main\.js/);
  });
}

test("the coordinator's unit runs it with the V8 flags and the malloc setting the lab and the benchmarks use", (t) => {
  const u = unit("incus-fleet-coordinator.service");
  const execStart = u.get("ExecStart")![0]!;
  t.deepEqual(execStart.split(" ").filter((w) => w.startsWith("--") && execStart.indexOf(w) < execStart.indexOf("/opt/")), COORDINATOR_NODE_FLAGS);
  for (const [name, value] of Object.entries(COORDINATOR_ENV)) t.true(u.get("Environment")!.includes(`${name}=${value}`), `${name}=${value}`);
});

test("the agent reaches the Incus socket through the incus-admin group and gets its password as a credential", (t) => {
  const u = unit("incus-fleet-agent.service");
  t.deepEqual(u.get("SupplementaryGroups"), ["incus-admin"]);
  t.true(u.get("RestrictAddressFamilies")![0]!.includes("AF_UNIX"));
  t.true(u.get("LoadCredential")!.some((c) => c.startsWith("cluster-password:")));
  t.true(u.get("Environment")!.some((e) => e.startsWith("FLEET_CLUSTER_PASSWORD_FILE=%d/")));
  t.regex(u.get("After")![0]!, /incus\.service/);
});

test("both services get their NATS key (and the coordinator its signing key) as credentials, never from a readable file", (t) => {
  const agent = unit("incus-fleet-agent.service");
  t.true(agent.get("LoadCredential")!.some((c) => c.startsWith("nats.nk:")));
  t.true(agent.get("Environment")!.includes("FLEET_NATS_NKEY_FILE=%d/nats.nk"));
  const coordinator = unit("incus-fleet-coordinator.service");
  for (const [credential, env] of [["nats.nk", "FLEET_NATS_NKEY_FILE"], ["signing.key", "FLEET_SIGNING_KEY_FILE"], ["api-token", "FLEET_API_TOKEN_FILE"]] as const) {
    t.true(coordinator.get("LoadCredential")!.some((c) => c.startsWith(`${credential}:`)), credential);
    t.true(coordinator.get("Environment")!.includes(`${env}=%d/${credential}`), env);
  }
});

test("rollout actions go through the root action unit the polkit rule lets the agent start, and nothing else", (t) => {
  const config = loadAgentConfig([], { FLEET_CLUSTER_PASSWORD: "x".repeat(12), FLEET_NATS_NKEY_FILE: "/dev/null", FLEET_COORDINATOR_KEY_FILE: "/dev/null", FLEET_NODE_ADDRESS: "192.0.2.11" });
  for (const command of Object.values(config.hostActions)) t.regex(command!, /^systemctl start "?incus-fleet-action@/);
  const action = unit("incus-fleet-action@.service");
  t.deepEqual(action.get("Type"), ["oneshot"]);
  t.regex(action.get("ExecStart")![0]!, /^\/opt\/incus-fleet\/systemd\/incus-fleet-host-action %I$/);
  const rules = readFileSync(new URL("../../../systemd/50-incus-fleet.rules", import.meta.url), "utf8");
  t.regex(rules, /subject\.user !== "incus-fleet"/);
  t.regex(rules, /verb === "start"/);
  t.true(existsSync(new URL("../../../systemd/incus-fleet-host-action", import.meta.url)));
});

test("the host-action script runs only the actions it knows, and checks the version it is given", async (t) => {
  const script = fileURLToPath(new URL("../../../systemd/incus-fleet-host-action", import.meta.url));
  const unknown = await run("/bin/sh", [script, "rm-rf"], { allowFail: true });
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown action 'rm-rf'/);
  const injected = await run("/bin/sh", [script, "upgrade-incus:6.0;reboot"], { allowFail: true });
  t.is(injected.code, 2);
  t.regex(injected.stderr, /needs a target version/);
  const none = await run("/bin/sh", [script, "upgrade-incus"], { allowFail: true });
  t.is(none.code, 2);
});
