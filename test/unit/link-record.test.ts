import test from "ava";
import { LINK_SAMPLES, LinkRecord } from "../../coordinator/health/link-record.js";
import type { LinkState } from "../../coordinator/health/health-types.js";

type Probe = number | "timeout" | "refused";

function recordOf(probes: Probe[]): LinkRecord {
  const link = new LinkRecord("b", "198.51.100.3:8443");
  probes.forEach((p, i) => {
    if (p === "timeout") link.add(null, "timeout", 1_000 * (i + 1));
    else if (p === "refused") link.add(null, "ECONNREFUSED", 1_000 * (i + 1));
    else link.add(p, undefined, 1_000 * (i + 1));
  });
  return link;
}

const cases: { name: string; probes: Probe[]; before: LinkState; state: LinkState; latest: LinkState }[] = [
  { name: "fewer probes than asked for: the state before stands", probes: [80, 80], before: "ok", state: "ok", latest: "slow" },
  { name: "three slow in a row make the link slow", probes: [0.3, 80, 80, 80], before: "ok", state: "slow", latest: "slow" },
  { name: "a fine probe among slow ones keeps the state before", probes: [80, 0.3, 80], before: "slow", state: "slow", latest: "slow" },
  { name: "three fine ones clear a slow link", probes: [80, 80, 0.3, 0.3, 0.3], before: "slow", state: "ok", latest: "ok" },
  { name: "three unanswered in a row: down", probes: ["timeout", "timeout", "timeout"], before: "ok", state: "down", latest: "down" },
  { name: "a refused connection reached the peer: the link works", probes: ["refused", "refused", "refused"], before: "down", state: "ok", latest: "ok" },
  { name: "exactly the threshold is not slow", probes: [50, 50, 50], before: "ok", state: "ok", latest: "ok" },
  { name: "just over the threshold is", probes: [50.001, 50.001, 50.001], before: "ok", state: "slow", latest: "slow" },
  { name: "only the newest probes count once the ring has wrapped", probes: [80, 80, 80, 80, 80, 80, 80, 0.3, 0.3, 0.3], before: "slow", state: "ok", latest: "ok" },
  { name: "after wrapping, old fine probes do not mask new slow ones", probes: [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 80, 80, 80], before: "ok", state: "slow", latest: "slow" },
];

for (const c of cases) {
  test(`link state: ${c.name}`, (t) => {
    const link = recordOf(c.probes);
    t.is(link.state(3, 50, c.before), c.state);
    t.is(link.latestState(50), c.latest);
  });
}

test("a link reports its latest probe: the round trip to the microsecond, or none and the error", (t) => {
  const link = recordOf([12.3456]);
  t.is(link.rttMs, 12.346);
  t.is(link.error, undefined);
  t.is(link.at, 1_000);
  link.add(null, "timeout", 2_000);
  t.is(link.rttMs, null);
  t.is(link.error, "timeout");
  t.is(link.at, 2_000);
  link.add(0.25, undefined, 3_000);
  t.is(link.rttMs, 0.25);
  t.is(link.error, undefined, "a probe answered clears the last error");
});

test("more probes asked for than a link keeps never decide anything", (t) => {
  const link = recordOf(Array<Probe>(LINK_SAMPLES * 3).fill(80));
  t.is(link.state(LINK_SAMPLES, 50, "ok"), "slow");
  t.is(link.state(LINK_SAMPLES + 1, 50, "ok"), "ok");
});
