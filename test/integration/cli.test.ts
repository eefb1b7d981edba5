import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../../lab/processes.js";
import { startCoordinator, threeMembers } from "../helpers/coordinator.js";

const CLI = fileURLToPath(new URL("../../coordinator/cli.js", import.meta.url));

test("the CLI applies a spec, lists clusters, shows a status and reports refusals with their code", async (t) => {
  const h = await startCoordinator(t, { apiToken: "cli-token-123" });
  const dir = mkdtempSync(join(tmpdir(), "fleet-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) => run(process.execPath, [CLI, "--api", h.coordinator.url, ...args], { allowFail: true, env: { ...process.env, FLEET_API_TOKEN: "cli-token-123" } });

  writeFileSync(join(dir, "spec.yaml"), threeMembers());
  const applied = await cli("spec", "apply", join(dir, "spec.yaml"));
  t.is(applied.code, 0, applied.stderr);
  t.regex(applied.stdout, /spec stored as revision 1/);

  writeFileSync(join(dir, "bad.yaml"), "clusters:\n  c1:\n    members:\n      n1: { address: 192.0.2.11 }\n");
  const bad = await cli("spec", "apply", join(dir, "bad.yaml"));
  t.is(bad.code, 1);
  t.regex(bad.stderr, /FLEET_SPEC_INVALID/);
  t.regex(bad.stderr, /clusters\.c1\.cluster_password: missing cluster_password/);

  const clusters = await cli("clusters");
  t.regex(clusters.stdout, /^CLUSTER\s+PHASE\s+HEALTH/m);
  t.regex(clusters.stdout, /^c1\s+pending/m);
  const status = await cli("status", "c1");
  t.regex(status.stdout, /n1\s+192\.0\.2\.11:8443/);
  t.regex(status.stdout, /next steps:/);
  const json = JSON.parse((await cli("--json", "plan", "c1")).stdout) as { cluster: string }[];
  t.is(json[0]!.cluster, "c1");

  const evacuate = await cli("evacuate", "c1", "n9");
  t.is(evacuate.code, 1);
  t.regex(evacuate.stderr, /FLEET_UNKNOWN_MEMBER/);
  const noToken = await run(process.execPath, [CLI, "--api", h.coordinator.url, "clusters"], { allowFail: true, env: { ...process.env, FLEET_API_TOKEN: "" } });
  t.regex(noToken.stderr, /FLEET_UNAUTHORIZED/);
});
