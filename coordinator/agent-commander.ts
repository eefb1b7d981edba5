import type { NatsConnection } from "@nats-io/transport-node";
import {
  CommandReply,
  ErrorCode,
  FleetError,
  MacPurpose,
  randomNonce,
  signed,
  Subject,
  verifyMac,
  WireCodec,
  type ClusterKeys,
  type CommandBody,
  type CommandResult,
} from "../shared/index.js";

const replyCodec = new WireCodec("CommandReply", CommandReply);
const encoder = new TextEncoder();

export const COMMAND_TIMEOUTS: Record<CommandBody["kind"], number> = {
  "mint-token": 10_000,
  probe: 10_000,
  "set-member": 15_000,
  "apply-config": 15_000,
  "remove-member": 150_000,
  evacuate: 600_000,
  restore: 600_000,
  "ensure-pool": 120_000,
  "ensure-network": 120_000,
};

/** Sends signed commands to one agent and checks that the answer is signed by an agent of the same cluster. */
export class AgentCommander {
  constructor(
    private readonly nc: NatsConnection,
    private readonly keysOf: (cluster: string) => ClusterKeys | null,
    private readonly instanceOf: (cluster: string, node: string) => string | null,
    private readonly onInvalid: (reason: string) => void,
  ) {}

  async run<K extends CommandBody["kind"]>(cluster: string, node: string, body: Extract<CommandBody, { kind: K }>): Promise<Extract<CommandResult, { kind: K }>> {
    const keys = this.keysOf(cluster);
    const instance = this.instanceOf(cluster, node);
    if (!keys) throw new FleetError(ErrorCode.UnknownCluster, `no cluster ${cluster} in the spec`);
    if (!instance) throw new FleetError(ErrorCode.AgentUnreachable, `the agent of ${node} has no session`);
    const id = randomNonce(16);
    const command = signed(keys.mac, MacPurpose.Command, { id, cluster, node, instance, issuedAt: Date.now(), body });
    let data: Uint8Array;
    try {
      data = (await this.nc.request(Subject.command(cluster, node), encoder.encode(JSON.stringify(command)), { timeout: COMMAND_TIMEOUTS[body.kind] })).data;
    } catch (cause) {
      throw new FleetError(ErrorCode.AgentUnreachable, `the agent of ${node} did not answer '${body.kind}'`, { cause });
    }
    const decoded = replyCodec.decode(data);
    if (!decoded.ok) {
      this.onInvalid(decoded.reason);
      throw new FleetError(ErrorCode.MessageInvalid, decoded.reason);
    }
    const reply = decoded.value;
    if (reply.inReplyTo !== id || !verifyMac(keys.mac, MacPurpose.CommandReply, reply)) {
      const reason = "CommandReply: not signed with the cluster key or not for this command";
      this.onInvalid(reason);
      throw new FleetError(ErrorCode.MessageInvalid, reason);
    }
    if (!reply.ok) throw new FleetError(reply.error.code as ErrorCode, `${node}: ${reply.error.message}`);
    if (reply.result.kind !== body.kind) throw new FleetError(ErrorCode.MessageInvalid, `${node} answered '${reply.result.kind}' to '${body.kind}'`);
    return reply.result as Extract<CommandResult, { kind: K }>;
  }
}
