import { createHash, randomBytes, randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { ClusterNetwork } from "../../agent/cluster-network.js";
import { certificateFingerprint, decodeJoinToken } from "../../shared/index.js";

/**
 * A SIMULATED Incus, for the scale benchmark only: thousands of members on
 * one machine are beyond what real incusd daemons can do here. Each
 * simulated member is a standalone Incus until it bootstraps a cluster or
 * joins one through a member's address with a token that member minted,
 * exactly as the agent drives a real one. It answers every REST call the
 * agent makes, over its own unix socket, with the same JSON envelopes; the
 * members of a cluster share the cluster's state in memory. No network, no
 * containers, no database, no storage: joins take a fixed simulated time,
 * and the pool, network and instance lists are empty.
 */

/** An Incus-generated certificate: the cluster certificate of every simulated cluster (its fingerprint is what join tokens carry). */
export const SIMULATED_CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIB+zCCAYGgAwIBAgIRAKQvwKfP2TbtLXWv951ZcnIwCgYIKoZIzj0EAwMwMDEZ
MBcGA1UEChMQTGludXggQ29udGFpbmVyczETMBEGA1UEAwwKcm9vdEBub2RlMTAe
Fw0yNjExMjQyMTIwNTBaFw0zNjExMjEyMTIwNTBaMDAxGTAXBgNVBAoTEExpbnV4
IENvbnRhaW5lcnMxEzARBgNVBAMMCnJvb3RAbm9kZTEwdjAQBgcqhkjOPQIBBgUr
gQQAIgNiAARq1+93VdSif2shG8uQXEOCN5yT+7wr3VXsWSbJCIMHC7okxuSw6Iyd
9hAnb2cb5l6aEJA8GBxccl6kjykI8h/USs/W4dIeYNO1R6SHDz7PLtrjVUV7Ja61
O/ffUHf6QFCjXzBdMA4GA1UdDwEB/wQEAwIFoDATBgNVHSUEDDAKBggrBgEFBQcD
ATAMBgNVHRMBAf8EAjAAMCgGA1UdEQQhMB+CBW5vZGUxhwR/AAABhxAAAAAAAAAA
AAAAAAAAAAABMAoGCCqGSM49BAMDA2gAMGUCMC8QXdc+rknNTzXq8QCx4bINVmdk
N10KFOutYFIG65+84kO54d9fnlD+EBzCJtAVcwIxAJ28g1l/lxLMBVqYSQR04PvY
SzrwOy+MOOfbBBhddV5PfPZLPOrzGbRUZeGGJVGp0A==
-----END CERTIFICATE-----
`;
export const SIMULATED_FINGERPRINT = certificateFingerprint(SIMULATED_CERTIFICATE);
/** About as many as Incus 6.0 has: the agent reports the count, and the list is most of what GET /1.0 weighs. */
const API_EXTENSIONS = Array.from({ length: 450 }, (_, i) => `extension_${i}`);
const STORAGE_DRIVERS = ["dir", "btrfs", "lvm", "zfs"].map((Name) => ({ Name, Version: "1", Remote: false }));
const MAX_VOTERS = 3;
const MAX_STANDBY = 2;
/** The TCP connect round trip the simulated cluster network answers latency probes with. */
export const SIMULATED_RTT_MS = 0.3;
/** Incus keeps finished operations for a while; a wait that comes after that gets a 404, as it would. */
const FINISHED_OPERATION_KEPT_MS = 5_000;

type OperationStatus = 103 | 200 | 400 | 401;

interface Operation {
  id: string;
  class: "task" | "token";
  description: string;
  status: string;
  status_code: OperationStatus;
  metadata: Record<string, unknown> | null;
  err: string;
  location: string;
  created_at: string;
  /** The member whose daemon runs it: an unclustered member lists its own operations only. */
  owner: SimulatedMember;
  waiters: (() => void)[];
}

export class SimulatedCluster {
  /** Clustered members, in the order they joined: the first three are the database voters. */
  readonly members: SimulatedMember[] = [];
  /** Rises whenever the member list or a member's settings change; the cached answers are rebuilt only then. */
  version = 0;
  private membersBody: { version: number; body: string } | null = null;
  readonly tokens = new Map<string, { serverName: string; operation: Operation }>();
  readonly groups = new Set(["default"]);

  rolesOf(member: SimulatedMember): string[] {
    const i = this.members.indexOf(member);
    if (i < 0) return [];
    if (i < MAX_VOTERS) return i === 0 ? ["database-leader", "database"] : ["database"];
    return i < MAX_VOTERS + MAX_STANDBY ? ["database-standby"] : [];
  }

  view(member: SimulatedMember) {
    const roles = this.rolesOf(member);
    return {
      server_name: member.name,
      url: `https://${member.address}`,
      database: roles.includes("database"),
      status: member.evacuated ? "Evacuated" : "Online",
      message: member.evacuated ? "Unavailable due to maintenance" : "Fully operational",
      roles,
      failure_domain: member.failureDomain,
      description: member.description,
      groups: member.groups,
      config: {},
      architecture: "x86_64",
    };
  }

  /** GET /1.0/cluster/members?recursion=1, serialised once per change: every member reads it every few heartbeats. */
  membersReply(): string {
    if (this.membersBody?.version !== this.version) this.membersBody = { version: this.version, body: syncBody(this.members.map((m) => this.view(m))) };
    return this.membersBody.body;
  }

  changed(): void {
    this.version += 1;
  }
}

