/**
 * Formation benchmark: real incusd members in network namespaces. For each
 * size N, in the same run and against the same daemons:
 *
 * - formation: from "spec applied, agents waiting" to "all N members
 *   joined" through incus-fleet, and the floor, a minimal driver making the
 *   same REST calls directly (bootstrap, then mint a token and join, one
 *   member after another);
 * - converged: the same with server settings (max_voters, max_standby,
 *   offline_threshold), a dir pool and a bridge network, until every member
 *   is online with the roles the settings ask for and both objects are
 *   created everywhere; the floor makes the calls in the best order it can
 *   (settings, pool and network on the bootstrap member, then the joins);
 * - with --coordinators 2, the formation again with two coordinators sharing
 *   the store.
 *
 *   node dist/bench/formation.js --sizes 3,5,7 --reps 5 [--coordinators 2]
 *
 * Prints one JSON line per run and per size summary.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { FleetLab } from "../lab/fleet-lab.js";
import { removeStateDir, startIncusd, stopIncusd } from "../lab/incus-member.js";
import { run, waitFor } from "../lab/processes.js";
import type { IncusClient } from "../agent/incus-client.js";
import { encodeJoinToken } from "../shared/index.js";
import { arg, emit, median, round, runBenchmark } from "./results.js";

const CLUSTER = "bench";
const PASSWORD = "bench-password";
const TARGET = 1.1;

/** What the converged runs ask for, in the spec and from the floor alike. */
const SETTINGS = { "cluster.max_voters": "5", "cluster.max_standby": "2", "cluster.offline_threshold": "30" };
const POOL = { name: "local", driver: "dir" };
const NETWORK = { name: "br0", type: "bridge", config: { "ipv4.address": "none", "ipv6.address": "none" } };

type Mode = "formation" | "converged";

/** Voters and stand-bys Incus settles on for N members under SETTINGS. */
function wantedRoles(n: number): { voters: number; standby: number } {
  const voters = Math.min(n, Number(SETTINGS["cluster.max_voters"]));
  return { voters, standby: Math.min(n - voters, Number(SETTINGS["cluster.max_standby"])) };
}

/** Whether the cluster, as Incus reports it, is what the run asked for. */
async function reached(client: IncusClient, names: string[], mode: Mode): Promise<boolean> {
  const members = await client.members().catch(() => []);
  if (members.length !== names.length || members.some((m) => m.status !== "Online")) return false;
  if (mode === "formation") return true;
  const roles = wantedRoles(names.length);
  const voters = members.filter((m) => m.roles?.includes("database")).length;
  const standby = members.filter((m) => m.roles?.includes("database-standby")).length;
  if (voters !== roles.voters || standby !== roles.standby) return false;
  const pool = await client.storagePool(POOL.name).catch(() => null);
  const network = await client.network(NETWORK.name).catch(() => null);
  return pool?.status === "Created" && network?.status === "Created";
}

/** Polls Incus on the first member until the run's goal holds; the time it first held. */
async function until(lab: FleetLab, names: string[], mode: Mode, timeoutMs = 120_000): Promise<number> {
  const client = lab.member(names[0]!).client();
  try {
    let at = 0;
    await waitFor(`${names.length} members ${mode === "converged" ? "converged" : "joined"}`, async () => {
      const ok = await reached(client, names, mode);
      if (ok) at = performance.now();
      return ok;
    }, timeoutMs, 20);
    return at;
  } finally {
    client.close();
  }
}

/** The floor: the fewest REST calls that reach the goal, made back to back by one driver. */
async function formDirectly(lab: FleetLab, names: string[], mode: Mode): Promise<{ ms: number; joins: { mintMs: number; joinMs: number }[] }> {
  const clients = names.map((n) => lab.member(n).client());
  try {
    const [first, ...rest] = clients;
    const started = performance.now();
    // Watched from the start, as a run through incus-fleet is: the watcher's reads load the first member alike.
    const goal = until(lab, names, mode);
    // Awaited once the calls are made; a call that fails first must not leave its failure unhandled.
    void goal.catch(() => undefined);
    await first!.patchServerConfig({ "core.https_address": lab.address(names[0]!) });
    await first!.enableCluster(names[0]!);
    if (mode === "converged") {
      await first!.patchServerConfig(SETTINGS);
      await first!.createStoragePool(POOL);
      await first!.createNetwork(NETWORK);
    }
    const certificate = (await first!.server()).environment.certificate;
    const joins: { mintMs: number; joinMs: number }[] = [];
    for (const [i, joiner] of rest.entries()) {
      const name = names[i + 1]!;
      const t0 = performance.now();
      const op = await first!.mintJoinToken(name);
      const t1 = performance.now();
      const m = op.metadata ?? {};
      const token = encodeJoinToken({ serverName: name, fingerprint: String(m.fingerprint), addresses: (m.addresses as string[]) ?? [], secret: String(m.secret), expiresAt: String(m.expiresAt) });
      await joiner.joinCluster({ serverName: name, serverAddress: lab.address(name), clusterAddress: lab.address(names[0]!), clusterCertificate: certificate, token, memberConfig: [] });
      joins.push({ mintMs: round(t1 - t0), joinMs: round(performance.now() - t1) });
    }
    const done = await goal;
    return { ms: done - started, joins };
  } finally {
    for (const c of clients) c.close();
  }
}

