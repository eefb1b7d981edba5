/**
 * Rolling-restart benchmark: real incusd members in network namespaces, a
 * running container on every member. In the same run, a raw REST script
 * takes every member through evacuate, restart, wait until ready and
 * online, restore, wait until its container runs on it again, one member at
 * a time; then incus-fleet does the same as one rollout (settling time 0,
 * so that both wait for the same things). Both go in the order a rollout
 * uses (spares and stand-bys first, the leader last).
 *
 *   node dist/bench/rollout.js --members 3 --reps 3
 *
 * Prints one JSON line per run (seconds per member, and how long each
 * container was not running) and a summary with the ratio.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { IncusClient } from "../agent/incus-client.js";
import { orderForRollout } from "../coordinator/operations/operation-service.js";
import { buildBusyboxImage, importImage, launchContainer } from "../lab/busybox-image.js";
import { FleetLab } from "../lab/fleet-lab.js";
import { waitFor } from "../lab/processes.js";
import { arg, emit, median, round, runBenchmark } from "./results.js";

const run = promisify(execFile);
const CLUSTER = "lab";
const PASSWORD = "rollout-bench-password";

/** Samples, every 100 ms, whether each container runs, through whichever member answers; sums the time each did not. */
class DowntimeMeter {
  private readonly down = new Map<string, number>();
  private last = performance.now();
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(private readonly clients: IncusClient[], private readonly names: string[]) {
    this.loop = this.sample();
  }

  private async sample(): Promise<void> {
    while (!this.stopped) {
      const now = performance.now();
      const elapsed = now - this.last;
      this.last = now;
      let running: Set<string> | null = null;
      for (const c of this.clients) {
        const list = await c.instances({ timeoutMs: 500 }).catch(() => null);
        if (list) {
          running = new Set(list.filter((i) => i.status === "Running").map((i) => i.name));
          break;
        }
      }
      // With no member answering at all, nothing is known: the interval is not counted either way.
      if (running) for (const n of this.names) if (!running.has(n)) this.down.set(n, (this.down.get(n) ?? 0) + elapsed);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<Record<string, number>> {
    this.stopped = true;
    await this.loop;
    return Object.fromEntries(this.names.map((n) => [n, round((this.down.get(n) ?? 0) / 1000, 2)]));
  }
}

async function retrying<T>(what: string, f: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (Date.now() > end) throw new Error(`${what}: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The raw script: what an operator's shell loop does, with the waits it needs, and nothing else. */
async function rawRollout(lab: FleetLab, clients: Map<string, IncusClient>, order: string[]): Promise<Record<string, number>> {
  const perMember: Record<string, number> = {};
  for (const member of order) {
    const started = performance.now();
    const via = clients.get(order.find((m) => m !== member)!)!;
    await via.changeMemberState(member, "evacuate", "auto");
    await run("/bin/sh", ["-c", lab.restartIncusCommand(member)]);
    const own = clients.get(member)!;
    await waitFor(`${member} ready`, async () => (await own.ready(1_000)).ready, 120_000, 50);
    await waitFor(`${member} listed`, async () => ["Online", "Evacuated"].includes((await via.members({ timeoutMs: 2_000 })).find((m) => m.server_name === member)?.status ?? ""), 120_000, 50);
    // Right after a restart Incus answers "Server isn't ready yet" for a while: the script retries, as an operator would.
    await retrying(`restore ${member}`, () => via.changeMemberState(member, "restore"));
    await waitFor(`c-${member} back on ${member}`, async () => (await via.instances({ timeoutMs: 2_000 })).some((i) => i.name === `c-${member}` && i.location === member && i.status === "Running"), 120_000, 50);
    perMember[member] = round((performance.now() - started) / 1000, 2);
  }
  return perMember;
}

interface RolloutOp {
  id: string;
  state: string;
  reason: string;
  history: { at: string; phase: string }[];
}

/** The same through incus-fleet: one request, then its operation until it ends. */
async function fleetRollout(lab: FleetLab, order: string[]): Promise<Record<string, number>> {
  const res = await lab.api<RolloutOp>(`/v1/clusters/${CLUSTER}/rollouts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ members: order, action: "restart-incus", settleMs: 0 }) });
  if (res.status !== 202) throw new Error(`rollout refused: ${JSON.stringify(res.body)}`);
  const requested = Date.parse(new Date().toISOString());
  let op = res.body;
  await waitFor("the rollout to end", async () => {
    op = (await lab.api<RolloutOp>(`/v1/operations/${res.body.id}`)).body;
    return ["succeeded", "failed", "cancelled"].includes(op.state);
  }, 30 * 60_000, 100);
  if (op.state !== "succeeded") throw new Error(`rollout ${op.state}: ${op.reason}`);
  // Each member's time: from its evacuation (the first member: from the request) to the next member's, or the end.
  const starts = order.map((m, i) => (i === 0 ? requested : Date.parse(op.history.find((h) => h.phase === `${m}: evacuating`)?.at ?? "")));
  const end = Date.parse(op.history[op.history.length - 1]!.at);
  return Object.fromEntries(order.map((m, i) => [m, round(((starts[i + 1] ?? end) - starts[i]!) / 1000, 2)]));
}

