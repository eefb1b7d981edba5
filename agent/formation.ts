import {
  certificateFingerprint,
  decodeJoinToken,
  ErrorCode,
  FleetError,
  scrub,
  unseal,
  type Assignment,
  type ClusterKeys,
} from "../shared/index.js";
import type { IncusClient } from "./incus-client.js";

type Bootstrap = Extract<Assignment, { kind: "bootstrap" }>;
type Join = Extract<Assignment, { kind: "join" }>;

export type FormationResult = { done: "now" | "already" };

export function tokenAssociatedData(cluster: string, node: string): string {
  return `${cluster}/${node}`;
}

/**
 * Enables clustering on this member, unless it already is clustered: a second
 * `cluster enable` is exactly what must never happen.
 */
export async function ensureBootstrapped(incus: IncusClient, assignment: Bootstrap): Promise<FormationResult> {
  const server = await incus.server();
  if (server.environment.server_clustered) {
    if (server.environment.server_name !== assignment.serverName) {
      throw new FleetError(ErrorCode.Incus, `already clustered as '${server.environment.server_name}', not '${assignment.serverName}'`);
    }
    return { done: "already" };
  }
  if (server.config["core.https_address"] !== assignment.address) {
    await incus.patchServerConfig({ "core.https_address": assignment.address });
  }
  await incus.enableCluster(assignment.serverName);
  return { done: "now" };
}

/**
 * Joins the cluster with a sealed single-use token. The token's fingerprint
 * must match the certificate the coordinator passed on: a token for another
 * cluster, or a swapped certificate, stops the join before anything changes.
 */
export async function ensureJoined(incus: IncusClient, keys: ClusterKeys, cluster: string, assignment: Join): Promise<FormationResult> {
  const server = await incus.server();
  if (server.environment.server_clustered) return { done: "already" };

  const token = unseal(keys.seal, assignment.sealedToken, tokenAssociatedData(cluster, assignment.serverName));
  const fields = decodeJoinToken(token);
  if (fields.serverName !== assignment.serverName) {
    throw new FleetError(ErrorCode.TokenMismatch, `join token is for '${fields.serverName}', not for this member '${assignment.serverName}'`);
  }
  const fingerprint = certificateFingerprint(assignment.clusterCertificate);
  if (fingerprint !== fields.fingerprint) {
    throw new FleetError(
      ErrorCode.TokenMismatch,
      `the cluster certificate (${fingerprint.slice(0, 12)}…) does not match the join token (${fields.fingerprint.slice(0, 12)}…); refusing to join`,
    );
  }
  // The join itself opens the member's listener on its server address; setting it beforehand only slows the join.
  try {
    await incus.joinCluster({
      serverName: assignment.serverName,
      serverAddress: assignment.address,
      clusterAddress: assignment.clusterAddress,
      clusterCertificate: assignment.clusterCertificate,
      token,
      memberConfig: assignment.memberConfig,
    });
  } catch (err) {
    const e = err instanceof FleetError ? err : new FleetError(ErrorCode.Incus, String(err));
    throw new FleetError(e.code, scrub(e.message, [token, fields.secret]), { cause: undefined });
  }
  return { done: "now" };
}
