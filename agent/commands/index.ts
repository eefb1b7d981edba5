import {
  encodeJoinToken,
  ErrorCode,
  FleetError,
  seal,
  type ClusterKeys,
  type CommandBody,
  type CommandResult,
} from "../../shared/index.js";
import { tokenAssociatedData } from "../formation.js";
import type { IncusClient } from "../incus-client.js";
import type { Probe } from "../tcp-probe.js";
import { hostAction, type HostActionCommands } from "./host-actions.js";
import { changeState, clearEvacuationOrigin, removeMember } from "./maintenance.js";
import { convergeResource, deleteResource, observe, observedMember, observeResource } from "./resources.js";

export interface CommandContext {
  incus: IncusClient;
  keys: ClusterKeys;
  cluster: string;
  /** This member's cluster address, handed to joiners as the address to join through. */
  address: string;
  hostActions: HostActionCommands;
  /** The cluster's check that it can reach a joiner back goes through this. */
  probe: Probe;
}

/**
 * Runs one coordinator command against the local Incus. Each handler is
 * idempotent where Incus allows: a repeated command (after a lost reply, or
 * from a coordinator that took the cluster over) does no harm.
 */
export async function runCommand(ctx: CommandContext, body: CommandBody): Promise<CommandResult> {
  const { incus } = ctx;
  switch (body.kind) {
    case "mint-token": {
      // Minting cancels any earlier token for the same name, so a retry never leaves two valid tokens.
      const [op, server] = await Promise.all([incus.mintJoinToken(body.joiner), incus.server()]);
      const meta = op.metadata ?? {};
      const token = encodeJoinToken({
        serverName: String(meta.serverName ?? body.joiner),
        fingerprint: String(meta.fingerprint ?? ""),
        addresses: Array.isArray(meta.addresses) ? meta.addresses.map(String) : [],
        secret: String(meta.secret ?? ""),
        expiresAt: String(meta.expiresAt ?? ""),
      });
      return {
        kind: "mint-token",
        sealedToken: seal(ctx.keys.seal, token, tokenAssociatedData(ctx.cluster, body.joiner)),
        clusterCertificate: server.environment.certificate,
        clusterAddress: ctx.address,
      };
    }
    case "probe": {
      const r = await ctx.probe(body.address, body.attempts, 1_000);
      return { kind: "probe", reachable: r.reachable, rttMs: r.rttMs, ...(r.error ? { error: r.error } : {}) };
    }
    case "set-member": {
      const existing = new Set(await incus.groups());
      for (const group of body.groups) if (!existing.has(group)) await incus.createGroup(group);
      const { member, etag } = await incus.member(body.member);
      // Incus takes the whole member: the database roles are sent back as they are (it refuses changes to them).
      await incus.updateMember(body.member, { description: body.description, failure_domain: body.failureDomain, groups: body.groups, roles: member.roles ?? [], config: member.config ?? {} }, etag);
      return { kind: "set-member", member: observedMember((await incus.member(body.member)).member) };
    }
    case "apply-config": {
      const server = await incus.server();
      const changed = Object.entries(body.config).filter(([k, v]) => server.config[k] !== v);
      // PATCH, never PUT: a PUT of some keys clears every other one, the member's own addresses included.
      if (changed.length > 0) await incus.patchServerConfig(Object.fromEntries(changed));
      const config = changed.length > 0 ? (await incus.server()).config : server.config;
      return { kind: "apply-config", changed: changed.map(([k]) => k), config };
    }
    case "remove-member":
      return { kind: "remove-member", removed: await removeMember(incus, body.member, body.force) };
    case "evacuate":
      return { kind: "evacuate", ...(await changeState(incus, "evacuate", body.member, body.mode)) };
    case "restore":
      return { kind: "restore", ...(await changeState(incus, "restore", body.member)) };
    case "clear-evacuation-origin":
      return { kind: "clear-evacuation-origin", cleared: await clearEvacuationOrigin(incus, body.member) };
    case "observe":
      return { kind: "observe", observation: await observe(incus, body) };
    case "converge-pool":
    case "converge-network": {
      const kind = body.kind === "converge-pool" ? "pool" : "network";
      const changes = await convergeResource(incus, {
        kind,
        name: body.name,
        type: body.kind === "converge-pool" ? body.driver : body.type,
        description: body.description,
        config: body.config,
        memberConfig: body.memberConfig,
        members: body.members,
      });
      const observed = await observeResource(incus, kind, body.name, body.members);
      return { kind: body.kind, changes, ...(observed ? { observed } : {}) };
    }
    case "delete-pool":
      return { kind: "delete-pool", deleted: await deleteResource(incus, "pool", body.name) };
    case "delete-network":
      return { kind: "delete-network", deleted: await deleteResource(incus, "network", body.name) };
    case "host-action":
      return { kind: "host-action", detail: await hostAction(ctx.hostActions, body.action, body.targetVersion) };
    default: {
      const unknown: never = body;
      throw new FleetError(ErrorCode.BadRequest, `unknown command ${JSON.stringify(unknown)}`);
    }
  }
}
