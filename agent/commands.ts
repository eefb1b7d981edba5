import {
  encodeJoinToken,
  ErrorCode,
  FleetError,
  seal,
  type ClusterKeys,
  type CommandBody,
  type CommandResult,
  type InstancePlacement,
} from "../shared/index.js";
import type { IncusClient } from "./incus-client.js";
import { tokenAssociatedData } from "./formation.js";
import { ensureNetwork, ensureStoragePool } from "./resources.js";
import { probeTcp } from "./tcp-probe.js";

export interface CommandContext {
  incus: IncusClient;
  keys: ClusterKeys;
  cluster: string;
  /** This member's cluster address, handed to joiners as the address to join through. */
  address: string;
}

async function placements(incus: IncusClient): Promise<InstancePlacement[]> {
  return (await incus.instances()).map((i) => ({ name: i.name, project: i.project, location: i.location, status: i.status }));
}

/**
 * Runs one coordinator command against the local Incus. Each handler is
 * idempotent where Incus allows: a repeated command after a lost reply does
 * no harm.
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
      const r = await probeTcp(body.address, body.attempts, 1_000);
      return { kind: "probe", reachable: r.reachable, rttMs: r.rttMs, ...(r.error ? { error: r.error } : {}) };
    }
    case "set-member": {
      const existing = new Set(await incus.groups());
      for (const group of body.groups) if (!existing.has(group)) await incus.createGroup(group);
      const { member, etag } = await incus.member(body.member);
      await incus.updateMember(
        body.member,
        {
          description: body.description,
          failure_domain: body.failureDomain,
          groups: body.groups,
          roles: member.roles ?? [],
          config: member.config ?? {},
        },
        etag,
      );
      return { kind: "set-member" };
    }
    case "apply-config": {
      const server = await incus.server();
      const changed = Object.entries(body.config).filter(([k, v]) => server.config[k] !== v);
      if (changed.length > 0) await incus.patchServerConfig(Object.fromEntries(changed));
      return { kind: "apply-config", changed: changed.map(([k]) => k) };
    }
    case "remove-member": {
      const names = (await incus.members()).map((m) => m.server_name);
      if (names.includes(body.member)) await incus.removeMember(body.member, body.force);
      return { kind: "remove-member" };
    }
    case "evacuate":
    case "restore": {
      const before = await placements(incus);
      await incus.changeMemberState(body.member, body.kind, body.kind === "evacuate" ? body.mode : undefined);
      const after = await placements(incus);
      return body.kind === "evacuate" ? { kind: "evacuate", before, after } : { kind: "restore", before, after };
    }
    case "ensure-pool":
      return { kind: "ensure-pool", created: await ensureStoragePool(incus, body) };
    case "ensure-network":
      return { kind: "ensure-network", created: await ensureNetwork(incus, body) };
    default: {
      const unknown: never = body;
      throw new FleetError(ErrorCode.BadRequest, `unknown command ${JSON.stringify(unknown)}`);
    }
  }
}
