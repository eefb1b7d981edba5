import closeWithGrace from "close-with-grace";
import { connectNats, createLogger, deriveClusterKeys } from "../shared/index.js";
import { FleetAgent } from "./agent.js";
import { loadAgentConfig } from "./config.js";

const config = (() => {
  try {
    return loadAgentConfig();
  } catch (err) {
    process.stderr.write(`incus-fleet-agent: configuration error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
})();

const log = createLogger({ name: "incus-fleet-agent", level: config.logLevel, base: { cluster: config.cluster, node: config.node } });
const keys = deriveClusterKeys(config.cluster, config.password);
const nc = await connectNats({ servers: config.natsServers, token: config.natsToken, credsFile: config.natsCredsFile, name: `agent ${config.cluster}/${config.node}` });
const agent = new FleetAgent(nc, config, log, keys);
agent.start();

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) log.error({ err: String(err) }, "agent stopping after an error");
  else log.info({ signal }, "agent stopping");
  await agent.stop();
  await nc.drain().catch(() => undefined);
});
