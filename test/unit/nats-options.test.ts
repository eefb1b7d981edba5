import test from "ava";
import type { PeerCertificate } from "node:tls";
import { natsConnectionOptions } from "../../shared/nats.js";

const check = (servers: string[]) => {
  const tls = natsConnectionOptions({ servers, name: "test", tls: { caFile: "/dev/null" } }).tls as { checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined };
  return (host: string, subjectaltname: string) => tls.checkServerIdentity(host, { subject: { CN: "server-nats-1" }, subjectaltname } as unknown as PeerCertificate);
};

test("a NATS server given by IP address is accepted when its certificate names that address, whatever name the TLS upgrade checks", (t) => {
  const identity = check(["tls://198.51.100.10:4222", "tls://[2001:db8::1]:4222"]);
  t.is(identity("localhost", "DNS:nats-1, IP Address:198.51.100.10"), undefined);
  t.is(identity("localhost", "IP Address:2001:DB8:0:0:0:0:0:1"), undefined, "IPv6 compared in canonical form");
});

test("a certificate that names none of the configured servers is refused", (t) => {
  const identity = check(["tls://198.51.100.10:4222"]);
  t.truthy(identity("localhost", "IP Address:198.51.100.99"));
  t.truthy(identity("localhost", "DNS:agent-n1"), "a client certificate of the same CA is no server certificate");
});

test("a server given by DNS name is checked by that name, as Node does", (t) => {
  const identity = check(["tls://nats.example.net:4222"]);
  t.is(identity("nats.example.net", "DNS:nats.example.net"), undefined);
  t.truthy(identity("nats.example.net", "DNS:other.example.net"));
});

test("without TLS files no TLS options are set", (t) => {
  t.is(natsConnectionOptions({ servers: ["nats://198.51.100.10:4222"], name: "test" }).tls, undefined);
});
