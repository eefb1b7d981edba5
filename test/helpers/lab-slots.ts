/**
 * One address slot and name prefix per lab, so that test files running at
 * the same time never share a bridge, a range or a namespace name. A machine
 * that leaves two documentation ranges free has 16 slots; the demo uses 14
 * and the benchmarks, run on their own, reuse the slots of their smoke tests.
 */
export const LabSlot = {
  formation: { slot: 0, prefix: "fform" },
  agentRestart: { slot: 1, prefix: "fagre" },
  failover: { slot: 2, prefix: "fcore" },
  growShrink: { slot: 3, prefix: "fgrow" },
  quorumLoss: { slot: 4, prefix: "fquor" },
  quorumKill: { slot: 5, prefix: "fkill" },
  maintenance: { slot: 6, prefix: "fmnt" },
  partition: { slot: 7, prefix: "fpart" },
  latency: { slot: 8, prefix: "flat" },
  detection: { slot: 9, prefix: "fdet" },
  preflight: { slot: 10, prefix: "fpre" },
  browser: { slot: 11, prefix: "fweb" },
  benchFormation: { slot: 12, prefix: "bform" },
  benchDetection: { slot: 13, prefix: "bdet" },
  converge: { slot: 15, prefix: "fconv" },
} as const;
