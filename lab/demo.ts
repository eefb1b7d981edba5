/**
 * The quick start: real nats-servers locked down as `incus-fleet setup`
 * writes them, the coordinator and three agents, each beside a real incusd
 * in its own network namespace, form a cluster. Progress is shown as fleet
 * events arrive; everything is removed on exit. With --keep, the cluster
 * and its live page stay up until Ctrl-C.
 */
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { FleetLab, type ClusterStatusBody } from "./fleet-lab.js";
import { cidrOf } from "./network.js";

const { values } = parseArgs({ options: { keep: { type: "boolean", default: false }, members: { type: "string" } } });
const MEMBERS = Number(values.members ?? process.env.DEMO_MEMBERS ?? 3);
const CLUSTER = "demo";
const PASSWORD = "demo-cluster-password";

function say(text: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 23)}  ${text}\n`);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n");
}

const lab = await FleetLab.create({ slot: 14, prefix: "demo", hosts: MEMBERS, clusters: [CLUSTER] });
let failed = false;
let keeping = false;
let stop: () => void = () => undefined;
const interrupted = new Promise<void>((resolve) => (stop = resolve));
const onSignal = () => {
  // While the cluster is kept, Ctrl-C ends the wait; before that, it cleans up and leaves.
  if (keeping) stop();
  else void lab.destroy().finally(() => process.exit(130));
};
process.once("SIGINT", onSignal);
process.once("SIGTERM", onSignal);
try {
  say(`network: cluster ${cidrOf(lab.net.cluster)}, management ${cidrOf(lab.net.mgmt)}; NATS at ${lab.nats.urls.join(", ")} (nkeys and permissions from incus-fleet setup)`);
  say(`starting ${MEMBERS} incusd daemons, one per network namespace…`);
  await lab.startIncus();
  say("starting the coordinator…");
  const url = await lab.startCoordinator();
  say(`coordinator API at ${url}`);

  const ws = new WebSocket(`${url.replace("http", "ws")}/v1/events/stream?cluster=${CLUSTER}`, ["incus-fleet-events", `bearer.${lab.apiToken}`]);
  ws.on("message", (data: WebSocket.RawData) => {
    const e = JSON.parse(data.toString()) as { kind: string; message: string };
    say(`event ${e.kind.padEnd(20)} ${e.message}`);
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });

  const names = lab.members.map((m) => m.name);
  const applied = await lab.putSpec(lab.specYaml(CLUSTER, PASSWORD, names.map((name) => ({ name, description: `demo member ${name}` }))));
  if (applied.status !== 200) throw new Error(`spec rejected: ${JSON.stringify(applied.body)}`);
  say(`spec applied (revision ${applied.body.revision}); starting one agent per host…`);
  const started = Date.now();
  for (const name of names) lab.startAgent(name, { cluster: CLUSTER, password: PASSWORD });

  const status = await lab.waitForCluster(
    CLUSTER,
    "all members online",
    (s: ClusterStatusBody) => s.phase === "ready" && s.memberList.filter((m) => m.status === "Online").length === MEMBERS && s,
    120_000,
  );
  say(`cluster '${CLUSTER}' formed with ${MEMBERS} members in ${((Date.now() - started) / 1000).toFixed(2)} s`);
  process.stdout.write(`\n${table([
    ["MEMBER", "ADDRESS", "STATUS", "ROLES", "INCUS"],
    ...status.memberList.map((m) => [m.name, lab.address(m.name), m.status ?? "-", m.roles.join(",") || "-", m.incus.version ?? "-"]),
  ])}\n\n`);
  const q = status.quorum;
  if (q) say(`quorum: ${q.onlineVoters}/${q.voters} voters online, majority ${q.majority}, failures tolerated ${q.failuresTolerated}`);
  if (values.keep) {
    say(`the cluster stays up: live page at ${url}/#token=${lab.apiToken}`);
    say(`CLI: node dist/coordinator/cli/main.js --api ${url} --token ${lab.apiToken} status ${CLUSTER}`);
    say("press Ctrl-C to stop and clean up");
    keeping = true;
    await interrupted;
  }
  ws.close();
} catch (err) {
  failed = true;
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\nlogs: ${lab.root}\n`);
} finally {
  say("cleaning up: agents, coordinator, incusd, nats-server, namespaces…");
  await lab.destroy();
  say("done");
}
process.exit(failed ? 1 : 0);
