/**
 * Formation benchmark: real incusd members in network namespaces, for each
 * size N, the time from "spec applied, agents waiting" to "all N members
 * joined" through incus-fleet, and in the same run the floor: a minimal
 * driver making the same REST calls directly (bootstrap, then mint a token
 * and join, one member after another).
 *
 *   node dist/bench/formation.js --sizes 3,5,7 --reps 3
 *
 * Prints one JSON line per run and per size summary.
 */
import { connect } from "@nats-io/transport-node";
import { randomUUID } from "node:crypto";
import { FleetLab } from "../lab/fleet-lab.js";
import { removeStateDir, startIncusd, stopIncusd } from "../lab/incus-member.js";
import { waitFor } from "../lab/processes.js";
import { encodeJoinToken, Subject, type FleetEvent } from "../shared/index.js";
import { arg, emit, median, round, runBenchmark } from "./results.js";

/** The floor: the fewest REST calls that form the cluster, made back to back by one driver. */
async function formDirectly(lab: FleetLab, names: string[]): Promise<{ ms: number; joins: { mintMs: number; joinMs: number }[] }> {
  const clients = names.map((n) => lab.member(n).client());
  try {
    const [first, ...rest] = clients;
    const started = performance.now();
    await first!.patchServerConfig({ "core.https_address": lab.address(names[0]!) });
    await first!.enableCluster(names[0]!);
    const certificate = (await first!.server()).environment.certificate;
    const joins: { mintMs: number; joinMs: number }[] = [];
    for (const [i, joiner] of rest.entries()) {
      const name = names[i + 1]!;
      const t0 = performance.now();
      const op = await first!.mintJoinToken(name);
      const t1 = performance.now();
      const m = op.metadata ?? {};
      const token = encodeJoinToken({
        serverName: name,
        fingerprint: String(m.fingerprint),
        addresses: (m.addresses as string[]) ?? [],
        secret: String(m.secret),
        expiresAt: String(m.expiresAt),
      });
      await joiner.joinCluster({ serverName: name, serverAddress: lab.address(name), clusterAddress: lab.address(names[0]!), clusterCertificate: certificate, token, memberConfig: [] });
      joins.push({ mintMs: round(t1 - t0), joinMs: round(performance.now() - t1) });
    }
    return { ms: performance.now() - started, joins };
  } finally {
    for (const c of clients) c.close();
  }
}

/** Through incus-fleet: agents already running and asking, then the spec arrives at `startAt`. */
async function formWithFleet(lab: FleetLab, names: string[], cluster: string, startAt: number): Promise<{ ms: number; phases: Record<string, unknown> }> {
  await lab.startCoordinator({ FLEET_STORE_PREFIX: `b${randomUUID().slice(0, 8)}`, FLEET_LOG_LEVEL: "warn" });
  const nc = await connect({ servers: lab.nats.url });
  try {
    const asking = new Set<string>();
    const events: { at: number; event: FleetEvent }[] = [];
    nc.subscribe(Subject.challenge, { callback: (_e, m) => void asking.add(m.json<{ node: string }>().node) });
    nc.subscribe(Subject.eventsOf(cluster), { callback: (_e, m) => void events.push({ at: performance.now(), event: m.json<FleetEvent>() }) });
    for (const n of names) lab.startAgent(n, { cluster, password: "bench-password", env: { FLEET_LOG_LEVEL: "warn", FLEET_HEARTBEAT_INTERVAL_MS: arg("heartbeat-ms", "1000"), FLEET_PROBE_PEERS: arg("probe-peers", "8"), FLEET_VIEW_EVERY: arg("view-every", "3") } });
    await waitFor("every agent asking for a role", () => asking.size === names.length, 30_000, 10);
    await sleepUntil(startAt);
    // The clock starts when the spec is applied: the PUT has returned, the spec is stored and its keys derived.
    const applied = await lab.putSpec(lab.specYaml(cluster, "bench-password", names.map((name) => ({ name }))));
    const started = performance.now();
    if (applied.status !== 200) throw new Error(`spec refused: ${JSON.stringify(applied.body)}`);
    const joined = () => events.filter((e) => e.event.kind === "join.completed").length === names.length - 1 && events.some((e) => e.event.kind === "bootstrap.completed");
    await waitFor(`${names.length} members joined`, joined, 120_000, 2);
    const last = Math.max(...events.filter((e) => e.event.kind === "join.completed" || e.event.kind === "bootstrap.completed").map((e) => e.at));
    const at = (kind: string) => round((events.find((e) => e.event.kind === kind)?.at ?? started) - started);
    // Where a join's time goes: waiting for it to start after the previous one, and the join itself.
    const joins = events.filter((e) => e.event.kind === "join.started").map((s) => {
      const done = events.find((e) => e.event.kind === "join.completed" && e.event.node === s.event.node)!;
      const previous = events.filter((e) => (e.event.kind === "join.completed" || e.event.kind === "bootstrap.completed") && e.at <= s.at).pop()!;
      return { node: s.event.node, gapMs: round(s.at - previous.at), joinMs: round(done.at - s.at) };
    });
    return { ms: last - started, phases: { enrolled: at("node.enrolled"), bootstrapCompleted: at("bootstrap.completed"), firstJoinStarted: at("join.started"), joins } };
  } finally {
    await nc.close();
    for (const n of names) await lab.stopAgent(n, "SIGKILL");
    await lab.stopCoordinator("SIGTERM");
  }
}

