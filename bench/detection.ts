/**
 * Detection benchmark, with real incusd members in network namespaces: the
 * time from killing an agent to the coordinator's `agent.lost`, and from
 * stopping incusd to `incus.lost`, measured beside Incus's own detection of
 * the stopped member (its status turning Offline, governed by
 * cluster.offline_threshold, 20 s by default).
 *
 *   node dist/bench/detection.js --reps 3
 */
import { readFileSync } from "node:fs";
import { connect, nkeyAuthenticator } from "@nats-io/transport-node";
import { FleetLab } from "../lab/fleet-lab.js";
import { startIncusd, stopIncusd } from "../lab/incus-member.js";
import { waitFor } from "../lab/processes.js";
import { Subject, type FleetEvent } from "../shared/index.js";
import { arg, emit, median, round, runBenchmark } from "./results.js";

runBenchmark(async () => {
  const reps = Number(arg("reps", "3"));
  const intervalMs = Number(arg("heartbeat-ms", "1000"));
  const withIncus = arg("incus-offline", "yes") === "yes";
  const lab = await FleetLab.create({ slot: Number(arg("slot", "13")), prefix: arg("prefix", "bdet"), hosts: 3, heartbeatIntervalMs: intervalMs });
  try {
    const names = ["node1", "node2", "node3"];
    await lab.startIncus();
    await lab.startCoordinator({ FLEET_LOG_LEVEL: "warn" });
    // Events are all the benchmark reads: the set-up's read-only observer credential is enough.
    const nc = await connect({ servers: lab.nats.urls, authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(lab.nats.setup.observer.nkeyFile, "utf8").trim())) });
    const events: { at: number; event: FleetEvent }[] = [];
    nc.subscribe(Subject.eventsAll, { callback: (_e, m) => void events.push({ at: performance.now(), event: m.json<FleetEvent>() }) });
    await lab.putSpec(lab.specYaml("lab", "detection-password", names.map((name) => ({ name }))));
    for (const n of names) lab.startAgent(n, { password: "detection-password", env: { FLEET_LOG_LEVEL: "warn" } });
    await lab.waitForCluster("lab", "healthy", (s) => s.memberList.filter((m) => m.status === "Online").length === 3 && s.health === "healthy", 120_000);
    const next = (kind: string, node: string, after: number) => waitFor(`${kind} of ${node}`, () => events.find((e) => e.at > after && e.event.kind === kind && e.event.node === node), 60_000, 5);

    const agentMs: number[] = [];
    for (let rep = 1; rep <= reps; rep++) {
      await lab.stopAgent("node2", "SIGKILL");
      const killed = performance.now();
      const lost = await next("agent.lost", "node2", killed);
      agentMs.push(lost.at - killed);
      emit({ bench: "detection", scenario: "agent-killed", rep, detectedMs: round(lost.at - killed), heartbeatIntervalMs: intervalMs });
      lab.startAgent("node2", { password: "detection-password", env: { FLEET_LOG_LEVEL: "warn" } });
      await next("agent.returned", "node2", killed);
    }

    const daemonMs: number[] = [];
    const incusMs: number[] = [];
    const observer = lab.member("node1").client();
    for (let rep = 1; rep <= reps; rep++) {
      // Timed from the SIGTERM: incusd stops answering as its shutdown begins, which may be before its process is gone.
      const stopped = performance.now();
      await stopIncusd(lab.member("node3"));
      const lost = await next("incus.lost", "node3", stopped);
      daemonMs.push(lost.at - stopped);
      let incusOfflineMs: number | null = null;
      if (withIncus) {
        await waitFor("Incus to mark node3 offline", async () => (await observer.members({ timeoutMs: 2_000 })).find((m) => m.server_name === "node3")?.status === "Offline", 120_000, 100);
        incusOfflineMs = performance.now() - stopped;
        incusMs.push(incusOfflineMs);
      }
      emit({ bench: "detection", scenario: "incusd-stopped", rep, detectedMs: round(lost.at - stopped), incusOfflineMs: incusOfflineMs === null ? null : round(incusOfflineMs), heartbeatIntervalMs: intervalMs });
      await startIncusd(lab.member("node3"));
      await next("incus.returned", "node3", stopped);
      await waitFor("node3 online again", async () => (await observer.members({ timeoutMs: 2_000 })).find((m) => m.server_name === "node3")?.status === "Online", 120_000, 200);
    }
    observer.close();
    const offlineThreshold = (await lab.member("node1").client().server()).config["cluster.offline_threshold"] ?? "20 (default)";
    emit({
      bench: "detection-summary",
      heartbeatIntervalMs: intervalMs,
      agentKilledMedianMs: round(median(agentMs)),
      agentKilledRangeMs: [round(Math.min(...agentMs)), round(Math.max(...agentMs))],
      incusdStoppedMedianMs: round(median(daemonMs)),
      incusdStoppedRangeMs: [round(Math.min(...daemonMs)), round(Math.max(...daemonMs))],
      incusOwnOfflineMedianMs: incusMs.length ? round(median(incusMs)) : null,
      incusOfflineThresholdSeconds: offlineThreshold,
      fasterThanIncusBy: incusMs.length ? round(median(incusMs) / median(daemonMs), 1) : null,
    });
    await nc.close();
  } finally {
    await lab.destroy();
  }
});