export class SimulatedMember {
  cluster: SimulatedCluster | null = null;
  config: Record<string, string> = {};
  description = "";
  failureDomain = "default";
  groups = ["default"];
  evacuated = false;
  /** This member's own server certificate, as the cluster's certificate list has it. */
  readonly fingerprint: string;
  private serverBody: string | null = null;

  constructor(
    readonly name: string,
    readonly address: string,
    readonly socketPath: string,
    readonly pid: number,
  ) {
    this.fingerprint = createHash("sha256").update(`simulated server certificate of ${address}`).digest("hex");
  }

  get clustered(): boolean {
    return this.cluster !== null;
  }

  changed(): void {
    this.serverBody = null;
  }

  /** GET /1.0, serialised once per change: every heartbeat and every pull reads it. */
  serverReply(): string {
    this.serverBody ??= syncBody({
      config: this.config,
      api_extensions: API_EXTENSIONS,
      api_status: "stable",
      api_version: "1.0",
      auth: "trusted",
      public: false,
      auth_methods: ["tls"],
      environment: {
        server: "incus",
        server_version: "6.0.4",
        server_name: this.name,
        server_clustered: this.clustered,
        server_pid: this.pid,
        server_event_mode: this.clustered ? "full-mesh" : "",
        // Once clustered, GET /1.0 shows the cluster's certificate; the member's own is in the certificate list.
        certificate: SIMULATED_CERTIFICATE,
        certificate_fingerprint: this.clustered ? SIMULATED_FINGERPRINT : this.fingerprint,
        storage_supported_drivers: STORAGE_DRIVERS,
        kernel: "Linux",
        kernel_version: "6.1.0",
      },
    });
    return this.serverBody;
  }
}

type Reply = { status: number; body: string; etag?: string };

function syncBody(metadata: unknown): string {
  return JSON.stringify({ type: "sync", status: "Success", status_code: 200, operation: "", error_code: 0, error: "", metadata });
}

const sync = (metadata: unknown, etag?: string): Reply => ({ status: 200, body: syncBody(metadata), ...(etag ? { etag } : {}) });
const EMPTY_LIST: Reply = sync([]);
const fail = (status: number, error: string): Reply => ({ status, body: JSON.stringify({ type: "error", status: "", status_code: 0, operation: "", error_code: status, error, metadata: null }) });

