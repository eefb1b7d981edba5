import test from "ava";
import { eventLog, inOrder, labFor, onlineMembers, socketEvents } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

const slowKey = (l: { from: string; to: string }) => `${l.from}>${l.to}`;

test("80 ms of delay on one member's link flags exactly the links to and from that member", async (t) => {
  const lab = await labFor(t, { ...LabSlot.latency, hosts: 3, delayedHosts: [3] });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const stream = await socketEvents(t, lab, "lab");
  const names = ["node1", "node2", "node3"];
  await lab.putSpec(lab.specYaml("lab", "latency-password", names.map((name) => ({ name }))));
  for (const n of names) lab.startAgent(n, { password: "latency-password" });
  const healthy = await lab.waitForCluster("lab", "healthy, all links measured", (s) => onlineMembers(s).length === 3 && s.health === "healthy" && s.memberList.every((m) => m.worstLinkMs !== null) && s, 120_000);
  t.deepEqual(healthy.links, [], "no link flagged");
  t.true(healthy.memberList.every((m) => m.worstLinkMs! < 50), JSON.stringify(healthy.memberList.map((m) => m.worstLinkMs)));

  lab.delays.get("node3")!.setDelay(40);
  const expected = ["node1>node3", "node2>node3", "node3>node1", "node3>node2"];
  const slow = await lab.waitForCluster("lab", "the four links of node3 slow", (s) => {
    const flagged = s.links.filter((l) => l.state === "slow").map(slowKey).sort();
    return flagged.join() === expected.join() && s;
  }, 30_000);
  for (const l of slow.links) t.true(l.rttMs! >= 70 && l.rttMs! < 200, `${slowKey(l)} measured ${l.rttMs} ms`);
  t.true(slow.memberList.every((m) => m.worstLinkMs! >= 70), "every member has a slow link: the one to node3, or node3's own");
  t.true(slow.reasons.some((r) => r.code === "link-slow"));
  await lab.waitForCluster("lab", "events published", () => log.events.filter((e) => e.kind === "link.slow").length === 4, 10_000);
  t.deepEqual(log.events.filter((e) => e.kind === "link.slow").map((e) => `${e.data.from}>${e.data.to}`).sort(), expected, "exactly those links, once each");

  lab.delays.get("node3")!.setDelay(0);
  await lab.waitForCluster("lab", "links back to normal", (s) => s.links.length === 0, 30_000);
  await lab.waitForCluster("lab", "recoveries published", () => log.events.filter((e) => e.kind === "link.recovered").length === 4, 10_000);
  t.true(inOrder(stream, [{ kind: "spec.applied" }, { kind: "bootstrap.completed" }, { kind: "link.slow" }, { kind: "link.recovered" }]), stream.map((e) => e.kind).join(", "));
  t.deepEqual(stream.map((e) => e.seq), [...stream.map((e) => e.seq)].sort((a, b) => a - b));
});
