import { hostname } from "node:os";
import { agentInboxPrefix, commonSchema, loadConfig, natsOptionsOf, readSecretFile, type NatsOptions } from "../shared/index.js";
import type { HostActionCommands } from "./commands/host-actions.js";

const agentSchema = {
  ...commonSchema,
  coordinatorKeyFile: {
    doc: "The coordinators' public signing key (PEM), written by incus-fleet setup: answers and commands not signed with it are refused",
    format: "nonempty-string",
    default: "/etc/incus-fleet/coordinator.pub",
    env: "FLEET_COORDINATOR_KEY_FILE",
    arg: "coordinator-key-file",
  },
  hostActions: {
    // The defaults start incus-fleet-action@.service (systemd/), which runs as root what the agent's own user may not.
    restartIncus: {
      doc: "Command that restarts Incus on this host, for rollouts ('' refuses the action)",
      format: String,
      default: "systemctl start incus-fleet-action@restart-incus.service",
      env: "FLEET_ACTION_RESTART_INCUS",
      arg: "action-restart-incus",
    },
    upgradeIncus: {
      doc: "Command that upgrades Incus on this host to $INCUS_TARGET_VERSION and restarts it ('' refuses the action)",
      format: String,
      default: 'systemctl start "incus-fleet-action@upgrade-incus:$(systemd-escape "$INCUS_TARGET_VERSION").service"',
      env: "FLEET_ACTION_UPGRADE_INCUS",
      arg: "action-upgrade-incus",
    },
    reboot: { doc: "Command that reboots this host ('' refuses the action)", format: String, default: "systemctl start incus-fleet-action@reboot.service", env: "FLEET_ACTION_REBOOT", arg: "action-reboot" },
    candidateVersion: {
      doc: "Command that prints the Incus version this host's packages would install",
      format: String,
      default: "apt-cache policy incus | sed -n 's/ *Candidate: //p'",
      env: "FLEET_CANDIDATE_VERSION_COMMAND",
      arg: "candidate-version-command",
    },
  },
  cluster: {
    name: { doc: "Name of the cluster this host belongs to, as in the spec", format: "nonempty-string", default: "default", env: "FLEET_CLUSTER", arg: "cluster" },
    password: { doc: "The cluster password (prefer passwordFile)", format: String, default: "", sensitive: true, env: "FLEET_CLUSTER_PASSWORD", arg: "cluster-password" },
    passwordFile: { doc: "File holding the cluster password", format: String, default: "", env: "FLEET_CLUSTER_PASSWORD_FILE", arg: "cluster-password-file" },
  },
  node: {
    name: { doc: "This member's name, as in the spec", format: "nonempty-string", default: hostname(), env: "FLEET_NODE_NAME", arg: "node" },
    address: { doc: "This member's cluster address (host or host:port)", format: String, default: "", env: "FLEET_NODE_ADDRESS", arg: "address" },
  },
  incus: {
    socket: { doc: "Path of the Incus unix socket", format: "nonempty-string", default: "/var/lib/incus/unix.socket", env: "FLEET_INCUS_SOCKET", arg: "incus-socket" },
    timeoutMs: { doc: "Timeout for one Incus REST call", format: "nat", default: 10_000, env: "FLEET_INCUS_TIMEOUT_MS", arg: "incus-timeout-ms" },
  },
  heartbeat: {
    intervalMs: { doc: "Heartbeat interval", format: "nat", default: 1_000, env: "FLEET_HEARTBEAT_INTERVAL_MS", arg: "heartbeat-interval-ms" },
    clockEvery: {
      // Each assignment pulled measures the clock as well (by default a member pulls every 30 s): a time request is for agents that pull less often.
      doc: "Ask the coordinator for the time when the clock was last measured this many heartbeats ago (or the host's clock was stepped)",
      format: "nat",
      default: 60,
      env: "FLEET_CLOCK_EVERY",
      arg: "clock-every",
    },
    viewEvery: {
      // Every read of the member list asks the database leader: once a second from every member slowed Incus's own joins.
      doc: "Read the cluster's member list every N heartbeats",
      format: "nat",
      default: 3,
      env: "FLEET_VIEW_EVERY",
      arg: "view-every",
    },
  },
  probe: {
    peersPerRound: { doc: "At most this many peers are probed per heartbeat; the rest in later rounds", format: "nat", default: 8, env: "FLEET_PROBE_PEERS", arg: "probe-peers" },
    timeoutMs: { doc: "TCP connect timeout of one latency probe", format: "nat", default: 1_000, env: "FLEET_PROBE_TIMEOUT_MS", arg: "probe-timeout-ms" },
  },
  pull: {
    intervalMs: {
      doc: "How often a member's agent pulls its assignment when not nudged (the coordinator nudges a cluster's agents when a member's assignment changes)",
      format: "nat",
      default: 30_000,
      env: "FLEET_PULL_INTERVAL_MS",
      arg: "pull-interval-ms",
    },
    requestTimeoutMs: { doc: "Timeout of one request to the coordinator", format: "nat", default: 5_000, env: "FLEET_REQUEST_TIMEOUT_MS", arg: "request-timeout-ms" },
  },
};

export interface AgentConfig {
  nats: NatsOptions;
  coordinatorKeyFile: string;
  hostActions: HostActionCommands;
  candidateVersionCommand: string;
  logLevel: string;
  cluster: string;
  password: string;
  node: string;
  address: string;
  incusSocket: string;
  incusTimeoutMs: number;
  heartbeatIntervalMs: number;
  clockEvery: number;
  viewEvery: number;
  probePeersPerRound: number;
  probeTimeoutMs: number;
  pullIntervalMs: number;
  requestTimeoutMs: number;
}

export function loadAgentConfig(args?: string[], env?: NodeJS.ProcessEnv): AgentConfig {
  const c = loadConfig(agentSchema, args, env);
  const passwordFile = c.get("cluster.passwordFile");
  const password = passwordFile ? readSecretFile(passwordFile) : c.get("cluster.password");
  if (!password) throw new Error("cluster.password: not set (give cluster.passwordFile, FLEET_CLUSTER_PASSWORD_FILE or --cluster-password-file)");
  const address = c.get("node.address");
  if (!address) throw new Error("node.address: not set (the address other members reach this host on, e.g. 192.0.2.11:8443)");
  const cluster = c.get("cluster.name");
  const node = c.get("node.name");
  const actions = c.get("hostActions");
  return {
    nats: natsOptionsOf(c as never, `agent ${cluster}/${node}`, agentInboxPrefix(cluster, node)),
    coordinatorKeyFile: c.get("coordinatorKeyFile"),
    hostActions: {
      ...(actions.restartIncus ? { "restart-incus": actions.restartIncus } : {}),
      ...(actions.upgradeIncus ? { "upgrade-incus": actions.upgradeIncus } : {}),
      ...(actions.reboot ? { reboot: actions.reboot } : {}),
    },
    candidateVersionCommand: actions.candidateVersion,
    logLevel: c.get("log.level"),
    cluster,
    password,
    node,
    address,
    incusSocket: c.get("incus.socket"),
    incusTimeoutMs: c.get("incus.timeoutMs"),
    heartbeatIntervalMs: c.get("heartbeat.intervalMs"),
    clockEvery: c.get("heartbeat.clockEvery"),
    viewEvery: c.get("heartbeat.viewEvery"),
    probePeersPerRound: c.get("probe.peersPerRound"),
    probeTimeoutMs: c.get("probe.timeoutMs"),
    pullIntervalMs: c.get("pull.intervalMs"),
    requestTimeoutMs: c.get("pull.requestTimeoutMs"),
  };
}
