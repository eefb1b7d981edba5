import { Agent, request } from "node:http";
import { ErrorCode, FleetError, IncusError } from "../shared/index.js";

/** The parts of Incus REST objects this project reads. */
export interface IncusServer {
  config: Record<string, string>;
  api_extensions: string[];
  environment: {
    server_version: string;
    server_name: string;
    server_clustered: boolean;
    server_pid?: number;
    certificate: string;
    certificate_fingerprint: string;
    storage_supported_drivers?: { Name: string; Version: string; Remote: boolean }[] | null;
  };
}

export interface IncusOperation {
  id: string;
  class: string;
  description: string;
  status: string;
  status_code: number;
  metadata: Record<string, unknown> | null;
  err: string;
  location: string;
}

export interface IncusMember {
  server_name: string;
  url: string;
  database: boolean;
  status: string;
  message: string;
  roles: string[] | null;
  failure_domain: string;
  description: string;
  groups: string[] | null;
  config: Record<string, string> | null;
  architecture: string;
}

export interface IncusStoragePool {
  name: string;
  driver: string;
  status: string;
  description: string;
  config: Record<string, string>;
  locations: string[] | null;
}

export interface IncusNetwork {
  name: string;
  type: string;
  managed: boolean;
  status: string;
  description: string;
  config: Record<string, string>;
  locations: string[] | null;
}

export interface IncusInstance {
  name: string;
  project: string;
  location: string;
  status: string;
  config?: Record<string, string>;
}

export interface IncusCertificate {
  name: string;
  type: string;
  fingerprint: string;
}

interface Envelope {
  type: "sync" | "async" | "error";
  status_code: number;
  error_code: number;
  error: string;
  operation: string;
  metadata: unknown;
}

export interface RequestOptions {
  timeoutMs?: number;
  etag?: string;
}

/** What a response carried besides its body. */
interface Response<T> {
  type: Envelope["type"];
  metadata: T;
  etag: string | undefined;
}

/**
 * A small client for the Incus REST API on the local unix socket. The agent
 * never shells out to the `incus` command.
 */
