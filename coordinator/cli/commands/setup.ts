import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseSpecText } from "../../../shared/index.js";
import { setupFleet } from "../../setup/setup.js";
import { CliError, type Globals } from "../api-client.js";
import { out } from "../output.js";

function list(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function setupCommand(program: Command, globals: () => Globals): void {
  program
    .command("setup")
    .description("write a locked-down NATS set-up for the fleet in the spec: nats-server.conf, an nkey per coordinator and per host, the signing key, an API token, TLS")
    .requiredOption("--spec <file>", "the spec (any shape apply takes): every present member gets a credential")
    .requiredOption("--out <dir>", "where to write it; running setup again keeps every key made before")
    .requiredOption("--nats <host:port>", "where nats-server listens (one per server; three or more make a JetStream cluster)", list)
    .option("--route <host:port>", "each server's route listener, for a JetStream cluster (in the order of --nats)", list)
    .option("--coordinators <n>", "coordinators that get a credential", "2")
    .option("--jetstream-dir <dir>", "nats-server's JetStream store", "/var/lib/nats/jetstream")
    .option("--tls-host <name>", "generate a CA and certificates valid for this server name or address", list)
    .option("--mutual-tls", "the servers also verify client certificates (one is made per coordinator and host)")
    .option("--name <address=node>", "the node name of a host the spec gives only by address (the Salt bootstrap host)", list)
    .action(async (opts: { spec: string; out: string; nats: string[]; route?: string[]; coordinators: string; jetstreamDir: string; tlsHost?: string[]; mutualTls?: boolean; name?: string[] }) => {
      const g = globals();
      let text: string;
      try {
        text = readFileSync(opts.spec, "utf8");
      } catch (err) {
        throw new CliError(`cannot read ${opts.spec}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const { spec } = parseSpecText(text, { passwordsOptional: true });
      const names = new Map((opts.name ?? []).map((n) => n.split("=") as [string, string]));
      const hosts = spec.clusters.flatMap((c) =>
        c.members
          .filter((m) => m.present)
          .map((m) => {
            const name = m.named ? m.name : names.get(m.address) ?? names.get(m.address.replace(/:8443$/, ""));
            if (!name) throw new CliError(`the member at ${m.address} of ${c.name} has no name yet: give --name ${m.address}=<node name> (the name its agent runs with)`);
            return { cluster: c.name, node: name, address: m.address };
          }),
      );
      if (opts.nats.length > 1 && (opts.route ?? []).length !== opts.nats.length) throw new CliError("--route: give one route listener per --nats server for a JetStream cluster");
      const coordinators = Number(opts.coordinators);
      if (!Number.isInteger(coordinators) || coordinators < 1) throw new CliError(`--coordinators: '${opts.coordinators}' is not a positive whole number`);
      const result = await setupFleet({
        out: opts.out,
        hosts,
        coordinators,
        servers: opts.nats.map((listen, i) => ({ name: `nats-${i + 1}`, listen, ...(opts.nats.length > 1 ? { clusterListen: opts.route![i]! } : {}) })),
        jetstreamDir: opts.jetstreamDir,
        tls: opts.tlsHost?.length ? { hosts: opts.tlsHost, mutual: opts.mutualTls === true } : null,
      });
      out(g, { serverConfigs: result.serverConfigs, urls: result.urls, hosts: [...result.hosts.keys()] }, () =>
        [
          `wrote ${result.serverConfigs.join(", ")} for nats-server (nats-server -c <file>)`,
          `clients connect to ${result.urls.join(", ")}`,
          `${result.coordinators.length} coordinator credential(s) in ${opts.out}/coordinators/, ${result.hosts.size} host credential(s) in ${opts.out}/hosts/<cluster>/<node>/`,
          "On each host: copy its directory to /etc/incus-fleet (nats.nk, coordinator.pub, agent.yaml) and put the cluster password in /etc/incus-fleet/cluster-password.",
          "On each coordinator: copy coordinators/coordinator-<n>/ to /etc/incus-fleet, coordinators/signing.key to /etc/incus-fleet/coordinator/signing.key, and api-token.",
        ].join("\n"),
      );
    });
}
