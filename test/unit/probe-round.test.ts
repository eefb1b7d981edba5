import test from "ava";
import fc from "fast-check";
import { probeRound } from "../../agent/heartbeat.js";

test("at 50 members an agent probes 8 peers a round and covers all 49 in 7 rounds", (t) => {
  const peers = Array.from({ length: 49 }, (_, i) => `n${i}`);
  const seen = new Set<string>();
  let cursor = 0;
  for (let round = 0; round < 7; round++) {
    const r = probeRound(peers, cursor, 8);
    t.true(r.round.length <= 8);
    r.round.forEach((p) => seen.add(p));
    cursor = r.next;
  }
  t.is(seen.size, 49);
});

test("property: every peer is probed within ceil(peers / perRound) rounds, and never more than perRound at once", (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 16 }), fc.nat(100), (n, perRound, start) => {
      const peers = Array.from({ length: n }, (_, i) => i);
      const seen = new Set<number>();
      let cursor = start;
      const rounds = Math.ceil(n / perRound);
      for (let i = 0; i < rounds; i++) {
        const r = probeRound(peers, cursor, perRound);
        if (r.round.length > perRound) return false;
        r.round.forEach((p) => seen.add(p));
        cursor = r.next;
      }
      return seen.size === n;
    }),
  );
  t.pass();
});
