import type { NatsConnection } from "@nats-io/transport-node";
import {
  CommandReply,
  ErrorCode,
  FleetError,
  isErrorCode,
  openMacFrame,
  randomNonce,
  replyContext,
  signedFrame,
  Subject,
  WireCodec,
  type ClusterKeys,
  type CommandBody,
  type CommandResult,
  type SigningKey,
} from "../../shared/index.js";

const replyCodec = new WireCodec("CommandReply", CommandReply);

export const COMMAND_TIMEOUTS: Record<CommandBody["kind"], number> = {
  "mint-token": 10_000,
  probe: 10_000,
  "set-member": 15_000,
  "apply-config": 15_000,
  "remove-member": 150_000,
  evacuate: 900_000,
  restore: 900_000,
  "clear-evacuation-origin": 60_000,
  observe: 20_000,
  "converge-pool": 120_000,
  "converge-network": 120_000,
  "delete-pool": 60_000,
  "delete-network": 60_000,
  "host-action": 900_000,
};

/** Where commands go, and who may answer them. */
export interface CommandPorts {
  keysOf(cluster: string): ClusterKeys | null;
  /** The agent process holding the node's session. */
  instanceOf(cluster: string, node: string): string | null;
  epochOf(cluster: string): number | null;
}

/** How the controllers reach agents; table tests give a stand-in. */
export interface CommandRunner {
  run<K extends CommandBody["kind"]>(cluster: string, node: string, body: Extract<CommandBody, { kind: K }>): Promise<Extract<CommandResult, { kind: K }>>;
}

/**
 * Sends commands to one agent, signed with the coordinators' key and
 * carrying this coordinator's lease epoch (an agent refuses commands from an
 * owner older than one it has heard from), and checks that the answer is
 * framed with the cluster's key and answers this very command.
 */
export class AgentCommander implements CommandRunner {
  constructor(
    private readonly nc: NatsConnection,
    private readonly signing: SigningKey,
    private readonly ports: CommandPorts,
    private readonly onInvalid: (reason: string) => void,
  ) {}

  async run<K extends CommandBody["kind"]>(cluster: string, node: string, body: Extract<CommandBody, { kind: K }>): Promise<Extract<CommandResult, { kind: K }>> {
    const keys = this.ports.keysOf(cluster);
    const instance = this.ports.instanceOf(cluster, node);
    const epoch = this.ports.epochOf(cluster);
    if (!keys) throw new FleetError(ErrorCode.UnknownCluster, `no cluster ${cluster} in the spec`);
    if (epoch === null) throw new FleetError(ErrorCode.Unavailable, `this coordinator does not own ${cluster}`);
    if (!instance) throw new FleetError(ErrorCode.AgentUnreachable, `the agent of ${node} has no session`);
    const id = randomNonce(16);
    const subject = Subject.command(cluster, node);
    const command = { id, cluster, node, instance, epoch, issuedAt: Date.now(), body };
    let data: Uint8Array;
    try {
      data = (await this.nc.request(subject, signedFrame(this.signing, subject, command), { timeout: COMMAND_TIMEOUTS[body.kind] })).data;
    } catch (cause) {
      throw new FleetError(ErrorCode.AgentUnreachable, `the agent of ${node} did not answer '${body.kind}'`, { cause });
    }
    const opened = openMacFrame(keys.mac, replyContext(subject), data);
    if (!opened.ok) {
      this.onInvalid(`CommandReply: ${opened.reason}`);
      throw new FleetError(ErrorCode.MessageInvalid, `the answer to '${body.kind}' is ${opened.reason}`);
    }
    const decoded = replyCodec.decodeText(opened.json);
    if (!decoded.ok || decoded.value.inReplyTo !== id) {
      const reason = decoded.ok ? "CommandReply: not an answer to this command" : decoded.reason;
      this.onInvalid(reason);
      throw new FleetError(ErrorCode.MessageInvalid, reason);
    }
    const reply = decoded.value;
    if (!reply.ok) throw new FleetError(isErrorCode(reply.error.code) ? reply.error.code : ErrorCode.Incus, `${node}: ${reply.error.message}`);
    if (reply.result.kind !== body.kind) throw new FleetError(ErrorCode.MessageInvalid, `${node} answered '${reply.result.kind}' to '${body.kind}'`);
    return reply.result as Extract<CommandResult, { kind: K }>;
  }
}
