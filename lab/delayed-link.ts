import { createSocket, type Socket } from "node:dgram";
import { run, startDaemon, stopDaemon, waitFor, type Daemon } from "./processes.js";

/**
 * A host's cluster link that can be made slow. This kernel has no netem, so
 * the delay is made in user space on the real path: two TAP devices (one on
 * the bridge, one inside the host's namespace as its eth0), each bridged by
 * socat to a UDP port, and a relay in between that holds every frame for the
 * set delay before passing it on. Every packet of the host's cluster
 * traffic, TCP handshakes included, crosses it.
 */
export class DelayedLink {
  private delayMs = 0;
  private closed = false;
  private constructor(
    private readonly daemons: Daemon[],
    private readonly sockets: Socket[],
  ) {}

  static async create(options: { bridgeTap: string; hostTap: string; bridge: string; namespace: string; address: string; logDir: string }): Promise<DelayedLink> {
    const bind = async (): Promise<Socket> => {
      const s = createSocket("udp4");
      await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", () => resolve()));
      return s;
    };
    const [relayBridge, relayHost, probeA, probeB] = await Promise.all([bind(), bind(), bind(), bind()]);
    // Two more ports for socat to bind; taken from the kernel, released just before socat binds them.
    const socatBridgePort = probeA.address().port;
    const socatHostPort = probeB.address().port;
    probeA.close();
    probeB.close();
    const socat = (tap: string, relayPort: number, ownPort: number) =>
      startDaemon("socat", [`TUN,tun-type=tap,tun-name=${tap},iff-no-pi,iff-up`, `UDP-DATAGRAM:127.0.0.1:${relayPort},bind=127.0.0.1:${ownPort}`], {
        log: `${options.logDir}/socat-${tap}.log`,
      });
    const daemons = [socat(options.bridgeTap, relayBridge.address().port, socatBridgePort), socat(options.hostTap, relayHost.address().port, socatHostPort)];
    const link = new DelayedLink(daemons, [relayBridge, relayHost]);
    try {
      for (const tap of [options.bridgeTap, options.hostTap]) {
        await waitFor(`TAP device ${tap}`, async () => (await run("ip", ["link", "show", tap], { allowFail: true })).code === 0, 5_000, 20);
      }
      await run("ip", ["link", "set", options.bridgeTap, "master", options.bridge, "up"]);
      await run("ip", ["link", "set", options.hostTap, "netns", options.namespace]);
      await run("ip", ["-n", options.namespace, "link", "set", options.hostTap, "name", "eth0"]);
      await run("ip", ["-n", options.namespace, "addr", "add", options.address, "dev", "eth0"]);
      await run("ip", ["-n", options.namespace, "link", "set", "eth0", "up"]);
    } catch (err) {
      await link.close();
      throw err;
    }
    const forward = (from: Socket, to: Socket, port: number) => {
      const send = (frame: Buffer) => {
        if (!link.closed) to.send(frame, port, "127.0.0.1");
      };
      from.on("message", (frame) => (link.delayMs === 0 ? send(frame) : setTimeout(send, link.delayMs, frame)));
    };
    forward(relayBridge, relayHost, socatHostPort);
    forward(relayHost, relayBridge, socatBridgePort);
    return link;
  }

  /** Delay each way; a round trip takes twice this longer. */
  setDelay(oneWayMs: number): void {
    this.delayMs = oneWayMs;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets) s.close();
    await Promise.all(this.daemons.map((d) => stopDaemon(d, "SIGTERM", 2_000)));
  }
}
