import closeWithGrace from "close-with-grace";
import { connectNats, createLogger, deriveClusterKeys, readVerifyingKey } from "../shared/index.js";
import { FleetAgent } from "./agent.js";
import { loadAgentConfig } from "./config.js";

const fail = (what: string, err: unknown): never => {
  process.stderr.write(`incus-fleet-agent: ${what}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
};

const config = (() => {
  try {
    return loadAgentConfig();
  } catch (err) {
    return fail("configuration error", err);
  }
})();
const coordinatorKey = (() => {
  try {
    return readVerifyingKey(config.coordinatorKeyFile);
  } catch (err) {
    return fail(`coordinatorKeyFile ${config.coordinatorKeyFile}`, err);
  }
})();

const log = createLogger({ name: "incus-fleet-agent", level: config.logLevel, base: { cluster: config.cluster, node: config.node } });
const keys = deriveClusterKeys(config.cluster, config.password);
const nc = await connectNats(config.nats, log.child({ part: "nats" }));
const agent = new FleetAgent(nc, config, coordinatorKey, log, keys);
agent.start();

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) log.error({ err: String(err) }, "agent stopping after an error");
  else log.info({ signal }, "agent stopping");
  await agent.stop();
  await nc.drain().catch(() => undefined);
});
