import test from "ava";
import fc from "fast-check";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Writable } from "node:stream";
import { randomUUID } from "node:crypto";
import { AgentCommander } from "../../coordinator/agent-commander.js";
import { EventPublisher } from "../../coordinator/event-publisher.js";
import { FleetObserver, DEFAULT_OBSERVER_OPTIONS } from "../../coordinator/fleet-observer.js";
import { Reconciler, DEFAULT_RECONCILER_OPTIONS } from "../../coordinator/reconciler.js";
import { SessionRegistry } from "../../coordinator/sessions.js";
import { FleetStore } from "../../coordinator/store.js";
import { createLogger, deriveClusterKeys, MacPurpose, parseSpec, signed, type Assignment, type NodeFacts } from "../../shared/index.js";
import { startNatsServer, type NatsServer } from "../../lab/nats-server.js";

const NODES = ["n1", "n2", "n3", "n4"];
const PASSWORD = "property-password";
const keys = deriveClusterKeys("c", PASSWORD);
/** The spec, with the operator's choice of bootstrap member (which they may change at any time). */
const specWith = (bootstrap?: string) =>
  parseSpec({ clusters: { c: { cluster_password: PASSWORD, ...(bootstrap ? { bootstrap } : {}), members: Object.fromEntries(NODES.map((n, i) => [n, { address: `192.0.2.${11 + i}` }])) } } });
const quiet = createLogger({ name: "prop", level: "silent", destination: new Writable({ write: (_c, _e, d) => d() }) });

let nats: NatsServer;
let nc: NatsConnection;
test.before(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});
test.after.always(async () => {
  await nc?.close();
  await nats?.stop();
});

/** A coordinator process as far as decisions go: its own memory, the shared store. */
async function coordinator(store: FleetStore): Promise<Reconciler> {
  const events = new EventPublisher(null, quiet);
  const observer = new FleetObserver(events, DEFAULT_OBSERVER_OPTIONS);
  const sessions = new SessionRegistry();
  let r: Reconciler | null = null;
  const commander = new AgentCommander(nc, () => keys, () => null, () => undefined);
  r = new Reconciler(nc, store, sessions, observer, commander, events, quiet, { ...DEFAULT_RECONCILER_OPTIONS, tickMs: 3_600_000 });
  await r.start();
  return r;
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!condition()) throw new Error("the second coordinator never saw the spec");
}

/** An agent as far as bootstrapping goes: it enables clustering only when told and not already clustered. */
interface AgentModel {
  node: string;
  instance: string | null;
  seq: number;
  clustered: boolean;
  last: Assignment | null;
}

type Command =
  | { kind: "hello"; node: number; via: number }
  | { kind: "pull"; node: number; via: number }
  | { kind: "execute"; node: number; via: number }
  | { kind: "agent-restart"; node: number }
  | { kind: "coordinator-restart"; which: number }
  | { kind: "race"; a: number; b: number }
  | { kind: "respec"; bootstrap: number; via: number }
  | { kind: "respec-race"; bootstrap: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant("hello" as const), node: fc.nat(3), via: fc.nat(1) }),
  fc.record({ kind: fc.constant("pull" as const), node: fc.nat(3), via: fc.nat(1) }),
  fc.record({ kind: fc.constant("execute" as const), node: fc.nat(3), via: fc.nat(1) }),
  fc.record({ kind: fc.constant("agent-restart" as const), node: fc.nat(3) }),
  fc.record({ kind: fc.constant("coordinator-restart" as const), which: fc.nat(1) }),
  fc.record({ kind: fc.constant("race" as const), a: fc.nat(3), b: fc.nat(3) }),
  fc.record({ kind: fc.constant("respec" as const), bootstrap: fc.nat(3), via: fc.nat(1) }),
  fc.record({ kind: fc.constant("respec-race" as const), bootstrap: fc.nat(3) }),
);

const factsOf = (a: AgentModel, i: number): NodeFacts => ({
  address: `192.0.2.${11 + i}:8443`,
  agentVersion: "model",
  incus: { observedAt: Date.now(), reachable: true, version: "6.0.4", clustered: a.clustered, ...(a.clustered ? { members: [a.node] } : {}) },
});

