// X.509 certificates and PKCS#10 signing requests built in memory and signed with node:crypto
// (asynchronously, off the event loop), so no private key is ever written to a file or handed
// to another program. Only what the cluster CA issues: ECDSA P-256 (or RSA) keys, SHA-256.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import { promisify } from "node:util";
import {
  bitString,
  bitStringBytes,
  boolean,
  children,
  decodeOid,
  explicit,
  implicit,
  namedBits,
  octetString,
  oid,
  pem,
  readWhole,
  sequence,
  SEQUENCE,
  set,
  smallInteger,
  time,
  tlv,
  unpem,
  unsignedInteger,
  utf8,
  type Der,
} from "./der.js";

const signAsync = promisify(sign);
const verifyAsync = promisify(verify);

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

/** keyUsage bits (RFC 5280 4.2.1.3). */
export const KeyUsage = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

export interface NameParts {
  O?: string;
  OU?: string;
  CN: string;
}

/** A Name with one attribute per RDN, in the order O, OU, CN (as `-subj /O=../OU=../CN=..`). */
export function name(parts: NameParts): Der {
  const rdns: Der[] = [];
  for (const [key, type] of [
    ["O", OID.organization],
    ["OU", OID.organizationalUnit],
    ["CN", OID.commonName],
  ] as const) {
    const v = parts[key];
    if (v !== undefined) rdns.push(set(sequence(oid(type), utf8(v))));
  }
  return sequence(...rdns);
}

function signatureAlgorithm(key: KeyObject): { der: Der; oid: string } {
  if (key.asymmetricKeyType === "ec")
    return { der: sequence(oid(OID.ecdsaWithSha256)), oid: OID.ecdsaWithSha256 };
  if (key.asymmetricKeyType === "rsa")
    return { der: sequence(oid(OID.sha256WithRsa), tlv(0x05)), oid: OID.sha256WithRsa };
  throw new Error(`a ${key.asymmetricKeyType ?? "unknown"} key cannot sign here: use ECDSA P-256`);
}

/** The subjectPublicKey bits of an SPKI: what a key identifier hashes (RFC 5280 4.2.1.2 method 1). */
function keyIdentifier(spki: Uint8Array): Uint8Array {
  const [, bits] = children(readWhole(spki, SEQUENCE, "the public key"));
  return new Uint8Array(createHash("sha1").update(bitStringBytes(bits)).digest());
}

function extension(id: string, critical: boolean, value: Der): Der {
  return critical
    ? sequence(oid(id), boolean(true), octetString(value))
    : sequence(oid(id), octetString(value));
}

export interface CertificateRequest {
  /** The requester's SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
}

/** A PKCS#10 request for `keyPem`'s public key, signed with it. */
export async function buildCsr(keyPem: string, subject: NameParts): Promise<string> {
  const key = createPrivateKey(keyPem);
  const spki = new Uint8Array(createPublicKey(key).export({ type: "spki", format: "der" }));
  const info = sequence(smallInteger(0), name(subject), spki, explicit(0));
  const alg = signatureAlgorithm(key);
  const sig = await signAsync("sha256", info, key);
  return pem("CERTIFICATE REQUEST", sequence(info, alg.der, bitString(new Uint8Array(sig))));
}

/** Reads a PKCS#10 request and checks its self-signature (the requester holds the key). */
export async function parseCsr(csrPem: string): Promise<CertificateRequest> {
  const top = readWhole(unpem("CERTIFICATE REQUEST", csrPem), SEQUENCE, "the certificate signing request");
  const [info, alg, sig] = children(top);
  if (!info || !alg || !sig || info.tag !== SEQUENCE || alg.tag !== SEQUENCE)
    throw new Error("the certificate signing request is not PKCS#10");
  const [version, , spki] = children(info);
  if (!version || !spki || spki.tag !== SEQUENCE || version.content.length !== 1 || version.content[0] !== 0)
    throw new Error("the certificate signing request is not a version 1 PKCS#10 request");
  const algOid = decodeOid(children(alg)[0]);
  if (algOid !== OID.ecdsaWithSha256 && algOid !== OID.sha256WithRsa)
    throw new Error(
      `the certificate signing request is signed with ${algOid}; use SHA-256 with ECDSA or RSA`,
    );
  const publicKey = createPublicKey({ key: Buffer.from(spki.raw), format: "der", type: "spki" });
  if (!(await verifyAsync("sha256", info.raw, publicKey, bitStringBytes(sig))))
    throw new Error("the certificate signing request's signature does not verify against its own key");
  return { spki: new Uint8Array(spki.raw) };
}

export interface CertificateTemplate {
  subject: NameParts;
  spki: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  keyUsage: number[];
  /** Leaf certificates: serverAuth and clientAuth. */
  tlsUsage?: boolean;
  dnsNames?: string[];
}

/** The issuer: its Name and key identifier come from its certificate (or, self-signed, the template). */
export interface Issuer {
  key: string;
  /** DER of the issuer's certificate; omitted for a self-signed one. */
  certDer?: Uint8Array;
}

/** The Name and SPKI of a certificate (tbsCertificate fields 4 and 7, after version and serial). */
function subjectOf(certDer: Uint8Array): { name: Uint8Array; spki: Uint8Array } {
  const [tbs] = children(readWhole(certDer, SEQUENCE, "the CA certificate"));
  const fields = children(tbs);
  const off = fields[0].tag === 0xa0 ? 1 : 0;
  return { name: fields[off + 4].raw, spki: fields[off + 5].raw };
}

/** A certificate for `t`, signed by `issuer` in memory. */
export async function buildCertificate(t: CertificateTemplate, issuer: Issuer): Promise<string> {
  const key = createPrivateKey(issuer.key);
  const alg = signatureAlgorithm(key);
  const subjectName = name(t.subject);
  const from = issuer.certDer ? subjectOf(issuer.certDer) : { name: subjectName, spki: t.spki };
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // positive, 128 bits, as RFC 5280 asks
  const extensions: Der[] = [
    extension(OID.basicConstraints, true, t.ca ? sequence(boolean(true)) : sequence()),
    extension(OID.keyUsage, true, namedBits(t.keyUsage)),
  ];
  if (t.tlsUsage)
    extensions.push(extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))));
  if (t.dnsNames && t.dnsNames.length > 0)
    extensions.push(
      extension(
        OID.subjectAltName,
        false,
        sequence(...t.dnsNames.map((n) => implicit(2, new TextEncoder().encode(n)))),
      ),
    );
  extensions.push(extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(t.spki))));
  extensions.push(
    extension(OID.authorityKeyIdentifier, false, sequence(implicit(0, keyIdentifier(from.spki)))),
  );
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(serial),
    alg.der,
    from.name,
    sequence(time(t.notBefore), time(t.notAfter)),
    subjectName,
    t.spki,
    explicit(3, sequence(...extensions)),
  );
  const sig = await signAsync("sha256", tbs, key);
  return pem("CERTIFICATE", sequence(tbs, alg.der, bitString(new Uint8Array(sig))));
}

/** The SubjectPublicKeyInfo of a private key. */
export function publicKeyInfo(keyPem: string): Uint8Array {
  return new Uint8Array(createPublicKey(keyPem).export({ type: "spki", format: "der" }));
}