runBenchmark(async () => {
  const size = Number(arg("members", "3"));
  const reps = Number(arg("reps", "3"));
  const lab = await FleetLab.create({ slot: Number(arg("slot", "12")), prefix: arg("prefix", "broll"), hosts: size });
  try {
    await lab.startIncus();
    await lab.startCoordinator({ FLEET_LOG_LEVEL: "warn" });
    const names = lab.members.map((m) => m.name);
    await lab.putSpec(lab.specYaml(CLUSTER, PASSWORD, names.map((name) => ({ name })), { storage_pools: { local: { driver: "dir" } } }));
    for (const n of names) lab.startAgent(n, { password: PASSWORD, env: { FLEET_LOG_LEVEL: "warn" } });
    const healthy = () => lab.waitForCluster(CLUSTER, "converged and healthy", (s) => s.phase === "ready" && s.health === "healthy" && s.memberList.every((m) => m.status === "Online"), 180_000);
    await healthy();
    const clients = new Map(names.map((n) => [n, lab.member(n).client()]));
    const first = clients.get(names[0]!)!;
    await importImage(first, await buildBusyboxImage(), "bb");
    for (const n of names) await launchContainer(first, `c-${n}`, { alias: "bb", target: n, pool: "local" });
    const containers = names.map((n) => `c-${n}`);
    const members = (await first.members()).map((m) => ({ name: m.server_name, roles: m.roles ?? [] }));
    const order = orderForRollout(members);
    const totals = { raw: [] as number[], fleet: [] as number[] };
    for (let rep = 1; rep <= reps; rep++) {
      await healthy();
      let meter = new DowntimeMeter([...clients.values()], containers);
      const raw = await rawRollout(lab, clients, order);
      const rawDown = await meter.stop();
      await healthy();
      meter = new DowntimeMeter([...clients.values()], containers);
      const fleet = await fleetRollout(lab, order);
      const fleetDown = await meter.stop();
      const rawTotal = Object.values(raw).reduce((a, b) => a + b, 0);
      const fleetTotal = Object.values(fleet).reduce((a, b) => a + b, 0);
      totals.raw.push(rawTotal);
      totals.fleet.push(fleetTotal);
      emit({ bench: "rollout", members: size, rep, order, rawSecondsPerMember: raw, fleetSecondsPerMember: fleet, rawTotalS: round(rawTotal, 2), fleetTotalS: round(fleetTotal, 2), ratio: round(fleetTotal / rawTotal, 3), rawNotRunningS: rawDown, fleetNotRunningS: fleetDown });
    }
    emit({ bench: "rollout-summary", members: size, runs: reps, rawMedianS: round(median(totals.raw), 2), fleetMedianS: round(median(totals.fleet), 2), ratio: round(median(totals.fleet) / median(totals.raw), 3), perMemberRawMedianS: round(median(totals.raw) / size, 2), perMemberFleetMedianS: round(median(totals.fleet) / size, 2) });
    for (const c of clients.values()) c.close();
  } finally {
    await lab.destroy();
  }
});
