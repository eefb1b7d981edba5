import { execFile } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("openssl", args, { cwd }, (err, _stdout, stderr) => (err ? reject(new Error(`openssl ${args[0]} failed: ${stderr.trim() || err.message}`)) : resolve()));
  });
}

export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A private CA for the bus, made once (its key stays where setup ran). */
export async function ensureCa(dir: string): Promise<{ caFile: string; caKey: string }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, "ca.crt");
  const caKey = join(dir, "ca.key");
  if (!existsSync(caFile)) {
    await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", caKey, "-out", caFile, "-days", "3650", "-subj", "/CN=incus-fleet NATS CA"], dir);
  }
  return { caFile, caKey };
}

/**
 * A certificate signed by the CA: for the servers (with their names and
 * addresses), or for a client when the servers verify clients (mutual TLS).
 */
export async function ensureCertificate(dir: string, name: string, ca: { caFile: string; caKey: string }, usage: "server" | "client", hosts: string[] = []): Promise<TlsFiles> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  if (!existsSync(certFile)) {
    const csr = join(dir, `${name}.csr`);
    const ext = join(dir, `${name}.ext`);
    const san = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
    writeFileSync(ext, `${san ? `subjectAltName=${san}\n` : ""}extendedKeyUsage=${usage === "server" ? "serverAuth" : "clientAuth"}\nkeyUsage=digitalSignature,keyEncipherment\n`);
    await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", csr, "-subj", `/CN=${name}`], dir);
    await openssl(["x509", "-req", "-in", csr, "-CA", ca.caFile, "-CAkey", ca.caKey, "-CAcreateserial", "-out", certFile, "-days", "825", "-extfile", ext], dir);
  }
  return { caFile: ca.caFile, certFile, keyFile };
}
