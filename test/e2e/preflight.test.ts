import test from "ava";
import { blockPort } from "../../lab/network.js";
import { eventLog, labFor, onlineMembers } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

test("a member whose cluster port is blocked is held at preflight with the reason and the fix, and joins once it is reachable", async (t) => {
  const lab = await labFor(t, { ...LabSlot.preflight, hosts: 3 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const node3 = lab.member("node3").host;
  await blockPort(node3, 8443, "both");
  const names = ["node1", "node2", "node3"];
  await lab.putSpec(lab.specYaml("lab", "preflight-password", names.map((name) => ({ name }))));
  for (const n of names) lab.startAgent(n, { password: "preflight-password" });

  const outbound = await lab.waitForCluster("lab", "node3 held: cannot reach the cluster", (s) => {
    const m = s.memberList.find((x) => x.name === "node3");
    return onlineMembers(s).join() === "node1,node2" && m?.state === "held" && m;
  }, 120_000);
  t.regex(outbound.reason, /preflight failed: cannot reach node1 at .*:8443/);
  t.regex(outbound.reason, /fix: open TCP 8443/);
  t.like(outbound.preflight?.find((c) => c.name === "port"), { ok: false });

  // Now node3 reaches out but nobody reaches in: the check from the cluster's side catches it.
  await blockPort(node3, 8443, "inbound");
  const inbound = await lab.waitForCluster("lab", "node3 held: the cluster cannot reach it", (s) => {
    const m = s.memberList.find((x) => x.name === "node3");
    return m?.state === "held" && m.preflight?.some((c) => c.name === "reverse-port" && !c.ok) && m;
  }, 30_000);
  t.regex(inbound.reason, /node1 cannot reach node3 at .*:8443/);
  t.like(inbound.preflight?.find((c) => c.name === "port"), { ok: true });
  t.false(log.events.some((e) => e.kind === "join.started" && e.node === "node3"), "no token was spent on a member that cannot join");

  await blockPort(node3, 8443, "none");
  await log.waitFor("join.completed", "node3", 60_000);
  await lab.waitForCluster("lab", "three online", (s) => onlineMembers(s).length === 3, 30_000);
  t.true(log.events.some((e) => e.kind === "preflight.failed" && e.node === "node3"));
  t.true(log.events.some((e) => e.kind === "preflight.passed" && e.node === "node3"));
});
