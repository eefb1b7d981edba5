import test from "ava";
import { ErrorCode } from "../../shared/index.js";
import { guardAction } from "../../coordinator/planner/guard.js";
import { healthOf } from "../helpers/situations.js";

const five = (statuses: Record<string, string> = {}) =>
  healthOf(["a", "b", "c", "d", "e"].map((name) => ({ name, status: statuses[name] ?? "Online", roles: name === "a" ? ["database-leader", "database"] : ["b", "c"].includes(name) ? ["database"] : ["database-standby"] })));

/** Every rule, as a table: the situation, the action, and what the guard says. */
const cases: { name: string; health: ReturnType<typeof healthOf> | null; action: Parameters<typeof guardAction>[0]; instances?: number | null; allowed: boolean; code?: ErrorCode; reason?: RegExp }[] = [
  { name: "an evacuation of a healthy member", health: five(), action: { kind: "evacuate", member: "d", force: false }, allowed: true },
  { name: "nothing is decided on a cluster nobody has seen", health: null, action: { kind: "evacuate", member: "d", force: false }, allowed: false, code: ErrorCode.Unavailable, reason: /not known yet/ },
  { name: "a second evacuation while another member is evacuated", health: five({ d: "Evacuated" }), action: { kind: "evacuate", member: "e", force: false }, allowed: false, code: ErrorCode.MaintenanceRefused, reason: /d is evacuated: one member out of service at a time/ },
  { name: "an evacuation while another member is offline", health: five({ e: "Offline" }), action: { kind: "evacuate", member: "d", force: false }, allowed: false, code: ErrorCode.MaintenanceRefused, reason: /e is offline/ },
  { name: "a planned stop while another member is evacuated", health: five({ b: "Evacuated" }), action: { kind: "stop", member: "c", force: false }, allowed: false, code: ErrorCode.MaintenanceRefused },
  { name: "forced, the same evacuation is allowed and recorded as forced", health: five({ d: "Evacuated" }), action: { kind: "evacuate", member: "e", force: true }, allowed: true },
  { name: "an evacuation that would leave too few voters", health: five({ b: "Offline", c: "Offline" }), action: { kind: "evacuate", member: "a", force: false }, allowed: false, code: ErrorCode.HeldDegraded, reason: /lost quorum/ },
  { name: "removing a stand-by when no further failure is tolerated", health: five({ c: "Offline" }), action: { kind: "remove", member: "e", force: false }, allowed: false, code: ErrorCode.QuorumRefused, reason: /tolerates no further failure/ },
  { name: "removing a spare of a healthy cluster of five", health: five(), action: { kind: "remove", member: "e", force: false }, allowed: true },
  { name: "removing one of three", health: healthOf([{ name: "a" }, { name: "b" }, { name: "c" }]), action: { kind: "remove", member: "c", force: false }, allowed: false, reason: /at least 3/ },
  { name: "a graceful removal of an offline member", health: five({ e: "Offline" }), action: { kind: "remove", member: "e", force: false }, allowed: false, reason: /needs it online|tolerates no further failure/ },
  { name: "a forced removal of a dead member", health: five({ e: "Offline" }), action: { kind: "remove", member: "e", force: true }, allowed: true },
  { name: "nothing holds while the views are split", health: { ...five(), hold: { held: true, reasons: ["b cannot reach c"] } }, action: { kind: "remove", member: "e", force: false }, allowed: false, code: ErrorCode.HeldDegraded, reason: /held: b cannot reach c/ },
  { name: "a restore while split views hold other actions", health: { ...five({ d: "Evacuated" }), hold: { held: true, reasons: ["x"] } }, action: { kind: "restore", member: "d", force: false }, allowed: true },
  { name: "an evacuation with nowhere healthy to go", health: healthOf([{ name: "a" }]), action: { kind: "evacuate", member: "a", force: false }, instances: 3, allowed: false },
];

for (const c of cases) {
  test(`guard: ${c.name}`, (t) => {
    const v = guardAction(c.action, c.health, c.instances ?? null);
    t.is(v.allowed, c.allowed, v.reasons.join("; "));
    if (c.code) t.is(v.code, c.code);
    if (c.reason) t.regex(v.reasons.join("; "), c.reason);
    if (c.action.force && c.allowed && v.reasons.length > 0) t.true(v.forced);
  });
}
