import { createServer } from "node:net";
import { parseAddress, type PreflightCheck, type PreflightReport } from "../shared/index.js";
import type { Probe } from "./tcp-probe.js";

export interface PreflightInput {
  target: { node: string; address: string };
  expectedVersion: string | undefined;
  ownVersion: string | undefined;
  clockOffsetMs: number | null;
  limits: { latencyMs: number; clockOffsetMs: number };
}

/**
 * The "node won't join" checklist, run by the joining host before it spends
 * a token: can it reach the cluster port, is the link fast enough, does it
 * run the same Incus, is its clock in step.
 */
export async function runPreflight(probe: Probe, input: PreflightInput): Promise<PreflightReport> {
  const checks: PreflightCheck[] = [];
  const { target, limits } = input;
  const reached = await probe(target.address, 3, 1_000);
  if (!reached.reachable) {
    checks.push({
      name: "port",
      ok: false,
      detail: `cannot reach ${target.node} at ${target.address}: ${reached.error ?? "unreachable"}`,
      fix: `open TCP ${target.address.split(":").pop()} between members (nft/iptables on both hosts) and check the route to ${target.address}`,
    });
  } else {
    checks.push({ name: "port", ok: true, detail: `${target.address} reachable` });
    const rtt = reached.rttMs ?? 0;
    checks.push(
      rtt <= limits.latencyMs
        ? { name: "latency", ok: true, detail: `${rtt.toFixed(1)} ms to ${target.node}` }
        : {
            name: "latency",
            ok: false,
            detail: `${rtt.toFixed(1)} ms to ${target.node}, over the ${limits.latencyMs} ms limit`,
            fix: "Incus members need a low-latency link (under 50 ms); fix the path or place the member nearer",
          },
    );
  }
  if (input.expectedVersion) {
    checks.push(
      input.ownVersion === input.expectedVersion
        ? { name: "version", ok: true, detail: `Incus ${input.ownVersion}, as the cluster` }
        : {
            name: "version",
            ok: false,
            detail: `Incus ${input.ownVersion ?? "unknown"} here, the cluster runs ${input.expectedVersion}`,
            fix: `install Incus ${input.expectedVersion} on this host before it joins`,
          },
    );
  }
  if (input.clockOffsetMs === null) {
    checks.push({ name: "clock", ok: true, detail: "clock offset not measured yet" });
  } else {
    const off = Math.abs(input.clockOffsetMs);
    checks.push(
      off <= limits.clockOffsetMs
        ? { name: "clock", ok: true, detail: `clock within ${off.toFixed(0)} ms of the coordinator` }
        : {
            name: "clock",
            ok: false,
            detail: `clock is ${off.toFixed(0)} ms off the coordinator, over the ${limits.clockOffsetMs} ms limit`,
            fix: "synchronise time (systemd-timesyncd or chrony) on every member",
          },
    );
  }
  return { target: target.address, at: new Date().toISOString(), checks };
}

export interface PortStandIn {
  /** Why the stand-in could not listen, when that says something is wrong with this host's address. */
  problem: PreflightCheck | null;
  close(): Promise<void>;
}

/**
 * Listens on this member's cluster address while it waits to join, so that
 * the cluster can check it can reach the member back before a token is
 * spent. Incus itself is left alone until the join: setting its address
 * early measurably slows the join down. If Incus already listens there, it
 * answers the check itself.
 */
export async function standInOnClusterPort(address: string): Promise<PortStandIn> {
  const target = parseAddress(address);
  if (!target) return { problem: { name: "port", ok: false, detail: `'${address}' is not an address` }, close: async () => undefined };
  const server = createServer((socket) => socket.destroy());
  const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    server.once("error", resolve);
    server.listen({ host: target.host, port: target.port, exclusive: true }, () => resolve(null));
  });
  const close = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  if (!error || error.code === "EADDRINUSE") return { problem: null, close };
  return {
    problem: {
      name: "port",
      ok: false,
      detail: `cannot listen on ${address}: ${error.code ?? error.message}`,
      fix: error.code === "EADDRNOTAVAIL" ? `${target.host} is not an address of this host: fix node.address in the agent's configuration` : `check what holds port ${target.port} on this host`,
    },
    close,
  };
}
