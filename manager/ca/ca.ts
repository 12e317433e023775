// The cluster's certificate authority, as swarmkit runs it: a root CA made at `cluster init`,
// node certificates whose subject names the node (CN), its role (OU swarm-manager or
// swarm-worker) and the cluster (O), and join tokens that carry the CA's digest so a joining
// node can tell it reached the right cluster before it trusts anything. Keys are made with
// node:crypto (asynchronously); certificates are signed by openssl in a child process, since
// Node can verify X.509 but not issue it; parsing and verification use node:crypto's X509Certificate.
import { createHash, generateKeyPair, randomBytes, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { runCommand } from "../../shared/command.js";
import { forbidden, invalid } from "../../shared/errors.js";
import { sameSecret } from "../auth/secret-compare.js";

export type NodeRole = "manager" | "worker";

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface NodeIdentity {
  nodeId: string;
  role: NodeRole;
  clusterId: string;
}

const generate = promisify(generateKeyPair);

/** A node's private key (ECDSA P-256, PKCS#8 PEM); made on the node, never sent. */
export async function newNodeKey(): Promise<string> {
  const { privateKey } = await generate("ec", {
    namedCurve: "P-256",
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return privateKey;
}

/** Run openssl in a private temp folder holding the given files; the folder goes afterwards. */
async function withFiles<T>(files: Record<string, string>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "shoal-ca-"));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text, { mode: 0o600 });
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function serial(): string {
  // Positive 128-bit serial, as RFC 5280 asks.
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return `0x${b.toString("hex")}`;
}

/** A new root CA (ECDSA P-256, 20 years, like swarmkit's default root). */
export async function createRootCA(): Promise<KeyPair> {
  const keyPem = await newNodeKey();
  const certPem = await withFiles({ "ca.key": keyPem }, async (dir) => {
    await runCommand("openssl", [
      "req",
      "-x509",
      "-new",
      "-key",
      join(dir, "ca.key"),
      "-out",
      join(dir, "ca.crt"),
      "-subj",
      "/CN=swarm-ca",
      "-days",
      "7300",
      "-sha256",
      "-set_serial",
      serial(),
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    return readFile(join(dir, "ca.crt"), "utf8");
  });
  return { certPem, keyPem };
}

function subjectFor(id: NodeIdentity): string {
  for (const v of [id.nodeId, id.clusterId])
    if (!/^[a-z0-9]+$/.test(v)) throw invalid(`invalid node or cluster id "${v}" for a certificate`);
  return `/O=${id.clusterId}/OU=swarm-${id.role}/CN=${id.nodeId}`;
}

/** A certificate signing request for a node's own key (what a joining node sends). */
export async function createCsr(keyPem: string, id: NodeIdentity): Promise<string> {
  return withFiles({ "node.key": keyPem }, async (dir) => {
    const { stdout } = await runCommand("openssl", [
      "req",
      "-new",
      "-key",
      join(dir, "node.key"),
      "-subj",
      subjectFor(id),
    ]);
    return stdout;
  });
}

/**
 * Sign a node's CSR. The identity is the CA's decision, not the CSR's: the subject is
 * rewritten to the node id, role and cluster the manager chose, whatever the node asked for.
 */
export async function signNodeCsr(ca: KeyPair, csrPem: string, id: NodeIdentity, days = 90): Promise<string> {
  const ext = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth,clientAuth",
    `subjectAltName=DNS:swarm-${id.role},DNS:${id.nodeId}`,
  ].join("\n");
  return withFiles(
    { "ca.crt": ca.certPem, "ca.key": ca.keyPem, "node.csr": csrPem, "ext.cnf": ext },
    async (dir) => {
      await runCommand("openssl", [
        "x509",
        "-req",
        "-in",
        join(dir, "node.csr"),
        "-CA",
        join(dir, "ca.crt"),
        "-CAkey",
        join(dir, "ca.key"),
        "-set_serial",
        serial(),
        "-days",
        String(days),
        "-sha256",
        "-extfile",
        join(dir, "ext.cnf"),
        "-subj",
        subjectFor(id),
        "-out",
        join(dir, "node.crt"),
      ]);
      return readFile(join(dir, "node.crt"), "utf8");
    },
  );
}

/** A key and a certificate for a node, signed here (the manager's own, or a test's). */
export async function issueNodeCertificate(ca: KeyPair, id: NodeIdentity, days = 90): Promise<KeyPair> {
  const keyPem = await newNodeKey();
  const certPem = await signNodeCsr(ca, await createCsr(keyPem, id), id, days);
  return { certPem, keyPem };
}

function field(subject: string, name: string): string | undefined {
  return subject
    .split("\n")
    .map((l) => l.split("="))
    .find(([k]) => k === name)?.[1];
}

/**
 * Who a certificate says its holder is, if our CA signed it and it is valid now. Throws 403
 * naming the problem: another cluster's CA, expired, not yet valid, or not a node certificate.
 */
export function verifyNodeCertificate(
  certPem: string,
  caPem: string,
  now = new Date(),
): NodeIdentity & { notAfter: Date } {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
    throw forbidden(
      "the certificate was not issued by this cluster's CA: the node belongs to another cluster",
    );
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (now < notBefore) throw forbidden(`the certificate is not valid before ${notBefore.toISOString()}`);
  if (now > notAfter)
    throw forbidden(`the certificate expired at ${notAfter.toISOString()}: the node must rejoin`);
  const ou = field(cert.subject, "OU");
  const nodeId = field(cert.subject, "CN");
  const clusterId = field(cert.subject, "O");
  if (!nodeId || !clusterId || (ou !== "swarm-manager" && ou !== "swarm-worker"))
    throw forbidden("the certificate does not name a cluster node (O, OU swarm-manager|swarm-worker, CN)");
  return { nodeId, clusterId, role: ou === "swarm-manager" ? "manager" : "worker", notAfter };
}

/**
 * When to renew: at a random point between half and four fifths of the validity, as swarmkit
 * does, so the nodes of a cluster do not all come at once.
 */
export function renewalTime(certPem: string, rand: () => number = Math.random): Date {
  const cert = new X509Certificate(certPem);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return new Date(from + (to - from) * (0.5 + 0.3 * rand()));
}

// ---- join tokens ----------------------------------------------------------------------------

const BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz";

function base36(bytes: Buffer, length: number): string {
  let n = BigInt(`0x${bytes.toString("hex")}`);
  let out = "";
  while (n > 0n) {
    out = BASE36[Number(n % 36n)] + out;
    n /= 36n;
  }
  return out.padStart(length, "0");
}

/** The CA's fingerprint as tokens carry it: sha256 of the DER certificate in base36 (50 digits). */
export function caDigest(caPem: string): string {
  return base36(createHash("sha256").update(new X509Certificate(caPem).raw).digest(), 50);
}

/** `SWMTKN-1-<CA digest>-<secret>`; the secret decides the role. */
export function makeJoinToken(caPem: string): string {
  return `SWMTKN-1-${caDigest(caPem)}-${base36(randomBytes(16), 25)}`;
}

export function parseJoinToken(token: string): { caDigest: string; secret: string } {
  const m = /^SWMTKN-1-([0-9a-z]{50})-([0-9a-z]{25})$/.exec(token.trim());
  if (!m) throw invalid("invalid join token: it should look like SWMTKN-1-<50 characters>-<25 characters>");
  return { caDigest: m[1], secret: m[2] };
}

/** The role a token grants in this cluster, or 403 for a token of another cluster or an old one. */
export function roleForToken(
  token: string,
  caPem: string,
  tokens: { Worker: string; Manager: string },
): NodeRole {
  const t = parseJoinToken(token);
  if (t.caDigest !== caDigest(caPem))
    throw forbidden("the join token is for another cluster (its CA digest does not match this cluster's CA)");
  // Both compared, always, in constant time: which one matched (or how nearly) takes no longer.
  const manager = sameSecret(token.trim(), tokens.Manager);
  const worker = sameSecret(token.trim(), tokens.Worker);
  if (manager) return "manager";
  if (worker) return "worker";
  throw forbidden("the join token is not valid: it may have been rotated; ask a manager for the current one");
}
