import test from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, stopDaemon } from "../../lab/processes.js";
import { connectNats } from "../../shared/nats.js";
import { capturingLogger } from "../helpers/capture-log.js";
import { secureNats } from "../helpers/coordinator.js";
import { until } from "../helpers/wait.js";

test("each change of the NATS connection is logged: not up yet and why, connected, lost, back", async (t) => {
  const nats = await secureNats(t);
  const server = nats.servers[0]!;
  await server.stop();
  const { log, lines } = capturingLogger();
  const credential = nats.setup.coordinators[0]!;
  // Given up with the test, pass or fail: a connection still retrying would keep the test process alive.
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const connecting = connectNats({ servers: nats.urls, name: "test", nkeyFile: credential.nkeyFile }, log, abort.signal);
  connecting.catch(() => undefined);
  await until("a line saying why it cannot connect yet", () => lines.find((l) => l.msg === "cannot connect to NATS yet; retrying" && /connection refused/.test(l.reason ?? "")), 30_000, 50);
  await server.restart();
  const nc = await connecting;
  t.teardown(() => nc.close());
  t.true(lines.some((l) => l.msg === "connected to NATS"));

  await server.stop("SIGKILL");
  await until("the loss logged", () => lines.find((l) => l.msg === "NATS connection lost; reconnecting"), 30_000, 50);
  await server.restart();
  await until("the return logged", () => lines.find((l) => l.msg === "NATS connection back"), 30_000, 50);
  t.pass();
});

test("a test's nats-server whose port another process took is not mistaken for that process", async (t) => {
  const nats = await secureNats(t);
  const server = nats.servers[0]!;
  await server.stop();
  // Another process on the port in between: the server cannot listen there and exits.
  const dir = mkdtempSync(join(tmpdir(), "fleet-other-"));
  const other = startDaemon("nats-server", ["-a", server.host, "-p", String(server.port)], { log: join(dir, "other.log") });
  t.teardown(async () => {
    await stopDaemon(other);
    rmSync(dir, { recursive: true, force: true });
  });
  await until("the other process listening", () => existsSync(other.log) && readFileSync(other.log, "utf8").includes("Server is ready"), 10_000, 20);
  const error = await t.throwsAsync(server.restart());
  t.regex(error?.message ?? "", /exited before it was ready/);
});
