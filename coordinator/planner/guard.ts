import { assessAction, ErrorCode, type Quorum } from "../../shared/index.js";
import type { HealthSnapshot } from "../health/health-types.js";

export type GuardedAction =
  | { kind: "remove"; member: string; force: boolean }
  | { kind: "evacuate"; member: string; force: boolean }
  | { kind: "restore"; member: string; force: boolean }
  /** A planned stop of a member's daemon or host: a rollout's host action. */
  | { kind: "stop"; member: string; force: boolean };

export interface GuardVerdict {
  allowed: boolean;
  /** The rules said no and `force` overrode them. */
  forced: boolean;
  reasons: string[];
  /** The stable code a refusal is reported with. */
  code: ErrorCode;
  quorum: Quorum | null;
  quorumAfter: Quorum | null;
}

const OUT_OF_SERVICE = (status: string) => status !== "Online";

/**
 * The one rule book for anything that takes a member out of service or out
 * of the cluster: removals from the spec or the API, evacuations, restores
 * and a rollout's planned stops all ask it, in this order: is the cluster's
 * state known, is it held (quorum lost, split views), does the quorum
 * arithmetic allow it, would it leave the cluster with no failure to spare,
 * and is another member already out of service.
 */
export function guardAction(action: GuardedAction, health: HealthSnapshot | null, instancesOnTarget: number | null = null): GuardVerdict {
  const verdict = (code: ErrorCode, reasons: string[], quorum: Quorum | null, quorumAfter: Quorum | null): GuardVerdict =>
    reasons.length === 0
      ? { allowed: true, forced: false, reasons, code, quorum, quorumAfter }
      : { allowed: action.force, forced: action.force, reasons, code, quorum, quorumAfter };

  const members = health?.members;
  if (!health || !members) {
    return verdict(ErrorCode.Unavailable, [`the state of the cluster is not known yet: no agent has reported a view of it`], null, null);
  }
  const target = members.find((m) => m.name === action.member);
  if (health.hold.held && action.kind !== "restore") {
    return verdict(ErrorCode.HeldDegraded, health.hold.reasons.map((r) => `held: ${r}`), health.quorum, null);
  }
  if (health.quorum && !health.quorum.hasQuorum) {
    return verdict(ErrorCode.HeldDegraded, [`the cluster has lost quorum: ${health.quorum.onlineVoters} of ${health.quorum.voters} voters online`], health.quorum, null);
  }
  const quorumMembers = members.map((m) => ({ name: m.name, status: m.safetyStatus, roles: m.roles }));
  if (action.kind === "restore") {
    return verdict(ErrorCode.QuorumRefused, [], health.quorum, health.quorum);
  }
  const arithmetic = assessAction(quorumMembers, { kind: action.kind === "remove" ? "remove" : action.kind === "evacuate" ? "evacuate" : "stop", member: action.member, force: false });
  const reasons = [...arithmetic.reasons];
  if (reasons.length > 0) return verdict(ErrorCode.QuorumRefused, reasons, arithmetic.before, arithmetic.after);
  if (!target) return verdict(ErrorCode.QuorumRefused, [], arithmetic.before, arithmetic.after);

  const q = arithmetic.before;
  if (action.kind === "remove" && q.failuresTolerated === 0 && q.voters > 1) {
    return verdict(
      ErrorCode.QuorumRefused,
      [`the cluster tolerates no further failure (${q.onlineVoters} of ${q.voters} voters online); removing ${action.member}, even a stand-by or a spare, waits until it does`],
      q,
      arithmetic.after,
    );
  }
  if (action.kind === "evacuate" || action.kind === "stop") {
    const away = members.filter((m) => m.name !== action.member && OUT_OF_SERVICE(m.safetyStatus));
    if (away.length > 0) {
      return verdict(
        ErrorCode.MaintenanceRefused,
        [`${away.map((m) => `${m.name} is ${m.safetyStatus.toLowerCase()}`).join(", ")}: one member out of service at a time; restore or recover ${away.length === 1 ? "it" : "them"} first`],
        q,
        arithmetic.after,
      );
    }
    const targets = members.filter((m) => m.name !== action.member && m.safetyStatus === "Online");
    if (action.kind === "evacuate" && instancesOnTarget !== 0 && targets.length === 0) {
      return verdict(ErrorCode.MaintenanceRefused, [`no other member is online to take the instances of ${action.member}`], q, arithmetic.after);
    }
  }
  return verdict(ErrorCode.QuorumRefused, [], q, arithmetic.after);
}
