import type { MemberView, Quorum } from "../../shared/index.js";
import { isOnline } from "../../shared/index.js";

export interface GuidanceInput {
  cluster: string;
  quorum: Quorum | null;
  members: (MemberView & { effectiveStatus: string; safetyStatus: string })[] | null;
  held: boolean;
  splits: string[];
}

/**
 * What an operator should do, in order, when a cluster lost quorum or split.
 * These are the troubleshooting steps of the Incus documentation, filled in
 * with this cluster's member names.
 */
export function guidanceFor({ cluster, quorum, members, splits }: GuidanceInput): string[] {
  if (!quorum || !members) return [];
  const voters = members.filter((m) => m.roles.includes("database") || m.roles.includes("database-leader"));
  const downVoters = voters.filter((m) => !isOnline(m.effectiveStatus)).map((m) => m.name);
  const upVoters = voters.filter((m) => isOnline(m.effectiveStatus)).map((m) => m.name);
  if (!quorum.hasQuorum) {
    return [
      `Quorum is lost: ${quorum.onlineVoters} of ${quorum.voters} database voters are online and ${quorum.majority} are needed; the cluster database does not answer.`,
      `If the offline voters (${downVoters.join(", ") || "none"}) can come back, start Incus on them first: quorum returns by itself and nothing else is needed.`,
      `If they are gone for good: stop Incus on every surviving member (systemctl stop incus.service incus.socket).`,
      `On the surviving voter with the most recent database (${upVoters[0] ?? "a surviving voter"}), run 'incus admin cluster recover-from-quorum-loss', then start Incus there.`,
      `Remove the dead members: mark them 'present: false' with 'force: true' in the spec of ${cluster} (or run 'incus cluster remove --force <name>').`,
      `Start Incus on the other survivors; any that do not rejoin, wipe and let incus-fleet join them again.`,
    ];
  }
  if (splits.length > 0) {
    return [
      `The members of ${cluster} do not see the same cluster: ${splits.join("; ")}.`,
      `Destructive actions (removal, evacuation) are held until every member sees the same cluster again.`,
      `Restore the network between members (TCP ${"8443"} both ways). If a minority stays cut off, stop Incus on the minority, let the majority continue, then bring the minority back or re-join it.`,
    ];
  }
  const down = members.filter((m) => !isOnline(m.effectiveStatus)).map((m) => m.name);
  if (down.length === 0) return [];
  const steps = [
    `${down.join(", ")} ${down.length === 1 ? "is" : "are"} offline. If ${down.length === 1 ? "it" : "they"} can come back, start Incus there (systemctl start incus) and check the agent (systemctl status incus-fleet-agent).`,
    `If ${down.length === 1 ? "it is" : "they are"} gone for good, remove ${down.length === 1 ? "it" : "them"} with force: set 'present: false' and 'force: true' in the spec (or 'incus-fleet remove ${cluster} <name> --force'), so the cluster stops counting on ${down.length === 1 ? "it" : "them"}.`,
  ];
  if (quorum.failuresTolerated === 0 && quorum.voters >= 3) {
    steps.unshift(`${cluster} tolerates no further failure: ${quorum.onlineVoters} of ${quorum.voters} voters online. Do not stop or remove any other member now.`);
  }
  return steps;
}
