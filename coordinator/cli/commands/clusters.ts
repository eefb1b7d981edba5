import type { Command } from "commander";
import { call, type Globals } from "../api-client.js";
import { out, show, table } from "../output.js";

interface Summary { name: string; phase: string; convergence: { state: string }; health: string; held: boolean; members: number; online: number; voters: number | null; votersOnline: number | null; failuresTolerated: number | null; owner: string | null; operation: { kind: string; member: string | null; phase: string } | null }
interface Status extends Summary {
  convergence: { state: string; reason: string };
  quorum: { majority: number } | null;
  reasons: { message: string; expected?: boolean }[];
  guidance: string[];
  memberList: { name: string; address: string; state: string; status: string | null; roles: string[]; agent: { online: boolean }; incus: { version: string | null }; reason: string }[];
  plan: { object: string; action: string; status: string; reason: string; now: unknown; wanted: unknown }[];
  observed: { pools: { name: string; status: string }[]; networks: { name: string; status: string }[] } | null;
}

export function clusterCommands(program: Command, globals: () => Globals): void {
  program
    .command("clusters")
    .description("list clusters with their phase, convergence, health and quorum")
    .action(async () => {
      const g = globals();
      const data = await call<Summary[]>(g, "GET", "/v1/clusters");
      out(g, data, () =>
        table([
          ["CLUSTER", "PHASE", "SPEC", "HEALTH", "HELD", "MEMBERS", "ONLINE", "VOTERS", "TOLERATES", "OWNER", "OPERATION"],
          ...data.map((c) => [c.name, c.phase, c.convergence.state, c.health, c.held ? "yes" : "no", c.members, c.online, c.voters === null ? null : `${c.votersOnline}/${c.voters}`, c.failuresTolerated, c.owner, c.operation ? `${c.operation.kind} ${c.operation.member ?? ""} (${c.operation.phase})` : null]),
        ]),
      );
    });

  program
    .command("status <cluster>")
    .description("members, quorum, what is wrong and what to do, and what differs from the spec")
    .action(async (cluster: string) => {
      const g = globals();
      const s = await call<Status>(g, "GET", `/v1/clusters/${encodeURIComponent(cluster)}`);
      out(g, s, () => {
        const lines = [
          `${s.name}: ${s.phase}; spec ${s.convergence.state} (${s.convergence.reason}); health ${s.health}${s.held ? ", destructive actions held" : ""}`,
          s.quorum ? `voters ${s.votersOnline}/${s.voters} online, majority ${s.quorum.majority}, tolerates ${s.failuresTolerated} more failure(s)` : "no view of the cluster yet",
        ];
        if (s.operation) lines.push(`in progress: ${s.operation.kind} of ${s.operation.member} (${s.operation.phase})`);
        lines.push("", table([["MEMBER", "ADDRESS", "STATE", "STATUS", "ROLES", "AGENT", "INCUS", "WHY"], ...s.memberList.map((m) => [m.name, m.address, m.state, m.status, m.roles.join(","), m.agent.online ? "up" : "silent", m.incus.version, m.reason])]));
        if (s.observed) lines.push("", `pools: ${s.observed.pools.map((p) => `${p.name} (${p.status})`).join(", ") || "none"}; networks: ${s.observed.networks.map((n) => `${n.name} (${n.status})`).join(", ") || "none"}`);
        if (s.reasons.length) lines.push("", "problems:", ...s.reasons.map((r) => `  - ${r.message}${r.expected ? " (incus-fleet is doing this)" : ""}`));
        if (s.guidance.length) lines.push("", "what to do:", ...s.guidance.map((x, i) => `  ${i + 1}. ${x}`));
        if (s.plan.length) lines.push("", "differences from the spec:", ...s.plan.map((p) => `  ${p.status.padEnd(11)} ${p.action} ${p.object}: ${show(p.now)} -> ${show(p.wanted)} (${p.reason})`));
        return lines.join("\n");
      });
    });

  program
    .command("plan [cluster]")
    .description("a dry run of the stored spec: each change with its value now and the value wanted, each refusal with its reason")
    .action(async (cluster?: string) => {
      const g = globals();
      const data = await call<{ cluster: string; phase: string; changes: Status["plan"] }[]>(g, "GET", cluster ? `/v1/clusters/${encodeURIComponent(cluster)}/plan` : "/v1/plan");
      out(g, data, () =>
        data.map((p) => [`${p.cluster} (${p.phase})${p.changes.length === 0 ? ": matches the spec" : ""}`, ...p.changes.map((c) => `  ${c.status.padEnd(11)} ${c.action} ${c.object}: ${show(c.now)} -> ${show(c.wanted)}  (${c.reason})`)].join("\n")).join("\n\n"),
      );
    });

  program
    .command("nodes")
    .description("every host the spec names or the clusters list, and what it was last told")
    .action(async () => {
      const g = globals();
      const data = await call<{ cluster: string; name: string; state: string; reason: string }[]>(g, "GET", "/v1/nodes");
      out(g, data, () => table([["CLUSTER", "NODE", "STATE", "WHY"], ...data.map((n) => [n.cluster, n.name, n.state, n.reason])]));
    });

  program
    .command("coordinators")
    .description("the coordinators sharing the fleet, and the clusters each owns")
    .action(async () => {
      const g = globals();
      const data = await call<{ id: string; name: string; owns: string[] }[]>(g, "GET", "/v1/coordinators");
      out(g, data, () => table([["COORDINATOR", "ID", "OWNS"], ...data.map((c) => [c.name, c.id, c.owns.join(", ")])]));
    });
}
