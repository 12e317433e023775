// The cluster's certificate authority, as swarmkit runs it: a root CA made at `cluster init`,
// node certificates whose subject names the node (CN), its role (OU swarm-manager or
// swarm-worker) and the cluster (O), and join tokens that carry the CA's digest so a joining
// node can tell it reached the right cluster before it trusts anything. Keys are made, and
// certificates and requests built and signed, in memory with node:crypto (asynchronously;
// x509.ts): the CA key never leaves the manager's memory and state folder, never a temp file.
import { createHash, generateKeyPair, randomBytes, X509Certificate } from "node:crypto";
import { promisify } from "node:util";
import { forbidden, invalid } from "../../shared/errors.js";
import { buildCertificate, buildCsr, KeyUsage, parseCsr, publicKeyInfo, type NameParts } from "./x509.js";
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

const DAY_MS = 24 * 3600 * 1000;

/** A new root CA (ECDSA P-256, 20 years, like swarmkit's default root). */
export async function createRootCA(): Promise<KeyPair> {
  const keyPem = await newNodeKey();
  const now = new Date();
  const certPem = await buildCertificate(
    {
      subject: { CN: "swarm-ca" },
      spki: publicKeyInfo(keyPem),
      notBefore: now,
      notAfter: new Date(now.getTime() + 7300 * DAY_MS),
      ca: true,
      keyUsage: [KeyUsage.keyCertSign, KeyUsage.cRLSign],
    },
    { key: keyPem },
  );
  return { certPem, keyPem };
}

function subjectFor(id: NodeIdentity): NameParts {
  for (const v of [id.nodeId, id.clusterId])
    if (!/^[a-z0-9]+$/.test(v)) throw invalid(`invalid node or cluster id "${v}" for a certificate`);
  return { O: id.clusterId, OU: `swarm-${id.role}`, CN: id.nodeId };
}

/** A certificate signing request for a node's own key (what a joining node sends). */
export async function createCsr(keyPem: string, id: NodeIdentity): Promise<string> {
  return buildCsr(keyPem, subjectFor(id));
}

/**
 * Sign a node's CSR. The identity is the CA's decision, not the CSR's: the subject is
 * rewritten to the node id, role and cluster the manager chose, whatever the node asked for.
 * The CSR's own signature must verify (the node holds the key it asks a certificate for).
 */
export async function signNodeCsr(ca: KeyPair, csrPem: string, id: NodeIdentity, days = 90): Promise<string> {
  const subject = subjectFor(id);
  let spki: Uint8Array;
  try {
    ({ spki } = await parseCsr(csrPem));
  } catch (e) {
    throw invalid(`invalid certificate signing request: ${e instanceof Error ? e.message : String(e)}`);
  }
  const now = new Date();
  return buildCertificate(
    {
      subject,
      spki,
      notBefore: now,
      notAfter: new Date(now.getTime() + days * DAY_MS),
      ca: false,
      keyUsage: [KeyUsage.digitalSignature, KeyUsage.keyEncipherment],
      tlsUsage: true,
      dnsNames: [`swarm-${id.role}`, id.nodeId],
    },
    { key: ca.keyPem, certDer: new Uint8Array(new X509Certificate(ca.certPem).raw) },
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
