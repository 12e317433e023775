// Hand-made gRPC calls to a test daemon's cluster port from inside its network namespace
// (test/fixtures/grpc-probe.mjs), and nodes made the way a joining node is made (a key, a CSR and
// IssueNodeCertificate with a token) whose certificates a test can then use as an attacker would.
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { createCsr, newNodeKey } from "../../manager/ca/ca.js";
import type { TlsIdentity } from "../../shared/grpc-tls.js";
import { runFixtureIn } from "./daemon.js";

const fixture = resolve(import.meta.dirname, "../fixtures/grpc-probe.mjs");

export const CLUSTER_PORT_ADDR = "127.0.0.1:2377";

export interface ProbeCall {
  service: "CA" | "Dispatcher" | "Node" | "ResourceAllocator" | "Raft";
  method: string;
  /** The request message's name in proto/gen (e.g. "HeartbeatRequest"). */
  type: string;
  request?: Record<string, unknown>;
  /** Client streams (Raft). */
  requests?: Array<Record<string, unknown>>;
  /** Fill a string field with this many bytes. */
  pad?: { field: string; bytes: number };
}

/** Whom to call: the test daemon's port unless `addr`; `tlsName` for a worker (its node id). */
export interface ProbeTarget {
  identity?: TlsIdentity;
  caPem?: string;
  addr?: string;
  tlsName?: string;
}

export interface ProbeResult {
  code: number;
  details?: string;
  response?: Record<string, unknown> | null;
}

/** Make the calls in order from inside `netns`; no client certificate unless `identity`. */
export function probe(netns: string, calls: ProbeCall[], o: ProbeTarget = {}): Promise<ProbeResult[]> {
  return runFixtureIn<ProbeResult[]>(netns, fixture, { addr: o.addr ?? CLUSTER_PORT_ADDR, ...o, calls });
}

/** One call; see probe. */
export async function probeOne(netns: string, call: ProbeCall, o: ProbeTarget = {}): Promise<ProbeResult> {
  const [r] = await probe(netns, [call], o);
  return r;
}

export interface JoinedNode {
  nodeId: string;
  role: string;
  identity: TlsIdentity;
}

/** A node admitted with `token` through the CA service, as `swarm join` does (no daemon behind it). */
export async function joinByHand(netns: string, token: string): Promise<JoinedNode> {
  const keyPem = await newNodeKey();
  const csr = await createCsr(keyPem, { nodeId: "joining", role: "worker", clusterId: "unknown" });
  const r = await probeOne(netns, {
    service: "CA",
    method: "issueNodeCertificate",
    type: "IssueNodeCertificateRequest",
    request: { token, csr, description: { hostname: `byhand-${Math.random().toString(36).slice(2, 8)}` } },
  });
  if (r.code !== 0 || !r.response) throw new Error(`join by hand failed: ${r.code} ${r.details}`);
  const res = r.response as { nodeId: string; role: string; cert: string; caCert: string };
  return { nodeId: res.nodeId, role: res.role, identity: { caPem: res.caCert, certPem: res.cert, keyPem } };
}

/**
 * A dispatcher session held open with `identity` (heartbeating), so the node counts as ready,
 * until stop().
 */
export async function holdSession(
  netns: string,
  identity: TlsIdentity,
): Promise<{ sessionId: string; stop: () => Promise<void> }> {
  const child = spawn("nsenter", [`--net=/run/netns/${netns}`, process.execPath, fixture], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  };
  child.stdin.end(JSON.stringify({ addr: CLUSTER_PORT_ADDR, identity, hold: true }));
  const line = await new Promise<string>((resolveP, reject) => {
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) resolveP(out.slice(0, nl));
    });
    child.once("exit", (code) => reject(new Error(`session holder exited ${code}: ${out}${err}`)));
  }).catch(async (e: unknown) => {
    await stop();
    throw e;
  });
  const msg = JSON.parse(line) as { sessionId?: string; details?: string };
  if (!msg.sessionId) {
    await stop();
    throw new Error(`no session: ${msg.details}`);
  }
  return { sessionId: msg.sessionId, stop };
}
