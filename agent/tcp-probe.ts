import { connect } from "node:net";
import { parseAddress } from "../shared/index.js";

export interface ProbeResult {
  reachable: boolean;
  /** TCP connect round trip (SYN to SYN-ACK, as the kernel completes it). */
  rttMs: number | null;
  error?: string;
}

/** One latency probe of a cluster address: `probeTcp` on a host. */
export type Probe = (address: string, attempts: number, timeoutMs: number) => Promise<ProbeResult>;

function connectOnce(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const socket = connect({ host, port });
    const done = (result: ProbeResult) => {
      socket.removeAllListeners();
      socket.on("error", () => {});
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done({ reachable: false, rttMs: null, error: `no answer within ${timeoutMs} ms (filtered or unrouted)` }));
    socket.once("connect", () => done({ reachable: true, rttMs: Number(process.hrtime.bigint() - started) / 1e6 }));
    socket.once("error", (err: NodeJS.ErrnoException) => done({ reachable: false, rttMs: null, error: err.code ?? err.message }));
  });
}

/** Connects a few times and keeps the fastest round trip, which is the one least disturbed by scheduling. */
export async function probeTcp(address: string, attempts = 1, timeoutMs = 1_000): Promise<ProbeResult> {
  const target = parseAddress(address);
  if (!target) return { reachable: false, rttMs: null, error: `'${address}' is not an address` };
  let best: ProbeResult | null = null;
  for (let i = 0; i < attempts; i++) {
    const r = await connectOnce(target.host, target.port, timeoutMs);
    if (!r.reachable) return r;
    if (!best || (r.rttMs ?? Infinity) < (best.rttMs ?? Infinity)) best = r;
  }
  return best!;
}