export class IncusClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });

  constructor(
    readonly socketPath: string,
    private readonly defaultTimeoutMs = 30_000,
  ) {}

  close(): void {
    this.agent.destroy();
  }

  private call<T>(method: string, path: string, body: unknown, options: RequestOptions = {}): Promise<Response<T>> {
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { Host: "incus" };
      if (payload) {
        headers["Content-Type"] = "application/json";
        headers["Content-Length"] = payload.length;
      }
      if (options.etag) headers["If-Match"] = options.etag;
      const req = request({ socketPath: this.socketPath, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let env: Envelope;
          try {
            env = JSON.parse(text) as Envelope;
          } catch (cause) {
            reject(new IncusError(res.statusCode ?? 0, `${method} ${path}: Incus answered ${res.statusCode} with a body that is not JSON`, { cause }));
            return;
          }
          if (env.type === "error") {
            reject(new IncusError(env.error_code || res.statusCode || 500, env.error || `${method} ${path} failed`));
            return;
          }
          const etag = res.headers.etag;
          resolve({ type: env.type, metadata: env.metadata as T, etag: typeof etag === "string" ? etag : undefined });
        });
      });
      req.setTimeout(timeoutMs, () => {
        req.destroy(new FleetError(ErrorCode.Timeout, `${method} ${path}: no answer from Incus within ${timeoutMs} ms`));
      });
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (err instanceof FleetError) reject(err);
        else reject(new FleetError(ErrorCode.IncusUnreachable, `cannot reach Incus at ${this.socketPath}: ${err.code ?? err.message}`, { cause: err }));
      });
      if (payload) req.write(payload);
      req.end();
    });
  }

  async get<T>(path: string, options?: RequestOptions): Promise<T> {
    return (await this.call<T>("GET", path, undefined, options)).metadata;
  }

  /** Lists come back as null when empty. */
  private async list<T>(path: string, options?: RequestOptions): Promise<T[]> {
    return (await this.get<T[] | null>(path, options)) ?? [];
  }

  /** Runs a call that may answer with an operation, and waits for the operation to end. */
  async run(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<IncusOperation | null> {
    const res = await this.call<IncusOperation | null>(method, path, body, options);
    if (res.type !== "async" || !res.metadata) return null;
    return this.waitOperation(res.metadata.id, options.timeoutMs);
  }

  /** Starts a call that answers with an operation, without waiting for it. */
  async start(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<IncusOperation> {
    const res = await this.call<IncusOperation>(method, path, body, options);
    if (res.type !== "async") throw new IncusError(500, `${method} ${path}: expected an operation`);
    return res.metadata;
  }

  async waitOperation(id: string, timeoutMs = this.defaultTimeoutMs): Promise<IncusOperation> {
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    const op = await this.get<IncusOperation>(`/1.0/operations/${id}/wait?timeout=${seconds}`, { timeoutMs: timeoutMs + 5_000 });
    if (op.status_code === 200) return op;
    if (op.status_code === 103) throw new FleetError(ErrorCode.Timeout, `operation ${op.description} still running after ${seconds} s`);
    throw new IncusError(500, op.err || `${op.description}: ${op.status}`);
  }

  // ------------------------------------------------------------ server

  server(options?: RequestOptions): Promise<IncusServer> {
    return this.get<IncusServer>("/1.0", options);
  }

  async patchServerConfig(config: Record<string, string>, options?: RequestOptions): Promise<void> {
    await this.run("PATCH", "/1.0", { config }, options);
  }

  // ------------------------------------------------------------ cluster

  cluster(): Promise<{ server_name: string; enabled: boolean; member_config: { entity: string; name: string; key: string }[] }> {
    return this.get("/1.0/cluster");
  }

  async enableCluster(serverName: string): Promise<void> {
    await this.run("PUT", "/1.0/cluster", { server_name: serverName, enabled: true });
  }

  async joinCluster(args: {
    serverName: string;
    serverAddress: string;
    clusterAddress: string;
    clusterCertificate: string;
    token: string;
    memberConfig: { entity: string; name: string; key: string; value: string }[];
    timeoutMs?: number;
  }): Promise<void> {
    await this.run(
      "PUT",
      "/1.0/cluster",
      {
        server_name: args.serverName,
        enabled: true,
        server_address: args.serverAddress,
        cluster_address: args.clusterAddress,
        cluster_certificate: args.clusterCertificate,
        cluster_token: args.token,
        member_config: args.memberConfig,
      },
      { timeoutMs: args.timeoutMs ?? 120_000 },
    );
  }

  members(options?: RequestOptions): Promise<IncusMember[]> {
    return this.list<IncusMember>("/1.0/cluster/members?recursion=1", options);
  }

  async member(name: string): Promise<{ member: IncusMember; etag: string | undefined }> {
    const res = await this.call<IncusMember>("GET", `/1.0/cluster/members/${encodeURIComponent(name)}`, undefined);
    return { member: res.metadata, etag: res.etag };
  }

  async updateMember(name: string, put: { description: string; failure_domain: string; groups: string[]; roles: string[]; config: Record<string, string> }, etag?: string): Promise<void> {
    await this.run("PUT", `/1.0/cluster/members/${encodeURIComponent(name)}`, put, etag ? { etag } : {});
  }

  /** Mints a join token; its fields are in the operation's metadata. */
  mintJoinToken(serverName: string): Promise<IncusOperation> {
    return this.start("POST", "/1.0/cluster/members", { server_name: serverName });
  }

  async removeMember(name: string, force: boolean): Promise<void> {
    await this.run("DELETE", `/1.0/cluster/members/${encodeURIComponent(name)}${force ? "?force=1" : ""}`, undefined, { timeoutMs: 120_000 });
  }

  async changeMemberState(name: string, action: "evacuate" | "restore", mode?: string): Promise<IncusOperation | null> {
    const body = mode ? { action, mode } : { action };
    return this.run("POST", `/1.0/cluster/members/${encodeURIComponent(name)}/state`, body, { timeoutMs: 600_000 });
  }

  groups(): Promise<string[]> {
    return this.list<string>("/1.0/cluster/groups").then((urls) => urls.map((u) => decodeURIComponent(u.split("/").pop() ?? "")));
  }

  async createGroup(name: string): Promise<void> {
    await this.run("POST", "/1.0/cluster/groups", { name, description: "" });
  }

  async operations(): Promise<IncusOperation[]> {
    const byStatus = await this.get<Record<string, IncusOperation[] | null> | null>("/1.0/operations?recursion=1");
    return Object.values(byStatus ?? {}).flatMap((ops) => ops ?? []);
  }

  /**
   * Whether the daemon serves its API: while it waits for quorum, or for the
   * other members to be upgraded, every /1.0 call hangs and only this one
   * answers (503 with the reason).
   */
  async ready(timeoutMs = 2_000): Promise<{ ready: boolean; reason: string }> {
    try {
      await this.get("/internal/ready", { timeoutMs });
      return { ready: true, reason: "" };
    } catch (err) {
      return { ready: false, reason: err instanceof Error ? err.message : String(err) };
    }
  }

  certificates(options?: RequestOptions): Promise<IncusCertificate[]> {
    return this.list<IncusCertificate>("/1.0/certificates?recursion=1", options);
  }

  // ------------------------------------------------------------ resources

  storagePools(): Promise<IncusStoragePool[]> {
    return this.list<IncusStoragePool>("/1.0/storage-pools?recursion=1");
  }

  /** One pool as a member has it (its own keys and state with `target`); null when it does not exist. */
  storagePool(name: string, target?: string): Promise<IncusStoragePool | null> {
    return orNull(this.get<IncusStoragePool>(`/1.0/storage-pools/${encodeURIComponent(name)}${targetQuery(target)}`));
  }

  async createStoragePool(body: { name: string; driver: string; description?: string; config?: Record<string, string> }, target?: string): Promise<void> {
    await this.run("POST", `/1.0/storage-pools${targetQuery(target)}`, body);
  }

  async patchStoragePool(name: string, body: { description?: string; config?: Record<string, string> }, target?: string): Promise<void> {
    await this.run("PATCH", `/1.0/storage-pools/${encodeURIComponent(name)}${targetQuery(target)}`, body);
  }

  async deleteStoragePool(name: string): Promise<void> {
    await this.run("DELETE", `/1.0/storage-pools/${encodeURIComponent(name)}`);
  }

  poolResources(name: string): Promise<{ space: { used: number; total: number } }> {
    return this.get(`/1.0/storage-pools/${encodeURIComponent(name)}/resources`, { timeoutMs: 5_000 });
  }

  networks(): Promise<IncusNetwork[]> {
    return this.list<IncusNetwork>("/1.0/networks?recursion=1");
  }

  network(name: string, target?: string): Promise<IncusNetwork | null> {
    return orNull(this.get<IncusNetwork>(`/1.0/networks/${encodeURIComponent(name)}${targetQuery(target)}`));
  }

  async createNetwork(body: { name: string; type: string; description?: string; config?: Record<string, string> }, target?: string): Promise<void> {
    await this.run("POST", `/1.0/networks${targetQuery(target)}`, body);
  }

  async patchNetwork(name: string, body: { description?: string; config?: Record<string, string> }, target?: string): Promise<void> {
    await this.run("PATCH", `/1.0/networks/${encodeURIComponent(name)}${targetQuery(target)}`, body);
  }

  async deleteNetwork(name: string): Promise<void> {
    await this.run("DELETE", `/1.0/networks/${encodeURIComponent(name)}`);
  }

  instances(options?: RequestOptions): Promise<IncusInstance[]> {
    return this.list<IncusInstance>("/1.0/instances?recursion=1&all-projects=true", options);
  }

  async patchInstanceConfig(name: string, project: string, config: Record<string, string>): Promise<void> {
    await this.run("PATCH", `/1.0/instances/${encodeURIComponent(name)}?project=${encodeURIComponent(project)}`, { config });
  }
}

function targetQuery(target: string | undefined): string {
  return target ? `?target=${encodeURIComponent(target)}` : "";
}

async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof IncusError && err.status === 404) return null;
    throw err;
  }
}