function specFor(lab: FleetLab, names: string[], mode: Mode): string {
  const extra = mode === "converged" ? { server_settings: { config: SETTINGS }, storage_pools: { [POOL.name]: { driver: POOL.driver } }, networks: { [NETWORK.name]: { type: NETWORK.type, config: NETWORK.config } } } : {};
  return lab.specYaml(CLUSTER, PASSWORD, names.map((name) => ({ name })), extra);
}

/** Through incus-fleet: agents already running and waiting for a coordinator that serves them, then the spec arrives at `startAt`. */
async function formWithFleet(lab: FleetLab, names: string[], mode: Mode, coordinators: number, startAt: number): Promise<{ ms: number }> {
  const env = { FLEET_LOG_LEVEL: "warn" };
  await lab.wipeStore();
  await Promise.all(Array.from({ length: coordinators }, (_, i) => lab.startCoordinator(env, i + 1)));
  try {
    // Fresh logs: "agent started" below must be this run's.
    for (const n of names) writeFileSync(join(lab.root, `agent-${n}.log`), "");
    for (const n of names) lab.startAgent(n, { cluster: CLUSTER, password: PASSWORD, env: { FLEET_LOG_LEVEL: "info" } });
    // Each agent has connected and asked once (and found nobody serving the cluster yet).
    await waitFor("every agent started", () => names.every((n) => lab.agentLog(n).includes('"msg":"agent started"')), 30_000, 10);
    await sleepUntil(startAt);
    // The clock starts when the spec is applied: the PUT has returned, the spec is stored and its keys derived.
    const applied = await lab.putSpec(specFor(lab, names, mode));
    const started = performance.now();
    if (applied.status !== 200) throw new Error(`spec refused: ${JSON.stringify(applied.body)}`);
    return { ms: (await until(lab, names, mode)) - started };
  } finally {
    for (const n of names) await lab.stopAgent(n, "SIGKILL");
    for (let i = coordinators; i >= 1; i--) await lab.stopCoordinator("SIGTERM", i);
  }
}

/**
 * Back to unclustered daemons with empty state. Returns when formation may
 * start: the same time after the daemons came up for every method, because
 * Incus does work of its own a few seconds after it starts, and a join that
 * runs into it is slower.
 */
async function resetMembers(lab: FleetLab, names: string[], settleMs: number): Promise<number> {
  for (const n of [...names].reverse()) await stopIncusd(lab.member(n), "kill");
  for (const n of names) await removeStateDir(lab.member(n).dir);
  // A killed incusd leaves the bridge it made in its namespace; the next run's would not be created over it.
  for (const n of names) await run("ip", ["-n", lab.member(n).host.namespace, "link", "del", NETWORK.name], { allowFail: true });
  await Promise.all(names.map((n) => startIncusd(lab.member(n))));
  return performance.now() + settleMs;
}

async function sleepUntil(at: number): Promise<void> {
  const ms = at - performance.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

function range(values: number[]): [number, number] {
  return [round(Math.min(...values)), round(Math.max(...values))];
}

runBenchmark(async () => {
  const sizes = arg("sizes", "3,5,7").split(",").map(Number);
  const reps = Number(arg("reps", "5"));
  const settleMs = Number(arg("settle-ms", "3000"));
  const coordinators = Number(arg("coordinators", "1"));
  const modes = arg("modes", "formation,converged").split(",") as Mode[];
  const lab = await FleetLab.create({ slot: Number(arg("slot", "12")), prefix: arg("prefix", "bform"), hosts: Math.max(...sizes), clusters: [CLUSTER] });
  const results = new Map<string, { floor: number[]; fleet: number[]; fleet2: number[] }>();
  try {
    for (let rep = 1; rep <= reps; rep++) {
      for (const n of sizes) {
        const names = lab.members.slice(0, n).map((m) => m.name);
        for (const mode of modes) {
          await sleepUntil(await resetMembers(lab, names, settleMs));
          const floor = await formDirectly(lab, names, mode);
          const fleet = await formWithFleet(lab, names, mode, 1, await resetMembers(lab, names, settleMs));
          const two = coordinators > 1 && mode === "formation" ? await formWithFleet(lab, names, mode, coordinators, await resetMembers(lab, names, settleMs)) : null;
          const key = `${mode}/${n}`;
          const r = results.get(key) ?? { floor: [], fleet: [], fleet2: [] };
          r.floor.push(floor.ms);
          r.fleet.push(fleet.ms);
          if (two) r.fleet2.push(two.ms);
          results.set(key, r);
          emit({ bench: "formation", mode, n, rep, floorMs: round(floor.ms), fleetMs: round(fleet.ms), ratio: round(fleet.ms / floor.ms, 3), ...(two ? { twoCoordinatorsMs: round(two.ms) } : {}), floorJoinsMs: floor.joins });
        }
      }
    }
    for (const [key, r] of results) {
      const [mode, n] = key.split("/");
      const floor = median(r.floor);
      const fleet = median(r.fleet);
      emit({
        bench: "formation-summary",
        mode,
        n: Number(n),
        runs: r.fleet.length,
        floorMedianMs: round(floor),
        floorRangeMs: range(r.floor),
        fleetMedianMs: round(fleet),
        fleetRangeMs: range(r.fleet),
        ratio: round(fleet / floor, 3),
        target: TARGET,
        met: fleet / floor <= TARGET,
        ...(r.fleet2.length ? { twoCoordinatorsMedianMs: round(median(r.fleet2)), twoToOneRatio: round(median(r.fleet2) / fleet, 3) } : {}),
      });
    }
  } finally {
    await lab.destroy();
  }
});
