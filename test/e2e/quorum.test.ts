import test from "ava";
import { startIncusd, stopIncusd } from "../../lab/incus-member.js";
import { eventLog, incusMembers, labFor, onlineMembers } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

const PASSWORD = "quorum-rules-password";
type ErrorBody = { error: { code: string; message: string } };

test("two of three voters stopped: further graceful removals are refused, the cluster is degraded with guidance, a forced removal of a dead member succeeds", async (t) => {
  const lab = await labFor(t, { ...LabSlot.quorumLoss, hosts: 5 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const names = ["node1", "node2", "node3", "node4", "node5"];
  await lab.putSpec(lab.specYaml("lab", PASSWORD, names.map((name) => ({ name }))));
  for (const n of names) lab.startAgent(n, { password: PASSWORD });
  await lab.waitForCluster("lab", "3 voters and 2 stand-by", (s) => onlineMembers(s).length === 5 && s.quorum?.voters === 3 && s.quorum.standby === 2, 120_000);

  const voters = (await incusMembers(lab, "node1")).filter((m) => m.roles.includes("database") && m.name !== "node1").map((m) => m.name);
  const [deadA, deadB] = voters as [string, string];
  // A graceful stop (systemctl stop incus) hands the votes over to stand-by members first.
  await stopIncusd(lab.member(deadA));
  await stopIncusd(lab.member(deadB));
  const survivors = names.filter((n) => n !== deadA && n !== deadB);

  const degraded = await lab.waitForCluster(
    "lab",
    "degraded with the stand-bys promoted",
    (s) =>
      s.health === "degraded" &&
      s.quorum?.onlineVoters === 3 &&
      [deadA, deadB].every((d) => s.memberList.find((m) => m.name === d)?.status === "Offline") &&
      s,
    90_000,
  );
  t.true(degraded.reasons.some((r) => r.code === "incus-down" && r.message.includes(deadA)));
  t.true(degraded.guidance.some((g) => /gone for good, remove (it|them) with force/.test(g)), degraded.guidance.join("\n"));
  await log.waitFor("cluster.degraded");

  const refused = await lab.api<ErrorBody>(`/v1/clusters/lab/members/${survivors[1]}`, { method: "DELETE" });
  t.is(refused.status, 409);
  t.is(refused.body.error.code, "FLEET_QUORUM_REFUSED");
  t.regex(refused.body.error.message, /would leave 2 online members; at least 3/);
  const gracefulDead = await lab.api<ErrorBody>(`/v1/clusters/lab/members/${deadA}`, { method: "DELETE" });
  t.is(gracefulDead.status, 409);
  t.regex(gracefulDead.body.error.message, /gone for good, remove it with force/);
  await log.waitFor("action.refused", survivors[1], 10_000);
  const specBefore = await lab.api<{ revision: number }>("/v1/spec");
  // The same removal asked for through the spec is refused at PUT, naming the member, and nothing is stored.
  const refusedSpec = await lab.putSpec(lab.specYaml("lab", PASSWORD, names.map((name) => ({ name, present: name !== survivors[1] }))));
  t.is(refusedSpec.status, 409, JSON.stringify(refusedSpec.body));
  t.is(refusedSpec.body.error?.code, "FLEET_QUORUM_REFUSED");
  t.deepEqual(refusedSpec.body.error?.problems?.map((p) => p.path), [`clusters.lab.members.${survivors[1]}`]);
  t.regex(refusedSpec.body.error!.problems![0]!.message, /would be refused: .*mark it force: true to override/);
  const spec = await lab.api<{ revision: number; spec: { clusters: { members: { name: string; present: boolean }[] }[] } }>("/v1/spec");
  t.is(spec.body.revision, specBefore.body.revision, "nothing stored");
  t.true(spec.body.spec.clusters[0]!.members.every((m) => m.present), "a refused removal leaves the spec as it was");

  const forced = await lab.api<{ forced: boolean; reasons: string[] }>(`/v1/clusters/lab/members/${deadA}?force=true`, { method: "DELETE" });
  t.is(forced.status, 202);
  t.true(forced.body.forced);
  const removed = await log.waitFor("member.removed", deadA, 90_000);
  t.true(removed.data.force as boolean);
  t.true(log.events.some((e) => e.kind === "action.forced" && e.node === deadA), "the override is on record");
  t.regex(lab.coordinatorLogs(), /forced removal: the spec overrides the safety rules/);
  t.false((await incusMembers(lab, survivors[0]!)).some((m) => m.name === deadA), "Incus no longer has the dead member");
  const status = await lab.waitForCluster("lab", "removal visible", (s) => s.recentActions.some((a) => a.kind === "member.removed") && s);
  t.true(status.recentActions.some((a) => a.kind === "action.refused"), "refusals are in the cluster's status too");
});

test("two of three voters killed: quorum is lost, the status says so with the recovery steps, destructive actions are refused; quorum returns with the daemons", async (t) => {
  const lab = await labFor(t, { ...LabSlot.quorumKill, hosts: 3 });
  await lab.startIncus();
  await lab.startCoordinator();
  const log = await eventLog(t, lab);
  const names = ["node1", "node2", "node3"];
  await lab.putSpec(lab.specYaml("lab", PASSWORD, names.map((name) => ({ name }))));
  for (const n of names) lab.startAgent(n, { password: PASSWORD });
  await lab.waitForCluster("lab", "3 voters", (s) => onlineMembers(s).length === 3 && s.quorum?.voters === 3, 120_000);

  await stopIncusd(lab.member("node2"), "kill");
  await stopIncusd(lab.member("node3"), "kill");
  const lost = await lab.waitForCluster("lab", "quorum lost", (s) => s.health === "quorum-lost" && s, 30_000);
  t.like(lost.quorum, { voters: 3, onlineVoters: 1, majority: 2, hasQuorum: false });
  t.true(lost.held);
  t.regex(lost.reasons[0]!.message, /quorum lost: 1 of 3 voters online, 2 needed/);
  const guidance = lost.guidance.join("\n");
  t.regex(guidance, /start Incus on them first: quorum returns by itself/);
  t.regex(guidance, /recover-from-quorum-loss/);
  t.regex(guidance, /most recent database \(node1\)/);
  await lab.waitForCluster("lab", "the published event", () => log.events.some((e) => e.kind === "cluster.degraded" && (e.data as { status?: string }).status === "quorum-lost"), 10_000);

  const evacuate = await lab.api<ErrorBody>("/v1/clusters/lab/members/node1/evacuate", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  t.is(evacuate.status, 409);
  t.regex(evacuate.body.error.message, /quorum lost/);
  const remove = await lab.api<ErrorBody>("/v1/clusters/lab/members/node3", { method: "DELETE" });
  t.is(remove.status, 409);
  t.regex(remove.body.error.message, /quorum lost: 1 of 3 voters online/);

  await Promise.all([startIncusd(lab.member("node2")), startIncusd(lab.member("node3"))]);
  await lab.waitForCluster("lab", "quorum back", (s) => s.quorum?.hasQuorum === true && onlineMembers(s).length === 3 && !s.held, 120_000);
  await log.waitFor("cluster.recovered", undefined, 60_000);
});
