import { randomBytes, randomUUID } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { certificateFingerprint } from "../../shared/index.js";

/**
 * A SIMULATED Incus, for the scale benchmark only: thousands of members on
 * one machine are beyond what real incusd daemons can do here. Each
 * simulated member answers the subset of the Incus REST API that incus-fleet
 * uses, over its own unix socket, with the same JSON envelopes; the members
 * of a simulated cluster share their cluster state in memory. No network, no
 * containers, no database: joins take a fixed simulated time.
 */

/** An Incus-generated certificate (its fingerprint is what the join token carries). */
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
const API_EXTENSIONS = Array.from({ length: 450 }, (_, i) => `extension_${i}`);
const MAX_VOTERS = 3;
const MAX_STANDBY = 2;

interface Operation {
  id: string;
  class: "task" | "token";
  description: string;
  status_code: 103 | 200 | 400;
  metadata: Record<string, unknown> | null;
  err: string;
  location: string;
}

export class SimulatedCluster {
  readonly members: SimulatedMember[] = [];
  /** Rises whenever membership changes; views are rebuilt only then. */
  version = 0;
  private viewCache: { version: number; view: ReturnType<SimulatedCluster["buildView"]> } | null = null;
  readonly tokens = new Map<string, { serverName: string; secret: string }>();
  readonly operations = new Map<string, Operation>();

  constructor(readonly name: string) {}

  rolesOf(member: SimulatedMember): string[] {
    const i = this.members.indexOf(member);
    if (i < 0) return [];
    if (i < MAX_VOTERS) return i === 0 ? ["database-leader", "database"] : ["database"];
    return i < MAX_VOTERS + MAX_STANDBY ? ["database-standby"] : [];
  }

  view(): ReturnType<SimulatedCluster["buildView"]> {
    if (this.viewCache?.version !== this.version) this.viewCache = { version: this.version, view: this.buildView() };
    return this.viewCache.view;
  }

  private buildView() {
    return this.members.map((m) => ({
      server_name: m.name,
      url: `https://${m.address}`,
      database: this.rolesOf(m).length > 0,
      status: "Online",
      message: "Fully operational",
      roles: this.rolesOf(m),
      failure_domain: "default",
      description: "",
      groups: ["default"],
      config: {},
      architecture: "x86_64",
    }));
  }
}

export class SimulatedMember {
  clustered = false;
  config: Record<string, string> = {};
  cluster: SimulatedCluster | null = null;
  constructor(
    readonly name: string,
    readonly address: string,
    readonly socketPath: string,
    readonly clusterPlan: SimulatedCluster,
  ) {}
}

type Reply = { status: number; body: unknown };

const sync = (metadata: unknown): Reply => ({ status: 200, body: { type: "sync", status: "Success", status_code: 200, operation: "", error_code: 0, error: "", metadata } });
const asyncOp = (op: Operation): Reply => ({ status: 202, body: { type: "async", status: "Operation created", status_code: 100, operation: `/1.0/operations/${op.id}`, error_code: 0, error: "", metadata: op } });
const fail = (status: number, error: string): Reply => ({ status, body: { type: "error", status: "", status_code: 0, operation: "", error_code: status, error, metadata: null } });

export interface SimulatorOptions {
  dir: string;
  /** How long a simulated join takes. */
  joinMs: number;
}

/** Serves many simulated members; each listens on its own unix socket. */
export class IncusSimulator {
  private readonly listeners: Server[] = [];
  private readonly http = createHttpServer({ keepAliveTimeout: 1_000 }, (req, res) => void this.handle(req, res));
  readonly clusters = new Map<string, SimulatedCluster>();
  readonly members: SimulatedMember[] = [];
  requests = 0;

  constructor(private readonly options: SimulatorOptions) {}

  async addMember(cluster: string, name: string, address: string): Promise<SimulatedMember> {
    let c = this.clusters.get(cluster);
    if (!c) {
      c = new SimulatedCluster(cluster);
      this.clusters.set(cluster, c);
    }
    const socketPath = join(this.options.dir, `${cluster}-${name}.socket`);
    rmSync(socketPath, { force: true });
    const member = new SimulatedMember(name, address, socketPath, c);
    const listener = createNetServer((conn: Socket & { member?: SimulatedMember }) => {
      conn.member = member;
      this.http.emit("connection", conn);
    });
    await new Promise<void>((resolve) => listener.listen(socketPath, () => resolve()));
    this.listeners.push(listener);
    this.members.push(member);
    return member;
  }

