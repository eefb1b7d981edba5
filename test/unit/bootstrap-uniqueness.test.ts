import test from "ava";
import fc from "fast-check";
import { parseSpec } from "../../shared/index.js";
import { ControllerHarness, SharedStore } from "../helpers/controller-harness.js";
import { facts } from "../helpers/situations.js";

const NODES = ["node1", "node2", "node3", "node4"];
/** The spec, with the operator's choice of bootstrap member, which they may change at any moment. */
const specWith = (bootstrap?: string) => ({
  clusters: { c: { cluster_password: "property-password", ...(bootstrap ? { bootstrap } : {}), members: Object.fromEntries(NODES.map((n, i) => [n, { address: `192.0.2.${11 + i}` }])) } },
});

type Command =
  | { kind: "enroll"; node: number; via: number }
  | { kind: "execute"; node: number; via: number }
  | { kind: "agent-restart"; node: number }
  | { kind: "coordinator-restart"; which: number }
  | { kind: "respec"; bootstrap: number; via: number }
  | { kind: "time"; ms: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("enroll" as const), node: fc.nat(3), via: fc.nat(1) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("execute" as const), node: fc.nat(3), via: fc.nat(1) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("agent-restart" as const), node: fc.nat(3) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("coordinator-restart" as const), which: fc.nat(1) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("respec" as const), bootstrap: fc.nat(3), via: fc.nat(1) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("time" as const), ms: fc.integer({ min: 100, max: 5_000 }) }), weight: 2 },
);

async function coordinator(store: SharedStore, bootstrap?: string): Promise<ControllerHarness> {
  const h = await ControllerHarness.create(specWith(bootstrap), store);
  // Both coordinators own the cluster at once: the worst a lease race could do. Only the store's compare-and-set decides.
  h.controller.own("c", 1);
  return h;
}

test("property: whatever agents, coordinators and operators do, and in whatever order, one member is ever told to bootstrap, once", async (t) => {
  let runs = 0;
  let bootstrapped = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(commandArb, { minLength: 10, maxLength: 40 }), async (commands) => {
      runs += 1;
      const store = new SharedStore();
      const coordinators = [await coordinator(store), await coordinator(store)];
      const clustered = new Set<string>();
      const told = new Set<string>();
      let enables = 0;
      const factsOf = (node: string) => facts(clustered.has(node), clustered.has(node) ? [node] : undefined, `192.0.2.${11 + NODES.indexOf(node)}:8443`);
      try {
        for (const cmd of commands) {
          switch (cmd.kind) {
            case "enroll":
              await coordinators[cmd.via]!.enroll(NODES[cmd.node]!, factsOf(NODES[cmd.node]!));
              break;
            case "execute": {
              const node = NODES[cmd.node]!;
              const a = coordinators[cmd.via]!.controller.assignmentFor("c", node);
              if (a.kind === "bootstrap") {
                told.add(node);
                // The agent itself never enables clustering twice: Incus would refuse it on a clustered host anyway.
                if (!clustered.has(node)) {
                  enables += 1;
                  clustered.add(node);
                }
                await coordinators[cmd.via]!.pulled(node, factsOf(node));
              }
              break;
            }
            case "agent-restart":
              for (const c of coordinators) await c.enroll(NODES[cmd.node]!, factsOf(NODES[cmd.node]!));
              break;
            case "coordinator-restart":
              coordinators[cmd.which]!.stop();
              coordinators[cmd.which] = await coordinator(store, coordinators[cmd.which]!.spec.clusters[0]!.bootstrap ?? undefined);
              break;
            case "respec": {
              const h = coordinators[cmd.via]!;
              h.spec = parseSpec(specWith(NODES[cmd.bootstrap])).spec;
              h.controller.enqueue("c");
              break;
            }
            case "time":
              await Promise.all(coordinators.map((c) => c.advance(cmd.ms)));
              break;
          }
          for (const c of coordinators) for (const n of NODES) if (c.controller.assignmentFor("c", n).kind === "bootstrap") told.add(n);
          if (told.size > 1 || enables > 1) break;
        }
      } finally {
        for (const c of coordinators) c.stop();
      }
      if (enables === 1) bootstrapped += 1;
      return told.size <= 1 && enables <= 1;
    }),
    { numRuns: 80, endOnFailure: true },
  );
  t.true(runs >= 80);
  t.log(`${bootstrapped} of ${runs} runs bootstrapped`);
  t.true(bootstrapped >= runs / 4, "the sequences reach a bootstrap often enough to mean something");
});
