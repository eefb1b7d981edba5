import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  canonicalAddress,
  clusterOf,
  deriveClusterKeysAsync,
  ErrorCode,
  FleetError,
  parseSpecText,
  type ClusterSpec,
  type FleetSpec,
  type Logger,
  type ParsedSpec,
  type Problem,
} from "../../shared/index.js";
import type { Clock } from "../controller/clock.js";
import type { EventSink } from "../events/event-log.js";
import { guardAction } from "../planner/guard.js";
import { planCluster } from "../planner/plan-cluster.js";
import type { PlanChange, PlannerLimits } from "../planner/types.js";
import { situationFromStatus } from "../status/situation-from-status.js";
import type { ClaimStore } from "../store/claim-store.js";
import type { OperationStore } from "../store/operation-store.js";
import type { ClusterSecrets, StoredSpec } from "../store/records.js";
import type { SpecStore } from "../store/spec-store.js";
import type { StatusStore } from "../store/status-store.js";

export interface SpecApplied {
  revision: number;
  warnings: Problem[];
  dryRun: boolean;
  /** Per cluster, every change with its value now and the value wanted, against the cluster as it is. */
  plans: { cluster: string; changes: PlanChange[] }[];
}

const digest = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * The one source of truth for the desired state. A spec is validated as a
 * whole, then checked against the clusters as they are: one that would be
 * refused when applied (a cluster below three members, more voters removed
 * than it can spare, quorum at risk) is refused here, with the reasons, and
 * nothing is stored. A dry run answers the same, with the plan, and stores
 * nothing either.
 */
