/**
 * One address slot and name prefix per lab, so that test files running at
 * the same time never share a bridge, a range or a namespace name.
 */
export const LabSlot = {
  formation: { slot: 0, prefix: "fform" },
  agentRestart: { slot: 1, prefix: "fagre" },
  coordinatorRestart: { slot: 2, prefix: "fcore" },
  growShrink: { slot: 3, prefix: "fgrow" },
  quorumLoss: { slot: 4, prefix: "fquor" },
  quorumKill: { slot: 15, prefix: "fkill" },
  evacuate: { slot: 5, prefix: "fevac" },
  partition: { slot: 6, prefix: "fpart" },
  latency: { slot: 7, prefix: "flat" },
  detection: { slot: 8, prefix: "fdet" },
  preflight: { slot: 9, prefix: "fpre" },
  eventsStream: { slot: 10, prefix: "fws" },
  browser: { slot: 11, prefix: "fweb" },
  benchFormation: { slot: 12, prefix: "fbfo" },
  benchDetection: { slot: 13, prefix: "fbde" },
  resources: { slot: 14, prefix: "fres" },
} as const;
