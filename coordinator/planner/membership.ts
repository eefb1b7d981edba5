import type { Verdict } from "../../shared/index.js";
import { guardAction } from "./guard.js";
import type { ClusterSituation, PlanChange } from "./types.js";

export interface Removal {
  node: string;
  force: boolean;
  verdict: Verdict;
}

/**
 * Members of the running cluster that the spec no longer wants: each is
 * removed when the guard allows it (one at a time, like every membership
 * change), and listed as refused with the guard's reasons otherwise.
 */
export function planRemovals(s: ClusterSituation): { changes: PlanChange[]; next: Removal | null } {
  const { spec, health, active } = s;
  const present = new Set(spec.members.filter((m) => m.present).map((m) => m.name));
  const changes: PlanChange[] = [];
  let next: Removal | null = null;
  for (const m of health?.members ?? []) {
    if (present.has(m.name) || s.recentlyRemoved.has(m.name)) continue;
    const force = spec.members.find((x) => x.name === m.name)?.force ?? false;
    const object = `member ${m.name}`;
    if (active?.kind === "remove" && active.member === m.name) {
      changes.push({ object, action: "remove", now: m.effectiveStatus, wanted: "absent", status: "next", reason: `being removed (${active.phase})` });
      continue;
    }
    const g = guardAction({ kind: "remove", member: m.name, force }, health, null);
    if (!g.allowed) {
      changes.push({ object, action: "remove", now: m.effectiveStatus, wanted: "absent", status: "refused", reason: `not removing ${m.name}: ${g.reasons.join("; ")}` });
      continue;
    }
    const verdict: Verdict = { allowed: true, forced: g.forced, reasons: g.reasons, before: g.quorum!, after: g.quorumAfter ?? g.quorum! };
    changes.push({ object, action: "remove", now: m.effectiveStatus, wanted: "absent", status: next ? "pending" : "next", reason: `dropped from the spec${force ? " (forced)" : ""}` });
    next ??= { node: m.name, force, verdict };
  }
  return { changes, next };
}
