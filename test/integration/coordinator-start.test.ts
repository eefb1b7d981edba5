import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";
import { coordinatorConfig, secureNats, startCoordinator } from "../helpers/coordinator.js";

const COORDINATOR = fileURLToPath(new URL("../../coordinator/coordinator.js", import.meta.url));
const SHARED = fileURLToPath(new URL("../../shared/index.js", import.meta.url));

/** A process that starts a coordinator from the configuration in its environment, reports how the start ended, and does nothing more. */
const START_ONCE = `
const { Coordinator } = await import(${JSON.stringify(COORDINATOR)});
const { createLogger } = await import(${JSON.stringify(SHARED)});
try {
  await Coordinator.start(JSON.parse(process.env.CONFIG), createLogger({ name: "coordinator", level: "silent" }));
  console.log("started");
} catch (err) {
  console.log("failed", err.code ?? String(err));
}
`;

test("a coordinator whose start fails after it reached NATS lets go of its connection and watches, so its process ends", async (t) => {
  const nats = await secureNats(t);
  const first = await startCoordinator(t, {}, nats, 1);
  const takenPort = Number(new URL(first.coordinator.url).port);
  const config = coordinatorConfig(nats, { httpPort: takenPort, logLevel: "silent" }, 2);
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    // Killed at the deadline: a process still held by what its start opened never ends by itself.
    execFile(process.execPath, ["--input-type=module", "-e", START_ONCE], { env: { ...process.env, CONFIG: JSON.stringify(config) }, timeout: 30_000 }, (err, out) =>
      err ? reject(new Error(`the process did not end by itself within 30 s (${String(err)}); it wrote: ${out}`)) : resolve({ stdout: out }),
    );
  });
  t.is(stdout.trim(), "failed EADDRINUSE");
});
