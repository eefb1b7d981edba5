import test from "ava";
import fc from "fast-check";
import { assessAction, majorityOf, quorumOf, type QuorumMember } from "../../shared/index.js";

const m = (name: string, status: string, ...roles: string[]): QuorumMember => ({ name, status, roles });

test("quorum arithmetic follows the seed's table for 3, 5 and 7 voters", (t) => {
  for (const [voters, majority, tolerated] of [
    [3, 2, 1],
    [5, 3, 2],
    [7, 4, 3],
  ] as const) {
    const members = Array.from({ length: voters }, (_, i) => m(`n${i}`, "Online", "database"));
    const q = quorumOf(members);
    t.is(q.majority, majority);
    t.is(q.failuresTolerated, tolerated);
    t.true(q.hasQuorum);
  }
});

test("only voters count; stand-by and spare members do not", (t) => {
  const q = quorumOf([
    m("a", "Online", "database-leader", "database"),
    m("b", "Online", "database"),
    m("c", "Offline", "database"),
    m("d", "Online", "database-standby"),
    m("e", "Online"),
  ]);
  t.like(q, { members: 5, online: 4, voters: 3, onlineVoters: 2, standby: 1, majority: 2, failuresTolerated: 0, hasQuorum: true, leader: "a" });
  const lost = quorumOf([m("a", "Online", "database"), m("b", "Offline", "database"), m("c", "Offline", "database")]);
  t.false(lost.hasQuorum);
  t.is(lost.failuresTolerated, 0);
});

test("removing a voter that would leave too few online voters is refused with numbers", (t) => {
  const members = [m("a", "Online", "database"), m("b", "Online", "database"), m("c", "Offline", "database"), m("d", "Online")];
  const v = assessAction(members, { kind: "remove", member: "b", force: false });
  t.false(v.allowed);
  t.true(v.reasons.some((r) => /1 of 2 voters online, fewer than the majority of 2/.test(r)), v.reasons.join("|"));
});

test("a cluster is not taken below 3 members unless forced", (t) => {
  const members = [m("a", "Online", "database"), m("b", "Online", "database"), m("c", "Online", "database")];
  const v = assessAction(members, { kind: "remove", member: "c", force: false });
  t.false(v.allowed);
  t.true(v.reasons.some((r) => /at least 3/.test(r)));
  const forced = assessAction(members, { kind: "remove", member: "c", force: true });
  t.true(forced.allowed);
  t.true(forced.forced);
  t.deepEqual(forced.reasons, v.reasons, "the overridden reasons are kept for the record");
});

test("a graceful removal of an offline member is refused; with force it goes", (t) => {
  const members = [m("a", "Online", "database"), m("b", "Online", "database"), m("c", "Online", "database"), m("d", "Offline"), m("e", "Online")];
  const graceful = assessAction(members, { kind: "remove", member: "d", force: false });
  t.false(graceful.allowed);
  t.regex(graceful.reasons.join(), /gone for good, remove it with force/);
  t.true(assessAction(members, { kind: "remove", member: "d", force: true }).allowed);
});

test("when quorum is lost every non-forced action is refused", (t) => {
  const members = [m("a", "Online", "database"), m("b", "Offline", "database"), m("c", "Offline", "database"), m("d", "Online"), m("e", "Online")];
  for (const kind of ["remove", "evacuate", "stop"] as const) {
    const v = assessAction(members, { kind, member: "d", force: false });
    t.false(v.allowed, kind);
    t.regex(v.reasons[0]!, /lost quorum: 1 of 3 voters online, a majority needs 2/);
  }
});

test("evacuating one member of three is ordinary maintenance: allowed", (t) => {
  const three = [m("a", "Online", "database-leader", "database"), m("b", "Online", "database"), m("c", "Online", "database")];
  const v = assessAction(three, { kind: "evacuate", member: "b", force: false });
  t.true(v.allowed, v.reasons.join());
  t.like(v.after, { onlineVoters: 2, majority: 2 });
});

test("evacuating a voter counts it offline: allowed with all voters up, refused with one already down", (t) => {
  const healthy = [m("a", "Online", "database"), m("b", "Online", "database"), m("c", "Online", "database"), m("d", "Online")];
  t.true(assessAction(healthy, { kind: "evacuate", member: "a", force: false }).allowed);
  const oneDown = [m("a", "Online", "database"), m("b", "Online", "database"), m("c", "Offline", "database"), m("d", "Online"), m("e", "Online")];
  t.false(assessAction(oneDown, { kind: "evacuate", member: "a", force: false }).allowed);
});

const arbitraryCluster = fc
  .array(
    fc.record({
      status: fc.constantFrom("Online", "Offline", "Evacuated"),
      role: fc.constantFrom("voter", "standby", "spare"),
    }),
    { minLength: 1, maxLength: 9 },
  )
  .map((xs) => xs.map((x, i) => m(`n${i}`, x.status, ...(x.role === "voter" ? ["database"] : x.role === "standby" ? ["database-standby"] : []))));

test("property: an allowed, unforced action never leaves fewer online voters than a majority", (t) => {
  fc.assert(
    fc.property(arbitraryCluster, fc.nat(), fc.constantFrom("remove", "evacuate", "stop"), (members, pick, kind) => {
      const target = members[pick % members.length]!;
      const v = assessAction(members, { kind: kind as "remove", member: target.name, force: false });
      if (!v.allowed) return true;
      return v.after.voters === 0 || v.after.onlineVoters >= majorityOf(v.after.voters);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test("property: force never hides the reasons the rules gave", (t) => {
  fc.assert(
    fc.property(arbitraryCluster, fc.nat(), (members, pick) => {
      const target = members[pick % members.length]!.name;
      const plain = assessAction(members, { kind: "remove", member: target, force: false });
      const forced = assessAction(members, { kind: "remove", member: target, force: true });
      return forced.allowed && (plain.allowed || forced.reasons.length > 0);
    }),
    { numRuns: 1000 },
  );
  t.pass();
});