function operationJson(op: Operation) {
  const { owner: _owner, waiters: _waiters, ...json } = op;
  return { ...json, updated_at: new Date().toISOString(), resources: null, may_cancel: false };
}

const asyncOp = (op: Operation): Reply => ({
  status: 202,
  body: JSON.stringify({ type: "async", status: "Operation created", status_code: 100, operation: `/1.0/operations/${op.id}`, error_code: 0, error: "", metadata: operationJson(op) }),
});

export interface SimulatorOptions {
  dir: string;
  /** How long a simulated bootstrap or join takes. */
  joinMs: number;
}

type MemberSocket = Socket & { member?: SimulatedMember };

/** Serves many simulated members; each listens on its own unix socket. */
export class IncusSimulator {
  private readonly listeners: Server[] = [];
  // Go's HTTP server keeps idle connections open: the agent's keep-alive pool reuses them as on a real host.
  private readonly http = createHttpServer({ keepAliveTimeout: 0 }, (req, res) => this.handle(req, res));
  private readonly byAddress = new Map<string, SimulatedMember>();
  private readonly operations = new Map<string, Operation>();
  readonly members: SimulatedMember[] = [];
  requests = 0;

  constructor(private readonly options: SimulatorOptions) {}

  async addMember(name: string, address: string): Promise<SimulatedMember> {
    const socketPath = join(this.options.dir, `${this.members.length}.socket`);
    rmSync(socketPath, { force: true });
    const member = new SimulatedMember(name, address, socketPath, 100_000 + this.members.length);
    const listener = createNetServer((conn: MemberSocket) => {
      conn.member = member;
      this.http.emit("connection", conn);
    });
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(socketPath, () => resolve());
    });
    this.listeners.push(listener);
    this.members.push(member);
    this.byAddress.set(address, member);
    return member;
  }

  /**
   * The cluster network as the members' agents see it: a member's address
   * answers (its Incus, or its agent's stand-in while it waits to join) in a
   * small fixed round trip; any other address refuses.
   */
  readonly network: ClusterNetwork = {
    probe: async (address) => (this.byAddress.has(address) ? { reachable: true, rttMs: SIMULATED_RTT_MS } : { reachable: false, rttMs: null, error: "ECONNREFUSED" }),
    standIn: async () => ({ problem: null, close: async () => undefined }),
  };

  async close(): Promise<void> {
    this.http.closeAllConnections();
    await Promise.all(this.listeners.map((l) => new Promise<void>((r) => l.close(() => r()))));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests += 1;
    const member = (req.socket as MemberSocket).member!;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let reply: Reply | Promise<Reply>;
      try {
        const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>) : {};
        reply = this.route(member, req.method ?? "GET", new URL(req.url ?? "/", "http://incus"), body);
      } catch (err) {
        reply = fail(400, err instanceof Error ? err.message : String(err));
      }
      if (reply instanceof Promise) void reply.then((r) => this.respond(res, r));
      else this.respond(res, reply);
    });
  }

  private respond(res: ServerResponse, reply: Reply): void {
    res.writeHead(reply.status, { "Content-Type": "application/json", ...(reply.etag ? { ETag: reply.etag } : {}) });
    res.end(reply.body);
  }

  private operation(owner: SimulatedMember, op: Pick<Operation, "class" | "description" | "metadata" | "location">): Operation {
    const full: Operation = { ...op, id: randomUUID(), status: "Running", status_code: 103, err: "", created_at: new Date().toISOString(), owner, waiters: [] };
    this.operations.set(full.id, full);
    return full;
  }

  private finish(op: Operation, err = ""): void {
    op.status_code = err ? 400 : 200;
    op.status = err ? "Failure" : "Success";
    op.err = err;
    for (const wake of op.waiters.splice(0)) wake();
    setTimeout(() => this.operations.delete(op.id), FINISHED_OPERATION_KEPT_MS).unref();
  }

  /** Operations a member lists: a clustered member sees its whole cluster's, an unclustered one only its own. */
  private visible(m: SimulatedMember, op: Operation): boolean {
    return m.cluster ? op.owner.cluster === m.cluster : op.owner === m;
  }

  private route(m: SimulatedMember, method: string, url: URL, body: Record<string, unknown>): Reply | Promise<Reply> {
    const path = url.pathname;
    const c = m.cluster;
    const parts = path.split("/").map(decodeURIComponent);
    const key = `${method} ${path
      .replace(/^\/1\.0\/operations\/[^/]+\/wait$/, "/1.0/operations/*/wait")
      .replace(/^\/1\.0\/cluster\/members\/[^/]+\/state$/, "/1.0/cluster/members/*/state")
      .replace(/^\/1\.0\/cluster\/members\/[^/]+$/, "/1.0/cluster/members/*")
      .replace(/^\/1\.0\/(storage-pools|networks)\/[^/]+$/, "/1.0/$1/*")}`;
    switch (key) {
      case "GET /1.0":
        return { status: 200, body: m.serverReply() };
      case "PATCH /1.0":
        Object.assign(m.config, (body.config as Record<string, string>) ?? {});
        m.changed();
        return sync({});
      case "GET /internal/ready":
        return sync({});
      case "GET /1.0/certificates":
        return sync(c ? c.members.map((x) => ({ name: x.name, type: "server", fingerprint: x.fingerprint, restricted: false, projects: [], certificate: "", description: "" })) : []);
      case "GET /1.0/cluster":
        return sync({ server_name: c ? m.name : "", enabled: !!c, member_config: [] });
      case "PUT /1.0/cluster":
        return this.clusterPut(m, body);
      case "GET /1.0/cluster/members":
        return c ? { status: 200, body: c.membersReply() } : fail(400, "Server is not clustered");
      case "POST /1.0/cluster/members":
        return this.mintToken(m, body);
      case "GET /1.0/cluster/members/*": {
        const x = c?.members.find((y) => y.name === parts[4]);
        return c && x ? sync(c.view(x), `"${c.version}"`) : fail(404, "Cluster member not found");
      }
      case "PUT /1.0/cluster/members/*": {
        const x = c?.members.find((y) => y.name === parts[4]);
        if (!c || !x) return fail(404, "Cluster member not found");
        x.description = String(body.description ?? "");
        x.failureDomain = String(body.failure_domain ?? "default");
        x.groups = Array.isArray(body.groups) ? body.groups.map(String) : ["default"];
        c.changed();
        return sync({});
      }
      case "DELETE /1.0/cluster/members/*": {
        const x = c?.members.find((y) => y.name === parts[4]);
        if (!c || !x) return fail(404, "Cluster member not found");
        c.members.splice(c.members.indexOf(x), 1);
        x.cluster = null;
        x.changed();
        c.changed();
        return sync({});
      }
      case "POST /1.0/cluster/members/*/state": {
        const x = c?.members.find((y) => y.name === parts[4]);
        if (!c || !x) return fail(404, "Cluster member not found");
        const evacuate = body.action === "evacuate";
        if (x.evacuated === evacuate) return fail(400, `Cluster member is already ${evacuate ? "evacuated" : "restored"}`);
        x.evacuated = evacuate;
        c.changed();
        const op = this.operation(m, { class: "task", description: evacuate ? "Evacuating cluster member" : "Restoring cluster member", metadata: null, location: x.name });
        this.finish(op);
        return asyncOp(op);
      }
      case "GET /1.0/cluster/groups":
        return sync(c ? [...c.groups].map((g) => `/1.0/cluster/groups/${encodeURIComponent(g)}`) : []);
      case "POST /1.0/cluster/groups":
        if (!c) return fail(400, "Server is not clustered");
        c.groups.add(String(body.name));
        return sync({});
      case "GET /1.0/operations": {
        const byStatus: Record<string, unknown[]> = {};
        for (const op of this.operations.values()) if (this.visible(m, op)) (byStatus[op.status.toLowerCase()] ??= []).push(operationJson(op));
        return sync(byStatus);
      }
      case "GET /1.0/operations/*/wait": {
        const op = this.operations.get(parts[3]!);
        if (!op || !this.visible(m, op)) return fail(404, "Operation not found");
        if (op.status_code !== 103 || op.class === "token") return sync(operationJson(op));
        const seconds = Number(url.searchParams.get("timeout") ?? "-1");
        // Answered when the operation ends, or with it still running when the wait's timeout comes first.
        return new Promise<Reply>((resolve) => {
          const answer = () => resolve(sync(operationJson(op)));
          op.waiters.push(answer);
          if (seconds >= 0) setTimeout(answer, seconds * 1000).unref();
        });
      }
      case "GET /1.0/storage-pools":
      case "GET /1.0/networks":
      case "GET /1.0/instances":
        return EMPTY_LIST;
      case "GET /1.0/storage-pools/*":
        return fail(404, "Storage pool not found");
      case "GET /1.0/networks/*":
        return fail(404, "Network not found");
      default:
        return fail(404, `the simulator does not answer ${method} ${path}`);
    }
  }

  private mintToken(m: SimulatedMember, body: Record<string, unknown>): Reply {
    const c = m.cluster;
    if (!c) return fail(400, "This server is not clustered");
    const serverName = String(body.server_name);
    if (c.members.some((x) => x.name === serverName)) return fail(400, `The cluster already has a member with name: ${serverName}`);
    // A new token for a name cancels the one before it.
    for (const [secret, t] of c.tokens) {
      if (t.serverName !== serverName) continue;
      c.tokens.delete(secret);
      this.finish(t.operation, "Operation cancelled");
    }
    const secret = randomBytes(32).toString("hex");
    const metadata = { serverName, secret, fingerprint: SIMULATED_FINGERPRINT, addresses: c.members.map((x) => x.address), expiresAt: new Date(Date.now() + 3 * 3600_000).toISOString() };
    const op = this.operation(m, { class: "token", description: "Requesting a cluster join token", metadata, location: m.name });
    c.tokens.set(secret, { serverName, operation: op });
    return asyncOp(op);
  }

  private clusterPut(m: SimulatedMember, body: Record<string, unknown>): Reply {
    if (m.clustered) return fail(400, "This server is already clustered");
    if (body.enabled !== true || typeof body.server_name !== "string" || body.server_name === "") return fail(400, "Cluster configuration needs a server name and enabled");
    const joining = typeof body.cluster_address === "string" && body.cluster_address !== "";
    let cluster: SimulatedCluster;
    let token: { serverName: string; operation: Operation } | undefined;
    if (joining) {
      const via = this.byAddress.get(String(body.cluster_address));
      if (!via?.cluster) return fail(400, `Failed to connect to cluster member at ${String(body.cluster_address)}`);
      if (body.cluster_certificate !== SIMULATED_CERTIFICATE) return fail(400, "The cluster certificate does not match");
      const secret = decodeJoinToken(String(body.cluster_token)).secret;
      cluster = via.cluster;
      token = cluster.tokens.get(secret);
      if (!token || token.serverName !== body.server_name) return fail(403, "No matching cluster join operation found");
      cluster.tokens.delete(secret);
    } else {
      if (!m.config["core.https_address"]) return fail(400, "This server is not available on the network");
      cluster = new SimulatedCluster();
    }
    const op = this.operation(m, { class: "task", description: joining ? "Joining cluster" : "Creating bootstrap node", metadata: null, location: "none" });
    setTimeout(() => {
      m.cluster = cluster;
      m.config["cluster.https_address"] = joining ? String(body.server_address ?? m.address) : m.config["core.https_address"]!;
      if (joining) m.config["core.https_address"] = String(body.server_address ?? m.address);
      cluster.members.push(m);
      cluster.changed();
      m.changed();
      if (token) this.finish(token.operation);
      this.finish(op);
    }, this.options.joinMs);
    return asyncOp(op);
  }
}
