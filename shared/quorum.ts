/**
 * Quorum arithmetic over the roles and statuses the members report. Incus
 * keeps its database in Raft: only voters count, and the database answers
 * while a majority of the voters is online.
 */

export const Role = {
  Leader: "database-leader",
  Voter: "database",
  Standby: "database-standby",
} as const;

export interface QuorumMember {
  name: string;
  status: string;
  roles: string[];
}

export interface Quorum {
  members: number;
  online: number;
  voters: number;
  onlineVoters: number;
  standby: number;
  majority: number;
  /** How many more voters may fail before the database stops answering. */
  failuresTolerated: number;
  hasQuorum: boolean;
  leader: string | null;
}

/** An evacuated or version-blocked member still runs its daemon and still votes. */
export function isOnline(status: string): boolean {
  return status === "Online" || status === "Evacuated" || status === "Blocked";
}

export function isVoter(member: QuorumMember): boolean {
  return member.roles.includes(Role.Voter) || member.roles.includes(Role.Leader);
}

export function majorityOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

export function quorumOf(members: readonly QuorumMember[]): Quorum {
  let online = 0;
  let voters = 0;
  let onlineVoters = 0;
  let standby = 0;
  let leader: string | null = null;
  for (const m of members) {
    const up = isOnline(m.status);
    if (up) online += 1;
    if (isVoter(m)) {
      voters += 1;
      if (up) onlineVoters += 1;
    } else if (m.roles.includes(Role.Standby)) {
      standby += 1;
    }
    if (m.roles.includes(Role.Leader)) leader = m.name;
  }
  const majority = majorityOf(voters);
  const hasQuorum = voters > 0 && onlineVoters >= majority;
  return {
    members: members.length,
    online,
    voters,
    onlineVoters,
    standby,
    majority,
    failuresTolerated: hasQuorum ? onlineVoters - majority : 0,
    hasQuorum,
    leader,
  };
}

export type MembershipAction =
  | { kind: "remove"; member: string; force: boolean }
  | { kind: "evacuate"; member: string; force: boolean }
  | { kind: "stop"; member: string; force: boolean };

export interface Verdict {
  allowed: boolean;
  /** True when the rules said no and `force` overrode them. */
  forced: boolean;
  /** Why the rules said no, in words an operator acts on. Kept when forced. */
  reasons: string[];
  before: Quorum;
  /** The voters and members the action leaves, if it goes ahead. */
  after: Quorum;
}

/** The fewest online members that still keep a majority through one failure. */
export const MIN_HA_MEMBERS = 3;

function projectAfter(members: readonly QuorumMember[], action: MembershipAction): QuorumMember[] {
  if (action.kind === "remove") return members.filter((m) => m.name !== action.member);
  // A member being evacuated is about to go down for maintenance: count it offline.
  return members.map((m) => (m.name === action.member ? { ...m, status: "Offline" } : m));
}

/**
 * Decides whether a removal, evacuation or planned stop keeps the cluster
 * safe: enough online voters for a majority for every action, and for a
 * removal at least three members (three online, when three were). `force`
 * lets an operator override, and the reasons are kept.
 */
export function assessAction(members: readonly QuorumMember[], action: MembershipAction): Verdict {
  const before = quorumOf(members);
  const target = members.find((m) => m.name === action.member);
  const reasons: string[] = [];
  const verb = action.kind === "remove" ? "removing" : action.kind === "evacuate" ? "evacuating" : "stopping";

  if (!target) {
    // Nothing to weigh: the member is not in the cluster (already gone).
    return { allowed: true, forced: false, reasons, before, after: before };
  }
  const after = quorumOf(projectAfter(members, action));

  if (!before.hasQuorum) {
    reasons.push(
      `the cluster has lost quorum: ${before.onlineVoters} of ${before.voters} voters online, a majority needs ${before.majority}`,
    );
  } else if (after.voters > 0 && after.onlineVoters < after.majority) {
    reasons.push(
      `${verb} ${action.member} would leave ${after.onlineVoters} of ${after.voters} voters online, fewer than the majority of ${after.majority} the database needs`,
    );
  }
  const targetOnline = isOnline(target.status);
  // Evacuating or stopping one member of three is ordinary rolling maintenance; only removals shrink the cluster.
  if (action.kind === "remove") {
    if (targetOnline && before.online >= MIN_HA_MEMBERS && after.online < MIN_HA_MEMBERS) {
      reasons.push(`${verb} ${action.member} would leave ${after.online} online members; at least ${MIN_HA_MEMBERS} are needed to survive one more failure`);
    } else if (after.members < MIN_HA_MEMBERS && before.members >= MIN_HA_MEMBERS) {
      reasons.push(`${verb} ${action.member} would take the cluster to ${after.members} members, below the ${MIN_HA_MEMBERS} needed for high availability`);
    }
    if (!targetOnline) {
      reasons.push(`${action.member} is ${target.status.toLowerCase()}; a graceful removal needs it online. If it is gone for good, remove it with force`);
    }
  }
  if (reasons.length === 0) return { allowed: true, forced: false, reasons, before, after };
  return { allowed: action.force, forced: action.force, reasons, before, after };
}
