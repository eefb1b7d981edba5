import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect, type ConnectionOptions } from "@nats-io/transport-node";
import { hostCredentials, setupFleet, type SetupOptions } from "../../coordinator/setup/setup.js";
import { natsConnectionOptions, type NatsTlsOptions } from "../../shared/nats.js";
import { secureNats } from "../helpers/coordinator.js";

const encoder = new TextEncoder();

test("with TLS and client certificates, coordinators and hosts connect with their own files; without a certificate, or without TLS, nobody does", async (t) => {
  const nats = await secureNats(t, { tls: true });
  t.true(nats.urls.every((u) => u.startsWith("tls://")), "the set-up hands out TLS addresses");
  const coordinator = nats.setup.coordinators[0]!;
  t.truthy(coordinator.tls?.certFile, "a client certificate of its own");
  // The options the coordinator and the agents connect with, as they build them from their configuration.
  const optionsOf = (credential: { nkeyFile: string; tls: NatsTlsOptions | null }) => natsConnectionOptions({ servers: nats.urls, name: "test", nkeyFile: credential.nkeyFile, ...(credential.tls ? { tls: credential.tls } : {}) });

  const nc = await connect(optionsOf(coordinator));
  t.teardown(() => nc.close());
  const kv = await new Kvm(nc).create(`tls${Date.now()}`, { history: 1 });
  await kv.put("k", encoder.encode("1"));
  t.is((await kv.get("k"))?.string(), "1", "the coordinator uses the store over TLS");

  const agent = await connect(optionsOf(hostCredentials(nats.setup, "c1", "n1")));
  t.teardown(() => agent.close());
  await agent.flush();

  const refused = async (options: ConnectionOptions) =>
    connect({ ...options, reconnect: false, timeout: 3_000 }).then(
      async (c) => {
        await c.close();
        return false;
      },
      () => true,
    );
  t.true(await refused(optionsOf({ nkeyFile: coordinator.nkeyFile, tls: { caFile: coordinator.tls!.caFile! } })), "TLS without a client certificate is refused");
  t.true(await refused({ ...optionsOf({ nkeyFile: coordinator.nkeyFile, tls: null }), servers: nats.urls.map((u) => u.replace("tls://", "nats://")) }), "a plain connection is refused");
});

test("running setup again keeps every key and certificate it made: hosts already deployed keep working, a new host gets its own", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "fleet-setup-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const options: SetupOptions = {
    out,
    hosts: [{ cluster: "c", node: "n1", address: "192.0.2.11:8443" }],
    coordinators: 1,
    servers: [{ name: "nats-1", listen: "127.0.0.1:4222" }],
    jetstreamDir: join(out, "js"),
    tls: { hosts: ["127.0.0.1"], mutual: true },
  };
  const first = await setupFleet(options);
  const files = (r: typeof first) => {
    const h = hostCredentials(r, "c", "n1");
    return [h.nkeyFile, h.tls!.certFile!, h.tls!.keyFile!, h.tls!.caFile!, r.coordinators[0]!.nkeyFile, r.coordinators[0]!.signingKeyFile, r.apiTokenFile, r.coordinatorKeyFile];
  };
  const before = files(first).map((f) => readFileSync(f, "utf8"));

  const second = await setupFleet({ ...options, hosts: [...options.hosts, { cluster: "c", node: "n2", address: "192.0.2.12:8443" }] });
  t.deepEqual(files(second).map((f) => readFileSync(f, "utf8")), before);
  const n2 = hostCredentials(second, "c", "n2");
  t.not(readFileSync(n2.nkeyFile, "utf8"), before[0], "the new host has a key of its own");
  t.regex(readFileSync(second.serverConfigs[0]!, "utf8"), /n2/, "and the server's configuration lets it in");
});
