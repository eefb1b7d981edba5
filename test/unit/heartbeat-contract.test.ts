import test from "ava";
import { Heartbeat, WireCodec } from "../../shared/index.js";

const codec = new WireCodec("Heartbeat", Heartbeat);

const heartbeat = (peer: Record<string, unknown>) => ({
  cluster: "c",
  node: "node1",
  instance: "00000000-0000-0000-0000-000000000000",
  seq: 7,
  sentAt: 1_000,
  intervalMs: 1_000,
  incus: { observedAt: 1_000, reachable: true, clustered: true, version: "6.0.4" },
  pools: [],
  instances: { total: 0, running: 0 },
  latency: { natsMs: 1, peers: [{ node: "node2", address: "192.0.2.12:8443", rttMs: 0.4, ...peer }] },
  clock: { offsetMs: 2, rttMs: 1 },
});

test("a heartbeat's probes need no time of their own, and the time earlier agents send is still accepted", (t) => {
  t.true(codec.decodeText(JSON.stringify(heartbeat({}))).ok, "as agents send it now");
  t.true(codec.decodeText(JSON.stringify(heartbeat({ at: 1_000 }))).ok, "as earlier agents send it");
  const bad = codec.decodeText(JSON.stringify(heartbeat({ at: "yesterday" })));
  t.false(bad.ok);
  t.regex(bad.ok ? "" : bad.reason, /latency\.peers\[0\]\.at/);
});