export class SpecService {
  constructor(
    private readonly specs: SpecStore,
    private readonly statuses: StatusStore,
    private readonly claims: ClaimStore,
    private readonly ops: OperationStore,
    private readonly events: EventSink,
    private readonly limits: PlannerLimits,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  spec(): FleetSpec {
    return this.specs.current()?.stored.spec ?? { clusters: [] };
  }

  current(): { spec: FleetSpec; revision: number; warnings: Problem[]; appliedAt: string | null; source: string | null } {
    const c = this.specs.current();
    return { spec: c?.stored.spec ?? { clusters: [] }, revision: c?.revision ?? 0, warnings: c?.stored.warnings ?? [], appliedAt: c?.stored.appliedAt ?? null, source: c?.stored.source ?? null };
  }

  knownClusters(): Set<string> {
    return new Set(this.spec().clusters.filter((c) => this.specs.keysOf(c.name)).map((c) => c.name));
  }

  parse(text: string): ParsedSpec {
    return parseSpecText(text, { knownClusters: this.knownClusters() });
  }

  /** Every change a spec would make to one cluster, and the refusals, against the cluster as its owner last described it. */
  planFor(cluster: ClusterSpec): PlanChange[] {
    const situation = situationFromStatus(cluster, this.statuses.get(cluster.name), this.claims.claimOf(cluster.name), this.ops.active(cluster.name)?.op ?? null, this.clock.now());
    return planCluster(situation, this.limits).changes;
  }

  /** Why a spec would be refused when applied to the clusters as they are. */
  refusals(spec: FleetSpec): Problem[] {
    const problems: Problem[] = [];
    for (const c of spec.clusters) {
      const record = this.statuses.get(c.name);
      const members = record?.health.members;
      if (!members) continue;
      const present = new Set(c.members.filter((m) => m.present).map((m) => m.name));
      const leaving = members.filter((m) => !present.has(m.name));
      let health = record.health;
      for (const m of leaving) {
        const force = c.members.find((x) => x.name === m.name)?.force ?? false;
        const verdict = guardAction({ kind: "remove", member: m.name, force }, health);
        if (!verdict.allowed) {
          problems.push({ path: `clusters.${c.name}.members.${m.name}`, message: `removing ${m.name} would be refused: ${verdict.reasons.join("; ")}${force ? "" : " (mark it force: true to override)"}` });
          continue;
        }
        // The next removal is judged against the cluster this one leaves.
        health = { ...health, members: health.members!.filter((x) => x.name !== m.name) };
      }
    }
    return problems;
  }

  /** Every cluster's keys: derived from the password given, or kept from the stored spec when none is. */
  private async keysFor(parsed: ParsedSpec): Promise<Record<string, ClusterSecrets>> {
    const stored = this.specs.current()?.stored.keys ?? {};
    const out: Record<string, ClusterSecrets> = {};
    await Promise.all(
      parsed.spec.clusters.map(async (c) => {
        const password = parsed.passwords[c.name];
        if (password) {
          const k = await deriveClusterKeysAsync(c.name, password);
          out[c.name] = { mac: k.mac.toString("base64"), seal: k.seal.toString("base64") };
        } else if (stored[c.name]) out[c.name] = stored[c.name]!;
        else throw new FleetError(ErrorCode.SpecInvalid, `clusters.${c.name}.cluster_password: missing; a new cluster needs one`, { problems: [{ path: `clusters.${c.name}.cluster_password`, message: "missing cluster_password: a new cluster needs one" }] });
      }),
    );
    return out;
  }

  /**
   * Stores a validated spec, unless the clusters as they are would refuse
   * it. With `expectedRevision`, only if nobody changed the spec since.
   */
  async apply(parsed: ParsedSpec, options: { expectedRevision?: number; source: string; dryRun?: boolean; lastFile?: StoredSpec["lastFile"] }): Promise<SpecApplied> {
    const refusals = this.refusals(parsed.spec);
    const plans = parsed.spec.clusters.map((c) => ({ cluster: c.name, changes: this.planFor(c) }));
    if (refusals.length > 0) {
      throw new FleetError(ErrorCode.QuorumRefused, `spec refused: ${refusals[0]!.path}: ${refusals[0]!.message}${refusals.length > 1 ? ` (and ${refusals.length - 1} more)` : ""}`, { problems: refusals });
    }
    const current = this.specs.current();
    if (options.expectedRevision !== undefined && options.expectedRevision !== (current?.revision ?? 0)) {
      throw new FleetError(ErrorCode.SpecConflict, `the spec changed since revision ${options.expectedRevision} (it is at ${current?.revision ?? 0}); fetch it again and re-apply`);
    }
    if (options.dryRun) return { revision: current?.revision ?? 0, warnings: parsed.warnings, dryRun: true, plans };
    const stored: StoredSpec = {
      spec: parsed.spec,
      keys: await this.keysFor(parsed),
      warnings: parsed.warnings,
      appliedAt: new Date(this.clock.now()).toISOString(),
      source: options.source,
      lastFile: options.lastFile ?? current?.stored.lastFile ?? null,
    };
    const revision = await this.specs.put(stored, options.expectedRevision ?? current?.revision ?? 0);
    for (const c of parsed.spec.clusters) {
      this.events.publish(c.name, {
        kind: "spec.applied",
        id: `spec:${revision}:${c.name}`,
        message: `spec revision ${revision} applied (${options.source}): ${c.members.filter((m) => m.present).length} present members`,
        data: { revision, source: options.source, members: c.members.map((m) => ({ name: m.name, present: m.present })), warnings: parsed.warnings.map((w) => `${w.path}: ${w.message}`) },
      });
    }
    return { revision, warnings: parsed.warnings, dryRun: false, plans };
  }

  /**
   * The spec file a coordinator is started with. It is applied into an empty
   * store, or when the file changed since it was last applied from that
   * file; otherwise the stored revision wins, and the log and the events say
   * so. A restart never undoes what was changed through the API since.
   */
  async applyFile(path: string): Promise<"applied" | "unchanged" | "kept"> {
    const text = readFileSync(path, "utf8");
    const fileDigest = digest(text);
    const current = this.specs.current();
    const last = current?.stored.lastFile;
    const changedSinceApplied = !!last && last.path === path && last.digest !== fileDigest;
    if (current && !changedSinceApplied) {
      if (last?.path === path && current.stored.source === `file ${path}`) return "unchanged";
      this.log.warn(
        { file: path, storedRevision: current.revision, storedFrom: current.stored.source },
        last?.path === path ? "the spec file has not changed since it was applied; the stored spec is newer and wins" : "the store holds a spec that did not come from this file; the stored spec wins (apply the file through the API to replace it)",
      );
      for (const c of current.stored.spec.clusters) {
        this.events.publish(c.name, { kind: "spec.kept", id: `spec-kept:${current.revision}:${fileDigest.slice(0, 12)}:${c.name}`, message: `${path} is not newer than stored revision ${current.revision}; the stored spec wins`, data: { file: path, revision: current.revision } });
      }
      return "kept";
    }
    if (changedSinceApplied) this.log.info({ file: path }, "the spec file changed since it was last applied; applying it");
    await this.apply(this.parse(text), { source: `file ${path}`, expectedRevision: current?.revision ?? 0, lastFile: { path, digest: fileDigest } });
    return "applied";
  }

  /** Marks a member absent (what the Salt `cluster_member_absent` state does): a change of the desired state, refused first if the rules say no. */
  async markAbsent(cluster: string, member: string, force: boolean): Promise<{ revision: number; forced: boolean; reasons: string[] }> {
    const current = this.specs.current();
    const spec = current ? clusterOf(current.stored.spec, cluster) : undefined;
    if (!current || !spec) throw new FleetError(ErrorCode.UnknownCluster, `cluster '${cluster}' is not in the spec`);
    if (!spec.members.some((m) => m.name === member)) throw new FleetError(ErrorCode.UnknownMember, `'${member}' is not in the spec of cluster '${cluster}'`);
    // With the cluster's state not known yet, the spec changes and the owner holds the removal until the rules can be judged, as for a spec applied.
    const health = this.statuses.get(cluster)?.health;
    const verdict = health?.members ? guardAction({ kind: "remove", member, force }, health) : { allowed: true, forced: false, reasons: [] as string[], code: ErrorCode.QuorumRefused, quorum: null };
    if (!verdict.allowed) {
      const message = `removal of ${member} refused: ${verdict.reasons.join("; ")}`;
      this.events.publish(cluster, { kind: "action.refused", node: member, message, data: { action: "remove", reasons: verdict.reasons, quorum: verdict.quorum } });
      throw new FleetError(verdict.code, message);
    }
    if (verdict.forced) this.events.publish(cluster, { kind: "action.forced", node: member, message: `forced removal of ${member} despite: ${verdict.reasons.join("; ")}`, data: { action: "remove", reasons: verdict.reasons } });
    const next: FleetSpec = { clusters: current.stored.spec.clusters.map((c) => (c.name !== cluster ? c : { ...c, members: c.members.map((m) => (m.name === member ? { ...m, present: false, force } : m)) })) };
    const stored: StoredSpec = { ...current.stored, spec: next, appliedAt: new Date(this.clock.now()).toISOString(), source: `remove ${member}` };
    const revision = await this.specs.put(stored, current.revision);
    this.events.publish(cluster, {
      kind: "spec.applied",
      id: `spec:${revision}:${cluster}`,
      node: member,
      message: `${member} marked absent${force ? " (force)" : ""} in spec revision ${revision}: the stored spec changed; export it (incus-fleet spec show) to keep your file in step`,
      data: { revision, source: `remove ${member}`, members: next.clusters.find((c) => c.name === cluster)!.members.map((m) => ({ name: m.name, present: m.present })), warnings: [] },
    });
    return { revision, forced: verdict.forced, reasons: verdict.reasons };
  }

  /** The agent enrolling from an address-only member's address names it: the stored spec takes the name. */
  async bindName(cluster: string, address: string, node: string): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = this.specs.current();
      const spec = current ? clusterOf(current.stored.spec, cluster) : undefined;
      const canonical = canonicalAddress(address);
      const unnamed = spec?.members.find((m) => !m.named && m.address === canonical);
      if (!current || !spec || !unnamed || spec.members.some((m) => m.name === node)) return false;
      const next: FleetSpec = {
        clusters: current.stored.spec.clusters.map((c) =>
          c.name !== cluster ? c : { ...c, bootstrap: c.bootstrap === unnamed.name ? node : c.bootstrap, members: c.members.map((m) => (m === unnamed ? { ...m, name: node, named: true } : m)) },
        ),
      };
      try {
        const revision = await this.specs.put({ ...current.stored, spec: next, source: `named by the agent of ${node}` }, current.revision);
        this.events.publish(cluster, { kind: "spec.applied", id: `spec:${revision}:${cluster}`, node, message: `the member at ${canonical} is ${node}, as its agent says (spec revision ${revision})`, data: { revision, source: "enrollment", members: [], warnings: [] } });
        return true;
      } catch (err) {
        if ((err as FleetError).code !== ErrorCode.SpecConflict) throw err;
      }
    }
    return false;
  }
}
