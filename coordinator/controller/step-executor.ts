import { asFleetError, canonicalJson, memberConfigOf, type CommandBody, type Logger, type Observation } from "../../shared/index.js";
import type { EventSpec, KnowingEventSink } from "../events/event-log.js";
import type { AgentFacts } from "../gateway/agent-facts.js";
import { OPERATION_LOGIC } from "../operations/catalog.js";
import { startedEvent, type OpAction } from "../operations/logic.js";
import { newOperation } from "../operations/new-operation.js";
import { removedMember } from "../operations/remove.js";
import { announcing, type Operation } from "../operations/operation.js";
import { pickSponsor } from "../planner/formation.js";
import { planConvergence } from "../planner/convergence.js";
import type { ClusterSituation, Step } from "../planner/types.js";
import { EVENT_DUPLICATE_WINDOW_MS } from "../store/buckets.js";
import type { ClaimStore } from "../store/claim-store.js";
import type { OperationStore } from "../store/operation-store.js";
import type { CommandRunner } from "./agent-commander.js";
import type { Clock } from "./clock.js";
import type { ClusterRuntime } from "./cluster-runtime.js";

/** A token minted ahead and not used within this long is minted again (Incus lets join tokens expire). */
const TOKEN_AHEAD_MAX_AGE_MS = 5 * 60_000;
/**
 * An operation's announced events are published again only this soon after
 * its change, well within the stream's duplicate window (leaving room for
 * the clocks of two coordinators to differ): a copy the stream already has
 * is dropped, never stored twice.
 */
const REPLAY_WITHIN_MS = EVENT_DUPLICATE_WINDOW_MS - 30_000;
/** ...and only this long after it: a writer that is alive has published them by then. */
const REPLAY_AFTER_MS = 1_000;

export interface ExecutorPorts {
  claims: ClaimStore;
  ops: OperationStore;
  facts: AgentFacts;
  commander: CommandRunner;
  events: KnowingEventSink;
  /** Wakes the cluster's reconcile (when a command in flight ends). */
  enqueue(cluster: string): void;
  coordinatorId: string;
  joinTimeoutMs: number;
}

/**
 * Carries out the one step a plan chose. Quick, idempotent steps (a claim,
 * a setting, an observation) are awaited; an operation's commands, which may
 * take minutes, run in the background with the operation saved in its new
 * phase first, so that whoever owns the cluster next knows where it was.
 */
