import test from "ava";
import { readFileSync } from "node:fs";
import { COORDINATOR_NODE_FLAGS } from "../../coordinator/node-flags.js";

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

test("the coordinator's unit runs it with the V8 flags the lab and the benchmarks use", (t) => {
  const execStart = unit("incus-fleet-coordinator.service").get("ExecStart")![0]!;
  t.deepEqual(execStart.split(" ").filter((w) => w.startsWith("--") && execStart.indexOf(w) < execStart.indexOf("/opt/")), COORDINATOR_NODE_FLAGS);
});

test("the agent reaches the Incus socket through the incus-admin group and gets its password as a credential", (t) => {
  const u = unit("incus-fleet-agent.service");
  t.deepEqual(u.get("SupplementaryGroups"), ["incus-admin"]);
  t.true(u.get("RestrictAddressFamilies")![0]!.includes("AF_UNIX"));
  t.regex(u.get("LoadCredential")![0]!, /^cluster-password:/);
  t.true(u.get("Environment")!.some((e) => e.startsWith("FLEET_CLUSTER_PASSWORD_FILE=%d/")));
  t.regex(u.get("After")![0]!, /incus\.service/);
});
