import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IncusClient } from "../agent/incus-client.js";
import { run } from "./processes.js";

const BUSYBOX = "/bin/busybox";
const APPLETS = ["sh", "init", "sleep", "ls", "cat", "ps", "mount", "hostname"];

/**
 * A container image made of busybox alone: no image server is reachable from
 * the lab, and this one is small enough to build in a moment.
 */
export async function buildBusyboxImage(): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), "fleet-image-"));
  try {
    const rootfs = join(dir, "rootfs");
    for (const d of ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run"]) mkdirSync(join(rootfs, d), { recursive: true });
    copyFileSync(BUSYBOX, join(rootfs, "bin", "busybox"));
    chmodSync(join(rootfs, "bin", "busybox"), 0o755);
    for (const applet of APPLETS) symlinkSync("busybox", join(rootfs, "bin", applet));
    symlinkSync("../bin/busybox", join(rootfs, "sbin", "init"));
    // busybox init keeps one sleeper alive, and stays free to act on the halt signal.
    writeFileSync(join(rootfs, "etc", "inittab"), "::sysinit:/bin/hostname -F /etc/hostname\n::respawn:/bin/sleep 3600\n");
    writeFileSync(join(rootfs, "etc", "hostname"), "busybox\n");
    writeFileSync(
      join(dir, "metadata.yaml"),
      `architecture: x86_64\ncreation_date: ${Math.floor(Date.now() / 1000)}\nproperties:\n  description: busybox for the incus-fleet lab\n  os: busybox\n`,
    );
    const tarball = join(dir, "image.tar.gz");
    await run("tar", ["-C", dir, "-czf", tarball, "metadata.yaml", "rootfs"]);
    return readFileSync(tarball);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Imports a unified image tarball through the REST API and gives it an alias. */
export async function importImage(incus: IncusClient, tarball: Buffer, alias: string): Promise<string> {
  const op = await new Promise<{ operation: string; error: string }>((resolve, reject) => {
    const req = request(
      { socketPath: incus.socketPath, method: "POST", path: "/1.0/images", headers: { Host: "incus", "Content-Type": "application/octet-stream", "Content-Length": tarball.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as { operation: string; error: string }));
      },
    );
    req.on("error", reject);
    req.setTimeout(60_000, () => req.destroy(new Error("image import: no answer from Incus within 60 s")));
    req.end(tarball);
  });
  if (!op.operation) throw new Error(`image import refused: ${op.error}`);
  const done = await incus.waitOperation(op.operation.split("/").pop()!, 120_000);
  const fingerprint = String((done.metadata as { fingerprint?: string } | null)?.fingerprint ?? "");
  await incus.run("POST", "/1.0/images/aliases", { name: alias, target: fingerprint });
  return fingerprint;
}

/** Creates and starts a container from an image alias on one member, on a given pool. */
export async function launchContainer(incus: IncusClient, name: string, options: { alias: string; target: string; pool: string }): Promise<void> {
  await incus.run("POST", `/1.0/instances?target=${encodeURIComponent(options.target)}`, {
    name,
    type: "container",
    source: { type: "image", alias: options.alias },
    // busybox init powers off on SIGUSR2 and ignores the SIGPWR that LXC sends by default.
    config: { "raw.lxc": "lxc.signal.halt = SIGUSR2" },
    devices: { root: { type: "disk", path: "/", pool: options.pool } },
  }, { timeoutMs: 120_000 });
  await incus.run("PUT", `/1.0/instances/${encodeURIComponent(name)}/state`, { action: "start", timeout: 30 }, { timeoutMs: 60_000 });
}
