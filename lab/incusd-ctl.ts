/**
 * What a service manager does for incusd on a real host, for the lab's
 * members: the agent's host actions call it ("restart Incus") during a
 * rollout, as `systemctl restart incus` would be called on a real host.
 *
 *   node dist/lab/incusd-ctl.js restart --name node1 --namespace ns --dir /tmp/.../node1
 */
import { parseArgs } from "node:util";
import { startIncusd, stopIncusd } from "./incus-member.js";

const { values, positionals } = parseArgs({ options: { name: { type: "string" }, namespace: { type: "string" }, dir: { type: "string" } }, allowPositionals: true });
const [action] = positionals;
if (!values.name || !values.namespace || !values.dir || !["start", "stop", "restart"].includes(action ?? "")) {
  process.stderr.write("usage: incusd-ctl start|stop|restart --name <member> --namespace <netns> --dir <INCUS_DIR>\n");
  process.exit(2);
}
const member = { name: values.name, host: { namespace: values.namespace }, dir: values.dir, socket: `${values.dir}/unix.socket` };
if (action === "stop" || action === "restart") await stopIncusd(member, "graceful");
if (action === "start" || action === "restart") await startIncusd(member);
process.stdout.write(`incusd of ${values.name}: ${action} done\n`);