  async close(): Promise<void> {
    this.http.closeAllConnections();
    await Promise.all(this.listeners.map((l) => new Promise<void>((r) => l.close(() => r()))));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests += 1;
    const member = (req.socket as Socket & { member?: SimulatedMember }).member!;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>) : {};
    const url = new URL(req.url ?? "/", "http://incus");
    const reply = await this.route(member, req.method ?? "GET", url.pathname, body);
    res.writeHead(reply.status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(reply.body));
  }

  private operation(cluster: SimulatedCluster, op: Omit<Operation, "id">): Operation {
    const full = { ...op, id: randomUUID() };
    cluster.operations.set(full.id, full);
    return full;
  }

  private async route(m: SimulatedMember, method: string, path: string, body: Record<string, unknown>): Promise<Reply> {
    const c = m.clusterPlan;
    const key = `${method} ${path.replace(/\/[^/]+\/wait$/, "/*/wait").replace(/^\/1\.0\/cluster\/members\/[^/]+/, "/1.0/cluster/members/*")}`;
    switch (key) {
      case "GET /1.0":
        return sync({
          config: m.config,
          api_extensions: API_EXTENSIONS,
          environment: {
            server_version: "6.0.4",
            server_name: m.name,
            server_clustered: m.clustered,
            certificate: SIMULATED_CERTIFICATE,
            certificate_fingerprint: SIMULATED_FINGERPRINT,
          },
        });
      case "PATCH /1.0":
        Object.assign(m.config, (body.config as Record<string, string>) ?? {});
        return sync({});
      case "GET /1.0/cluster":
        return sync({ server_name: m.clustered ? m.name : "", enabled: m.clustered, member_config: [] });
      case "PUT /1.0/cluster":
        return this.clusterPut(m, body);
      case "GET /1.0/cluster/members":
        return m.clustered ? sync(c.view()) : fail(500, "Server is not clustered");
      case "POST /1.0/cluster/members": {
        if (!m.clustered) return fail(400, "This server is not clustered");
        const serverName = String(body.server_name);
        if (c.members.some((x) => x.name === serverName)) return fail(400, `The cluster already has a member with name: ${serverName}`);
        for (const [id, t] of c.tokens) if (t.serverName === serverName) c.tokens.delete(id);
        const secret = randomBytes(32).toString("hex");
        c.tokens.set(secret, { serverName, secret });
        const op = this.operation(c, {
          class: "token",
          description: "Executing operation",
          status_code: 103,
          metadata: { serverName, secret, fingerprint: SIMULATED_FINGERPRINT, addresses: [c.members[0]!.address], expiresAt: new Date(Date.now() + 3 * 3600_000).toISOString() },
          err: "",
          location: m.name,
        });
        return asyncOp(op);
      }
      case "GET /1.0/cluster/members/*":
        return m.clustered ? sync(c.view().find((x) => path.endsWith(`/${x.server_name}`)) ?? null) : fail(404, "Not found");
      case "GET /1.0/operations": {
        const running = [...c.operations.values()].filter((o) => o.status_code === 103 && o.class === "task" && o.location === (m.clustered ? m.name : "none"));
        return sync({ running });
      }
      case "GET /1.0/operations/*/wait": {
        const id = path.split("/")[3]!;
        const op = c.operations.get(id);
        if (!op) return fail(404, "Operation not found");
        while (op.status_code === 103 && op.class === "task") await new Promise((r) => setTimeout(r, 2));
        return sync(op);
      }
      case "GET /1.0/storage-pools":
      case "GET /1.0/instances":
      case "GET /1.0/networks":
        return sync([]);
      default:
        return fail(404, `the simulator does not answer ${method} ${path}`);
    }
  }

  private clusterPut(m: SimulatedMember, body: Record<string, unknown>): Reply {
    const c = m.clusterPlan;
    if (m.clustered) return fail(400, "This server is already clustered");
    const joining = typeof body.cluster_address === "string" && body.cluster_address !== "";
    const op = this.operation(c, { class: "task", description: joining ? "Joining cluster" : "Creating bootstrap node", status_code: 103, metadata: null, err: "", location: "none" });
    if (!joining) {
      m.clustered = true;
      c.members.push(m);
      c.version += 1;
      op.status_code = 200;
      return asyncOp(op);
    }
    const token = JSON.parse(Buffer.from(String(body.cluster_token), "base64").toString()) as { secret: string; server_name: string };
    const known = c.tokens.get(token.secret);
    if (!known || known.serverName !== m.name) return fail(403, "Invalid join token");
    c.tokens.delete(token.secret);
    setTimeout(() => {
      m.clustered = true;
      c.members.push(m);
      c.version += 1;
      op.status_code = 200;
    }, this.options.joinMs);
    return asyncOp(op);
  }
}
