import test from "ava";
import {
  certificateFingerprint,
  decodeJoinToken,
  deriveClusterKeys,
  encodeJoinToken,
  ErrorCode,
  FleetError,
  generateSigningKey,
  macFrame,
  openMacFrame,
  openSignedFrame,
  seal,
  signedFrame,
  signingKeyFromPem,
  unseal,
  verifyingKeyFromPem,
} from "../../shared/index.js";

const keys = deriveClusterKeys("prod", "correct-horse-battery");
const other = deriveClusterKeys("prod", "wrong-password-here");
const decoder = new TextDecoder();

test("an agent's frame opens with the cluster key on its subject; any change, another key or another subject does not", (t) => {
  const subject = "fleet.v1.in.prod.node1.assign";
  const frame = macFrame(keys.mac, subject, { cluster: "prod", node: "node1", seq: 3, facts: { b: 1, a: [1, 2] } });
  const opened = openMacFrame(keys.mac, subject, frame);
  t.true(opened.ok);
  t.deepEqual(JSON.parse((opened as { json: string }).json), { cluster: "prod", node: "node1", seq: 3, facts: { b: 1, a: [1, 2] } });
  const tampered = decoder.decode(frame).replace('"seq":3', '"seq":4');
  t.false(openMacFrame(keys.mac, subject, tampered).ok);
  t.false(openMacFrame(keys.mac, "fleet.v1.in.prod.node2.assign", frame).ok, "a frame moved to another host's subject no longer verifies");
  t.false(openMacFrame(other.mac, subject, frame).ok, "another password gives another key");
  t.false(openMacFrame(keys.mac, subject, '{"not":"framed"}').ok);
});

test("a coordinator's frame verifies with its public key only; the cluster password cannot make one", (t) => {
  const { privatePem, publicPem } = generateSigningKey();
  const signing = signingKeyFromPem(privatePem);
  const frame = signedFrame(signing, "reply fleet.v1.in.prod.node1.assign", { ok: true, inReplyTo: "3" });
  t.true(openSignedFrame(verifyingKeyFromPem(publicPem), "reply fleet.v1.in.prod.node1.assign", frame).ok);
  t.false(openSignedFrame(verifyingKeyFromPem(publicPem), "reply fleet.v1.in.prod.node2.assign", frame).ok, "an answer to another request does not verify");
  const forged = macFrame(keys.mac, "reply fleet.v1.in.prod.node1.assign", { ok: true, inReplyTo: "3" });
  t.false(openSignedFrame(verifyingKeyFromPem(publicPem), "reply fleet.v1.in.prod.node1.assign", forged).ok, "an HMAC made with the cluster key is no signature");
  const stranger = generateSigningKey();
  t.false(openSignedFrame(verifyingKeyFromPem(stranger.publicPem), "reply fleet.v1.in.prod.node1.assign", frame).ok);
  t.throws(() => verifyingKeyFromPem("not a key"), { instanceOf: FleetError });
});

test("keys depend on the cluster name too: one password reused for two clusters gives two keys", (t) => {
  t.notDeepEqual(deriveClusterKeys("other", "correct-horse-battery").mac, keys.mac);
});

test("a sealed token opens only with the cluster key and for the joiner it was minted for", (t) => {
  const sealed = seal(keys.seal, "the-token", "prod/node2");
  t.is(unseal(keys.seal, sealed, "prod/node2"), "the-token");
  t.false(sealed.includes("the-token"));
  const wrongJoiner = t.throws(() => unseal(keys.seal, sealed, "prod/node3"), { instanceOf: FleetError });
  t.is(wrongJoiner?.code, ErrorCode.AuthFailed);
  t.throws(() => unseal(other.seal, sealed, "prod/node2"), { message: /wrong cluster password/ });
});

test("join tokens round-trip in the format Incus uses", (t) => {
  const fields = { serverName: "node2", fingerprint: "ab".repeat(32), addresses: ["192.0.2.11:8443"], secret: "s3cr3t", expiresAt: "2030-01-01T00:00:00Z" };
  const token = encodeJoinToken(fields);
  t.deepEqual(JSON.parse(Buffer.from(token, "base64").toString()), {
    server_name: "node2",
    fingerprint: "ab".repeat(32),
    addresses: ["192.0.2.11:8443"],
    secret: "s3cr3t",
    expires_at: "2030-01-01T00:00:00Z",
  });
  t.deepEqual(decodeJoinToken(token), fields);
  t.throws(() => decodeJoinToken("not base64 json"), { message: /not base64-encoded JSON/ });
});

const PEM = `-----BEGIN CERTIFICATE-----
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

test("certificate fingerprints are SHA-256 over the DER, as Incus prints them", (t) => {
  // Incus reported this certificate with this fingerprint (GET /1.0 environment.certificate_fingerprint).
  t.is(certificateFingerprint(PEM), "79c44f66ea341b022274894e76e9f7411def06aea079fe3d6cf523c71f6cb093");
  t.throws(() => certificateFingerprint("not a pem"), { message: /not a PEM certificate/ });
});