export class StepExecutor {
  constructor(
    private readonly ports: ExecutorPorts,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  private publish(cluster: string, events: EventSpec[] | undefined): void {
    for (const e of events ?? []) this.ports.events.publish(cluster, e);
  }

  /** True when the step changed something (the plan should be made again at once). */
  async execute(rt: ClusterRuntime, s: ClusterSituation, step: Step): Promise<boolean> {
    const cluster = rt.cluster;
    const now = this.clock.now();
    const { commander, events } = this.ports;
    switch (step.kind) {
      case "claim-bootstrap": {
        const member = s.spec.members.find((m) => m.name === step.node)!;
        const r = await this.ports.claims.claim(cluster, { node: step.node, claimedAt: new Date(now).toISOString() });
        if (r.won) events.publish(cluster, { kind: "bootstrap.claimed", node: step.node, id: `${cluster}:bootstrap.claimed`, message: `${step.node} will bootstrap cluster ${cluster}`, data: { address: member.address } });
        return true;
      }
      case "adopt-cluster": {
        const at = new Date(now).toISOString();
        const r = await this.ports.claims.claim(cluster, { node: step.node, claimedAt: at, completedAt: at, adopted: true });
        const members = s.hosts[step.node]?.facts?.incus.members ?? [];
        if (r.won) events.publish(cluster, { kind: "bootstrap.adopted", node: step.node, id: `${cluster}:bootstrap.adopted`, message: `${step.node} is already clustered; adopting the existing cluster instead of bootstrapping`, data: { members } });
        return true;
      }
      case "complete-bootstrap": {
        const done = await this.ports.claims.complete(cluster, new Date(now).toISOString());
        if (done) events.publish(cluster, { kind: "bootstrap.completed", node: step.node, id: `${cluster}:bootstrap.completed`, message: `${step.node} bootstrapped cluster ${cluster}`, data: {} });
        return true;
      }
      case "begin-join": {
        const ahead = rt.tokensAhead.get(step.node);
        // Minting again now would cancel the token on its way; the join begins when that one has come back.
        if (ahead?.state === "minting") return false;
        rt.tokensAhead.delete(step.node);
        const token = ahead?.state === "minted" && ahead.sponsor === step.sponsor && now - ahead.token.mintedAt < TOKEN_AHEAD_MAX_AGE_MS ? ahead.token : undefined;
        return this.begin(rt, newOperation("join", { cluster, member: step.node, requestedBy: "spec", params: { sponsor: step.sponsor }, data: token ? { token } : {}, now }));
      }
      case "mint-ahead":
        this.mintAhead(rt, step);
        return true;
      case "begin-remove": {
        if (step.verdict.forced) {
          this.log.warn({ cluster, member: step.node, reasons: step.verdict.reasons }, "forced removal: the spec overrides the safety rules");
          events.publish(cluster, { kind: "action.forced", node: step.node, message: `forced removal of ${step.node}${step.verdict.reasons.length ? ` despite: ${step.verdict.reasons.join("; ")}` : ""}`, data: { action: "remove", reasons: step.verdict.reasons } });
        }
        return this.begin(rt, newOperation("remove", { cluster, member: step.node, force: step.force, requestedBy: "spec", params: {}, data: {}, now }));
      }
      case "drive-operation":
        return this.drive(rt, s);
      case "probe-reverse": {
        const r = await this.attempt(rt, `member ${step.node} preflight`, () => commander.run(cluster, step.via, { kind: "probe", address: step.address, attempts: 2 }));
        if (!r) return false;
        await this.ports.facts.reverseChecked(
          cluster,
          step.node,
          r.reachable
            ? { ok: true, detail: `${step.via} reaches ${step.node} at ${step.address}` }
            : {
                ok: false,
                detail: `${step.via} cannot reach ${step.node} at ${step.address}: ${r.error ?? "no answer"}`,
                fix: `open TCP ${step.address.split(":").pop()} on ${step.node} to the other members (nft/iptables) and check its route`,
              },
        );
        return true;
      }
      case "observe":
        return this.observe(rt, s, step.via);
      case "apply-settings": {
        const before = s.observed?.observation.config ?? {};
        const r = await this.attempt(rt, "settings", () => commander.run(cluster, step.via, { kind: "apply-config", config: step.set }), (err) =>
          events.publish(cluster, { kind: "settings.failed", message: `Incus refused the server settings: ${err}`, data: { keys: Object.keys(step.set) } }),
        );
        if (!r) return false;
        const changed = Object.fromEntries(r.changed.map((k) => [k, { from: before[k] ?? null, to: step.set[k] }]));
        if (r.changed.length > 0) events.publish(cluster, { kind: "settings.applied", message: `server settings applied through ${step.via}: ${r.changed.join(", ")}`, data: { changed } });
        const config = r.config;
        this.learn(rt, config && ((o) => ({ ...o, config })));
        return true;
      }
      case "set-member": {
        const m = s.spec.members.find((x) => x.name === step.node)!;
        const r = await this.attempt(rt, `member ${m.name}`, () =>
          commander.run(cluster, step.via, { kind: "set-member", member: m.name, description: m.description, failureDomain: m.failureDomain, groups: m.groups }),
        );
        if (!r) {
          rt.observeNow = true;
          return false;
        }
        events.publish(cluster, { kind: "member.updated", node: m.name, message: `${m.name}: description, failure domain ${m.failureDomain}, groups ${m.groups.join(", ")}`, data: { failureDomain: m.failureDomain, groups: m.groups } });
        const member = r.member;
        this.learn(rt, member && ((o) => ({ ...o, members: o.members.map((x) => (x.name === member.name ? member : x)) })));
        return true;
      }
      case "converge-pool":
      case "converge-network":
        return this.converge(rt, s, step);
      case "delete-pool":
      case "delete-network": {
        const object = `${step.kind === "delete-pool" ? "pool" : "network"} ${step.name}`;
        const body: CommandBody = step.kind === "delete-pool" ? { kind: "delete-pool", name: step.name } : { kind: "delete-network", name: step.name };
        const r = await this.attempt(rt, object, () => commander.run(cluster, step.via, body), (err) => events.publish(cluster, { kind: "resource.failed", message: `could not delete ${object}: ${err}`, data: { object, error: err } }));
        if (!r) {
          rt.observeNow = true;
          return false;
        }
        events.publish(cluster, { kind: "resource.deleted", message: `${object} deleted`, data: { object } });
        const list = step.kind === "delete-pool" ? "pools" : "networks";
        this.learn(rt, (o) => ({ ...o, [list]: o[list].filter((x) => x.name !== step.name) }));
        return true;
      }
    }
  }

  /** Runs a quick step; a failure is remembered for backoff and the status, and reported once through `onError`. */
  private async attempt<T>(rt: ClusterRuntime, object: string, run: () => Promise<T>, onError?: (message: string) => void): Promise<T | null> {
    try {
      const r = await run();
      rt.failures.delete(object);
      return r;
    } catch (err) {
      const message = asFleetError(err).message;
      rt.recordFailure(object, message, this.clock.now());
      this.log.warn({ cluster: rt.cluster, object, err: message }, "step failed; retrying after a pause");
      onError?.(message);
      return null;
    }
  }

  /**
   * Folds what a step read back from Incus after its change into the last
   * observation: the next plan sees the change made, without a whole look at
   * the cluster before the next step (which would delay the joins of a new
   * cluster by one look per setting, pool and network). Without anything read
   * back (an older agent), the cluster is looked at again.
   */
  private learn(rt: ClusterRuntime, update: ((o: Observation) => Observation) | undefined): void {
    if (!rt.observed || !update) {
      rt.observeNow = true;
      return;
    }
    rt.observed = { ...rt.observed, observation: update(rt.observed.observation) };
  }

  private async observe(rt: ClusterRuntime, s: ClusterSituation, via: string): Promise<boolean> {
    const body: CommandBody = { kind: "observe", pools: s.spec.pools.map((p) => p.name), networks: s.spec.networks.map((n) => n.name) };
    const r = await this.attempt(rt, "observe", () => this.ports.commander.run(rt.cluster, via, body));
    if (!r || r.kind !== "observe") return false;
    rt.observed = { at: this.clock.now(), via, observation: r.observation };
    rt.observeNow = false;
    this.noteDrift(rt, { ...s, observed: rt.observed });
    return true;
  }

  /**
   * Drift: what differs from the spec now though it did not at the last
   * look, with the spec unchanged: something was changed by hand or broke.
   * Reported once when it appears and once when it is set right.
   */
  private noteDrift(rt: ClusterRuntime, s: ClusterSituation): void {
    const digest = canonicalJson(s.spec);
    const changes = planConvergence(s, rt.failures, null).changes;
    const objects = new Set(changes.map((c) => c.object));
    if (digest === rt.lastSpecDigest) {
      const appeared = changes.filter((c) => !rt.lastDiffObjects.has(c.object) && c.status !== "blocked");
      if (appeared.length > 0) {
        for (const c of appeared) rt.drifted.add(c.object);
        this.ports.events.publish(rt.cluster, {
          kind: "drift.detected",
          message: `${appeared.map((c) => c.object).join(", ")} differ${appeared.length === 1 ? "s" : ""} from the spec${s.spec.policy.drift === "correct" ? "; correcting" : " (report only)"}`,
          data: { items: appeared.map((c) => ({ object: c.object, now: c.now, wanted: c.wanted })) },
        });
      }
    }
    for (const object of [...rt.drifted]) {
      if (objects.has(object)) continue;
      rt.drifted.delete(object);
      this.ports.events.publish(rt.cluster, { kind: "drift.corrected", message: `${object} matches the spec again`, data: { object } });
    }
    rt.lastDiffObjects = objects;
    rt.lastSpecDigest = digest;
  }

  private async converge(rt: ClusterRuntime, s: ClusterSituation, step: Extract<Step, { kind: "converge-pool" | "converge-network" }>): Promise<boolean> {
    const isPool = step.kind === "converge-pool";
    const object = `${isPool ? "pool" : "network"} ${step.name}`;
    const members = (s.health?.members ?? []).filter((m) => !s.recentlyRemoved.has(m.name)).map((m) => m.name);
    const wanted = isPool ? s.spec.pools.find((p) => p.name === step.name)! : s.spec.networks.find((n) => n.name === step.name)!;
    // Each member's own keys, its defaults merged in: the agent applies them as given.
    const memberConfig = Object.fromEntries(members.map((m) => [m, memberConfigOf(wanted, m)]));
    const body: CommandBody = isPool
      ? { kind: "converge-pool", name: wanted.name, driver: (wanted as { driver: string }).driver, description: wanted.description, config: wanted.config, memberConfig, members }
      : { kind: "converge-network", name: wanted.name, type: (wanted as { type: string }).type, description: wanted.description, config: wanted.config, memberConfig, members };
    const r = await this.attempt(rt, object, () => this.ports.commander.run(rt.cluster, step.via, body), (err) =>
      this.ports.events.publish(rt.cluster, { kind: "resource.failed", message: `could not converge ${object}: ${err}`, data: { object, error: err } }),
    );
    if (!r || (r.kind !== "converge-pool" && r.kind !== "converge-network")) {
      rt.observeNow = true;
      return false;
    }
    if (r.changes.length > 0) this.ports.events.publish(rt.cluster, { kind: "resource.converged", message: `${object}: ${r.changes.join("; ")}`, data: { object, changes: r.changes } });
    const observed = r.observed;
    const list = isPool ? "pools" : "networks";
    this.learn(rt, observed && ((o) => ({ ...o, [list]: [...o[list].filter((x) => x.name !== observed.name), observed] })));
    return true;
  }

  /** Mints the next joiner's token in the background; the join that follows takes it instead of minting its own. */
  private mintAhead(rt: ClusterRuntime, step: Extract<Step, { kind: "mint-ahead" }>): void {
    rt.tokensAhead.set(step.node, { state: "minting" });
    void this.ports.commander
      .run(rt.cluster, step.via, { kind: "mint-token", joiner: step.node })
      .then(
        (r) => {
          const token = { sealedToken: r.sealedToken, clusterCertificate: r.clusterCertificate, clusterAddress: r.clusterAddress, mintedAt: this.clock.now() };
          rt.tokensAhead.set(step.node, { state: "minted", sponsor: step.via, token });
        },
        (err: unknown) => {
          // Not worth a retry: the join mints its own token when its turn comes.
          rt.tokensAhead.set(step.node, { state: "failed" });
          this.log.debug({ cluster: rt.cluster, member: step.node, err: asFleetError(err).message }, "could not mint a join token ahead");
        },
      )
      .finally(() => this.ports.enqueue(rt.cluster));
  }

  private async begin(rt: ClusterRuntime, op: Operation): Promise<boolean> {
    const started = startedEvent(op, "started");
    const owned = { ...op, owner: { coordinator: this.ports.coordinatorId, epoch: rt.epoch } } as Operation;
    const now = this.clock.now();
    const begun = await this.ports.ops.begin(announcing(owned, [started], now), now);
    if (!begun) return false;
    this.ports.events.publish(rt.cluster, started);
    return true;
  }

  /**
   * Publishes what the cluster's operations announced with their latest
   * change, unless this process published it or has seen it in the stream:
   * the change's writer (another coordinator, or an owner that died) may
   * have stored it and not lived to publish.
   */
  replayAnnounced(cluster: string): void {
    const now = this.clock.now();
    for (const op of this.ports.ops.announcedBetween(cluster, now - REPLAY_WITHIN_MS, now - REPLAY_AFTER_MS)) {
      for (const e of op.announced!.events) if (e.id && !this.ports.events.known(e.id)) this.ports.events.publish(cluster, e);
    }
  }

  /** Moves the cluster's operation on: saves its next state, or sends its next command in the background. */
  private async drive(rt: ClusterRuntime, s: ClusterSituation): Promise<boolean> {
    const found = this.ports.ops.active(rt.cluster);
    if (!found || rt.inflight.has(found.op.id)) return false;
    let { op, revision } = found;
    // A newer owner drives it: this coordinator has lost the cluster and has not noticed yet.
    if (op.owner && op.owner.epoch > rt.epoch) return false;
    if (op.owner?.epoch !== rt.epoch) {
      op = { ...op, owner: { coordinator: this.ports.coordinatorId, epoch: rt.epoch } } as Operation;
      revision = await this.ports.ops.update(op, revision);
    }
    const ctx = {
      s,
      executor: (exclude?: string) => pickSponsor(s, exclude)?.name ?? null,
      joinTimeoutMs: this.ports.joinTimeoutMs,
      now: this.clock.now(),
    };
    const logic = OPERATION_LOGIC[op.kind] as { next(op: Operation, c: typeof ctx): OpAction; settle(op: Operation, o: Parameters<(typeof OPERATION_LOGIC)["join"]["settle"]>[1], c: typeof ctx): { op: Operation; events?: EventSpec[] } };
    const action = logic.next(op, ctx);
    if (action.kind === "wait") return false;
    // A removal found done by a new owner (the member gone from the views) is as fresh as one it saw itself.
    const removed = removedMember(action.op);
    if (removed) rt.removedAt(removed, ctx.now);
    if (action.op !== op) revision = await this.ports.ops.update(announcing(action.op, action.events, ctx.now), revision);
    this.publish(rt.cluster, action.events);
    if (action.kind === "update") return true;

    const started = action.op;
    rt.inflight.add(started.id);
    void this.ports.commander
      .run(rt.cluster, action.via, action.body)
      .then((result) => ({ ok: true as const, result }), (err: unknown) => ({ ok: false as const, error: asFleetError(err) }))
      .then(async (outcome) => {
        const current = this.ports.ops.get(rt.cluster, started.id);
        if (!current || (current.op.state !== "running" && current.op.state !== "paused")) return;
        // The cluster changed hands while the command ran: the new owner reads what Incus reports and goes on from there.
        if (!rt.owned || current.op.owner?.epoch !== rt.epoch) return;
        const settled = logic.settle(current.op, outcome, { ...ctx, now: this.clock.now() });
        // Gone from Incus now, whatever views read a moment ago say: known before the write that may end the operation wakes a new plan.
        const gone = removedMember(settled.op);
        if (gone) rt.removedAt(gone, this.clock.now());
        await this.ports.ops.update(announcing(settled.op, settled.events, this.clock.now()), current.revision);
        this.publish(rt.cluster, settled.events);
        rt.observeNow = true;
      })
      .catch((err: unknown) => this.log.warn({ cluster: rt.cluster, operation: started.id, err: String(err) }, "could not record the end of a command; the next owner looks again"))
      .finally(() => {
        rt.inflight.delete(started.id);
        this.ports.enqueue(rt.cluster);
      });
    return false;
  }
}
