// The cluster CA: node certificates carry node, role and cluster; another cluster's certificate
// and tokens are refused; join tokens hold the CA digest.
import { describe, expect, it } from "vitest";
import {
  caDigest,
  createCsr,
  createRootCA,
  newNodeKey,
  signNodeCsr,
  issueNodeCertificate,
  makeJoinToken,
  parseJoinToken,
  renewalTime,
  roleForToken,
  verifyNodeCertificate,
} from "../../manager/ca/ca.js";
import { isShoalError } from "../../shared/errors.js";

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isShoalError(e)) return `${e.status} ${e.message}`;
    throw e;
  }
  throw new Error("expected a refusal");
}

describe("cluster CA", () => {
  it("issues node certificates that name the node, its role and the cluster", async () => {
    const ca = await createRootCA();
    const node = await issueNodeCertificate(ca, {
      nodeId: "node1abc",
      role: "worker",
      clusterId: "cluster9",
    });
    const who = verifyNodeCertificate(node.certPem, ca.certPem);
    expect(who).toMatchObject({ nodeId: "node1abc", role: "worker", clusterId: "cluster9" });
    expect(who.notAfter.getTime() - Date.now()).toBeGreaterThan(89 * 86400_000);
    const renew = renewalTime(node.certPem, () => 0).getTime();
    expect(renew - Date.now()).toBeGreaterThan(44 * 86400_000);
    expect(renew - Date.now()).toBeLessThan(46 * 86400_000);
  });

  it("refuses a certificate from another cluster's CA, and an expired one", async () => {
    const ours = await createRootCA();
    const theirs = await createRootCA();
    const stranger = await issueNodeCertificate(theirs, {
      nodeId: "n2",
      role: "manager",
      clusterId: "other",
    });
    expect(refusal(() => verifyNodeCertificate(stranger.certPem, ours.certPem))).toMatch(
      /^403 .*another cluster/,
    );
    const node = await issueNodeCertificate(ours, { nodeId: "n3", role: "manager", clusterId: "c1" }, 1);
    const later = new Date(Date.now() + 3 * 86400_000);
    expect(refusal(() => verifyNodeCertificate(node.certPem, ours.certPem, later))).toMatch(/^403 .*expired/);
  });

  it("join tokens carry the CA digest; a token of another cluster or a rotated one is refused", async () => {
    const ca = await createRootCA();
    const tokens = { Worker: makeJoinToken(ca.certPem), Manager: makeJoinToken(ca.certPem) };
    expect(parseJoinToken(tokens.Worker).caDigest).toBe(caDigest(ca.certPem));
    expect(tokens.Worker).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    expect(roleForToken(tokens.Manager, ca.certPem, tokens)).toBe("manager");
    expect(roleForToken(tokens.Worker, ca.certPem, tokens)).toBe("worker");
    const other = await createRootCA();
    expect(refusal(() => roleForToken(makeJoinToken(other.certPem), ca.certPem, tokens))).toMatch(
      /another cluster/,
    );
    const rotated = makeJoinToken(ca.certPem);
    expect(refusal(() => roleForToken(rotated, ca.certPem, tokens))).toMatch(/rotated/);
    expect(refusal(() => parseJoinToken("SWMTKN-1-short-x"))).toMatch(/^400 invalid join token/);
  });

  it("signs only a CSR whose own signature verifies, with the identity the CA chose", async () => {
    const ca = await createRootCA();
    const key = await newNodeKey();
    const csr = await createCsr(key, { nodeId: "asked", role: "manager", clusterId: "asked" });
    const cert = await signNodeCsr(ca, csr, { nodeId: "given1", role: "worker", clusterId: "cluster1" });
    expect(verifyNodeCertificate(cert, ca.certPem)).toMatchObject({
      nodeId: "given1",
      role: "worker",
      clusterId: "cluster1",
    });
    // A changed byte in the signature: the request no longer proves it holds the key.
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    der[der.length - 5] ^= 1;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(
      signNodeCsr(ca, tampered, { nodeId: "given2", role: "worker", clusterId: "cluster1" }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      signNodeCsr(ca, "not a csr", { nodeId: "given3", role: "worker", clusterId: "cluster1" }),
    ).rejects.toMatchObject({ status: 400 });
  });
});
