import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../../lab/processes.js";
import { startCoordinator, threeMembers } from "../helpers/coordinator.js";

const CLI = fileURLToPath(new URL("../../coordinator/cli/main.js", import.meta.url));

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "fleet-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A port nothing listens on: taken, then given back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("the CLI applies, dry-runs and shows a spec, lists clusters and reports refusals with their code", async (t) => {
  const h = await startCoordinator(t);
  const dir = tempDir(t);
  writeFileSync(join(dir, "token"), `${h.token}\n`, { mode: 0o600 });
  const cli = (...args: string[]) => run(process.execPath, [CLI, "--api", h.coordinator.url, "--token-file", join(dir, "token"), ...args], { allowFail: true });

  writeFileSync(join(dir, "spec.yaml"), threeMembers());
  const dry = await cli("spec", "apply", "--dry-run", join(dir, "spec.yaml"));
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /dry run/i);
  t.regex(dry.stdout, /c1/);
  const applied = await cli("spec", "apply", join(dir, "spec.yaml"));
  t.is(applied.code, 0, applied.stderr);
  t.regex(applied.stdout, /revision 1/);

  writeFileSync(join(dir, "bad.yaml"), "clusters:\n  c9:\n    members:\n      n1: { address: 192.0.2.11 }\n");
  const bad = await cli("spec", "apply", join(dir, "bad.yaml"));
  t.is(bad.code, 1);
  t.regex(bad.stderr, /FLEET_SPEC_INVALID/);
  t.regex(bad.stderr, /clusters\.c9\.cluster_password/);
  const missing = await cli("spec", "apply", join(dir, "nope.yaml"));
  t.is(missing.code, 1);
  t.regex(missing.stderr, /nope\.yaml/);

  const shown = await cli("spec", "show");
  t.is(shown.code, 0, shown.stderr);
  t.false(shown.stdout.includes("integration-password"));
  writeFileSync(join(dir, "exported.yaml"), shown.stdout);
  t.is((await cli("spec", "apply", join(dir, "exported.yaml"))).code, 0, "the export applies back");

  const clusters = await cli("clusters");
  t.regex(clusters.stdout, /^CLUSTER\s+PHASE\s+SPEC\s+HEALTH/m);
  t.regex(clusters.stdout, /^c1\s+/m);
  const status = await cli("status", "c1");
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /n1\s+192\.0\.2\.11:8443/);
  const json = JSON.parse((await cli("--json", "plan", "c1")).stdout) as { cluster: string }[];
  t.is(json[0]!.cluster, "c1");

  const evacuate = await cli("evacuate", "c1", "n9");
  t.is(evacuate.code, 1);
  t.regex(evacuate.stderr, /FLEET_UNKNOWN_MEMBER/);
  const ops = await cli("operations", "list");
  t.is(ops.code, 0, ops.stderr);
});

test("the CLI says clearly what is wrong with the connection: no token, a wrong one, nobody listening", async (t) => {
  const h = await startCoordinator(t);
  const env = { ...process.env, FLEET_API_TOKEN: "", FLEET_API_TOKEN_FILE: "" };
  const noToken = await run(process.execPath, [CLI, "--api", h.coordinator.url, "clusters"], { allowFail: true, env });
  t.is(noToken.code, 1);
  t.regex(noToken.stderr, /FLEET_UNAUTHORIZED/);
  const wrong = await run(process.execPath, [CLI, "--api", h.coordinator.url, "--token", "not-it", "clusters"], { allowFail: true, env });
  t.regex(wrong.stderr, /FLEET_UNAUTHORIZED/);
  const port = await closedPort();
  const refused = await run(process.execPath, [CLI, "--api", `http://127.0.0.1:${port}`, "clusters"], { allowFail: true, env });
  t.is(refused.code, 1);
  t.regex(refused.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  t.regex(refused.stderr, /refused|not running|cannot reach/i);
  t.is(refused.stderr.trim().split("\n").length, 1, "one line, no stack trace");
  const badUrl = await run(process.execPath, [CLI, "--api", "not a url", "clusters"], { allowFail: true, env });
  t.is(badUrl.code, 1);
  t.regex(badUrl.stderr, /--api/);
});

test("a reader that goes away early ends the event history quietly", async (t) => {
  const h = await startCoordinator(t);
  const dir = tempDir(t);
  writeFileSync(join(dir, "token"), h.token);
  // Enough history for the output to outlast a pipe that closes after its first line.
  for (let i = 0; i < 30; i++) h.coordinator.events.publish("c1", { kind: "spec.kept", message: `event ${i} ${"x".repeat(2_000)}`, data: { file: "f", revision: i } });
  await h.coordinator.events.flushed();
  const child = spawn(process.execPath, [CLI, "--api", h.coordinator.url, "--token-file", join(dir, "token"), "events", "--no-follow", "--replay", "30"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d.toString()));
  child.stdout.once("data", () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  t.is(code, 0);
  t.is(stderr, "", "no EPIPE trace");
  t.true(readFileSync(join(dir, "token"), "utf8").length > 0);
});
