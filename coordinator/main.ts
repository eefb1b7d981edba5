import closeWithGrace from "close-with-grace";
import { createLogger } from "../shared/index.js";
import { loadCoordinatorConfig } from "./config.js";
import { Coordinator } from "./coordinator.js";

const config = (() => {
  try {
    return loadCoordinatorConfig();
  } catch (err) {
    process.stderr.write(`incus-fleet-coordinator: configuration error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
})();

const log = createLogger({ name: "incus-fleet-coordinator", level: config.logLevel });
let coordinator: Coordinator;
try {
  coordinator = await Coordinator.start(config, log);
} catch (err) {
  log.fatal({ err: err instanceof Error ? err.message : String(err) }, "the coordinator could not start");
  process.stderr.write(`incus-fleet-coordinator: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) log.error({ err: String(err) }, "coordinator stopping after an error");
  else log.info({ signal }, "coordinator stopping");
  await coordinator.stop();
});