/**
 * Back to unclustered daemons with empty state. Returns when formation may
 * start: the same time after the daemons came up for both methods, because
 * Incus does work of its own a few seconds after it starts, and a join that
 * runs into it is slower (measured here: whichever join lands there takes
 * about 200 ms longer).
 */
async function resetMembers(lab: FleetLab, names: string[], settleMs: number): Promise<number> {
  for (const n of [...names].reverse()) await stopIncusd(lab.member(n), "kill");
  for (const n of names) await removeStateDir(lab.member(n).dir);
  await lab.startIncus(names);
  return performance.now() + settleMs;
}

async function sleepUntil(at: number): Promise<void> {
  const ms = at - performance.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

runBenchmark(async () => {
  const sizes = arg("sizes", "3,5,7").split(",").map(Number);
  const reps = Number(arg("reps", "3"));
  const slot = Number(arg("slot", "12"));
  const settleMs = Number(arg("settle-ms", "3000"));
  const lab = await FleetLab.create({ slot, prefix: arg("prefix", "bform"), hosts: Math.max(...sizes) });
  const results = new Map<number, { floor: number[]; fleet: number[] }>();
  try {
    for (let rep = 1; rep <= reps; rep++) {
      for (const n of sizes) {
        const names = lab.members.slice(0, n).map((m) => m.name);
        await sleepUntil(await resetMembers(lab, names, settleMs));
        const floor = await formDirectly(lab, names);
        const floorMs = floor.ms;
        const fleet = await formWithFleet(lab, names, `f${rep}n${n}`, await resetMembers(lab, names, settleMs));
        const r = results.get(n) ?? { floor: [], fleet: [] };
        r.floor.push(floorMs);
        r.fleet.push(fleet.ms);
        results.set(n, r);
        emit({ bench: "formation", n, rep, floorMs: round(floorMs), fleetMs: round(fleet.ms), ratio: round(fleet.ms / floorMs, 3), floorJoinsMs: floor.joins, fleetPhasesMs: fleet.phases });
      }
    }
    for (const [n, r] of results) {
      const floor = median(r.floor);
      const fleet = median(r.fleet);
      emit({
        bench: "formation-summary",
        n,
        runs: r.fleet.length,
        floorMedianMs: round(floor),
        floorRangeMs: [round(Math.min(...r.floor)), round(Math.max(...r.floor))],
        fleetMedianMs: round(fleet),
        fleetRangeMs: [round(Math.min(...r.fleet)), round(Math.max(...r.fleet))],
        ratio: round(fleet / floor, 3),
        target: 1.15,
        met: fleet / floor <= 1.15,
      });
    }
  } finally {
    await lab.destroy();
  }
});