test("property: no sequence of hellos, agent restarts and coordinator restarts yields two bootstraps", async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(commandArb, { minLength: 5, maxLength: 30 }), async (commands) => {
      runs += 1;
      const store = await FleetStore.open(nc, { prefix: `p${randomUUID().slice(0, 8)}` });
      const coordinators = [await coordinator(store), await coordinator(store)];
      await coordinators[0]!.applySpec(specWith());
      await waitUntil(() => coordinators[1]!.spec().clusters.length === 1);
      const agents: AgentModel[] = NODES.map((node) => ({ node, instance: null, seq: 0, clustered: false, last: null }));
      const toldToBootstrap = new Set<string>();
      let enables = 0;

      const hello = async (i: number, via: number) => {
        const a = agents[i]!;
        const c = coordinators[via]!;
        a.instance = randomUUID();
        a.seq = 0;
        const { nonce } = c.challenge({ cluster: "c", node: a.node });
        const reply = await c.hello(signed(keys.mac, MacPurpose.Hello, { cluster: "c", node: a.node, instance: a.instance, nonce, facts: factsOf(a, i) }));
        if (reply.ok) a.last = reply.assignment;
      };
      const pull = async (i: number, via: number) => {
        const a = agents[i]!;
        if (!a.instance) return hello(i, via);
        a.seq += 1;
        try {
          const reply = await coordinators[via]!.assign(signed(keys.mac, MacPurpose.Assign, { cluster: "c", node: a.node, instance: a.instance, seq: a.seq, facts: factsOf(a, i) }));
          if (reply.ok) a.last = reply.assignment;
        } catch {
          a.instance = null;
        }
      };
      for (const cmd of commands) {
        switch (cmd.kind) {
          case "hello":
            await hello(cmd.node, cmd.via);
            break;
          case "pull":
            await pull(cmd.node, cmd.via);
            break;
          case "execute": {
            const a = agents[cmd.node]!;
            if (a.last?.kind === "bootstrap" && !a.clustered) {
              enables += 1;
              a.clustered = true;
            }
            if (a.instance && a.clustered) {
              a.seq += 1;
              await coordinators[cmd.via]!
                .report(signed(keys.mac, MacPurpose.Report, { cluster: "c", node: a.node, instance: a.instance, seq: a.seq, outcome: "bootstrapped", assignment: "bootstrap", detail: "", durationMs: 1, facts: factsOf(a, cmd.node) }))
                .catch(() => undefined);
            }
            break;
          }
          case "agent-restart":
            agents[cmd.node]!.instance = null;
            agents[cmd.node]!.last = null;
            break;
          case "coordinator-restart":
            await coordinators[cmd.which]!.stop();
            coordinators[cmd.which] = await coordinator(store);
            break;
          case "respec":
            // The operator names another bootstrap member; the other coordinator may not have seen it yet.
            await coordinators[cmd.via]!.applySpec(specWith(NODES[cmd.bootstrap]));
            break;
          case "respec-race":
            // The spec changes on one coordinator while the other still decides from the old one.
            await coordinators[0]!.applySpec(specWith(NODES[cmd.bootstrap]));
            await Promise.all([hello(cmd.bootstrap, 0), hello(0, 1), hello(cmd.bootstrap, 1), hello(0, 0)]);
            break;
          case "race":
            // Two agents ask two coordinators at the same moment: only the store's compare-and-set decides.
            await Promise.all([hello(cmd.a, 0), hello(cmd.b, 1)]);
            break;
        }
        for (const a of agents) if (a.last?.kind === "bootstrap") toldToBootstrap.add(a.node);
        if (toldToBootstrap.size > 1 || enables > 1) break;
      }
      for (const c of coordinators) await c.stop();
      return toldToBootstrap.size <= 1 && enables <= 1;
    }),
    { numRuns: 60, endOnFailure: true },
  );
  t.true(runs >= 60);
});
