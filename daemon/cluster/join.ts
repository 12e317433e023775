// `swarm join`: this daemon becomes a worker or a manager of an existing cluster. The CA's
// certificate is checked against the token's digest before anything from the manager is trusted;
// the CA then signs this node's key with the role the token grants.
import { randomInt } from "node:crypto";
import { forbidden, invalid, unavailable } from "../../shared/errors.js";
import { runCommand } from "../../shared/command.js";
import { callLeader, withPort } from "../../shared/leader-call.js";
import { caDigest, createCsr, newNodeKey, parseJoinToken } from "../../manager/ca/ca.js";
import { caClientJoining } from "./clients.js";
import { ALREADY_IN_A_SWARM } from "./init.js";
import type { ClusterNode } from "./node.js";
import { nodeDescription } from "./node-description.js";
import type { SwarmState } from "./state.js";

export interface JoinRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  RemoteAddrs?: string[];
  JoinToken?: string;
}

/** The local address the kernel would use to reach a manager (what Docker advertises by default). */
async function routeSourceAddr(remote: string, port: number, listenAddr: string): Promise<string> {
  if (!listenAddr.startsWith("0.0.0.0")) return listenAddr;
  const ip = remote.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  try {
    const { stdout } = await runCommand("ip", ["-j", "route", "get", ip]);
    const src = (JSON.parse(stdout) as Array<{ prefsrc?: string }>)[0]?.prefsrc;
    if (src) return `${src}:${port}`;
  } catch {
    // fall through to the error below
  }
  throw invalid(`cannot tell which address to advertise for reaching ${remote}: pass --advertise-addr`);
}

export async function joinCluster(node: ClusterNode, request: JoinRequest): Promise<void> {
  if (node.state) throw unavailable(ALREADY_IN_A_SWARM);
  if (!request.JoinToken)
    throw invalid("joining needs a token: pass --token (see `join-token` on a manager)");
  const remotes = (request.RemoteAddrs ?? []).filter(Boolean).map((a) => withPort(a));
  if (remotes.length === 0)
    throw invalid("joining needs a manager's address: give HOST:PORT after the options");
  const token = parseJoinToken(request.JoinToken);
  const listenAddr = withPort(request.ListenAddr || "0.0.0.0:2377");
  const port = Number(listenAddr.split(":").pop());
  const advertiseAddr = request.AdvertiseAddr
    ? withPort(request.AdvertiseAddr, port)
    : await routeSourceAddr(remotes[0], port, listenAddr);
  try {
    // The CA's certificate, checked against the digest the token carries before anything
    // from this manager is trusted.
    const { res: root, addr: caAddr } = await callLeader(
      remotes[0],
      caClientJoining(),
      (c) => c.getRootCaCertificate,
      {},
    );
    if (caDigest(root.caCert) !== token.caDigest) {
      node.log.warn({ manager: caAddr }, "refused to join: the manager's CA does not match the token");
      throw forbidden(
        `the manager at ${caAddr} belongs to another cluster: its CA does not match the join token; check the token and the address`,
      );
    }
    const keyPem = await newNodeKey();
    const csr = await createCsr(keyPem, { nodeId: "joining", role: "worker", clusterId: "joining" });
    const draft: SwarmState = {
      nodeId: "",
      clusterId: "",
      role: "worker",
      raftId: randomInt(1, 2 ** 31),
      listenAddr,
      advertiseAddr,
      managers: remotes,
    };
    const { res: issued, addr: leader } = await callLeader(
      caAddr,
      caClientJoining(root.caCert),
      (c) => c.issueNodeCertificate,
      {
        token: request.JoinToken.trim(),
        csr,
        description: nodeDescription(draft.advertiseAddr),
        listenAddr: advertiseAddr,
      },
    );
    const state: SwarmState = {
      ...draft,
      nodeId: issued.nodeId,
      clusterId: issued.clusterId,
      role: issued.role === "manager" ? "manager" : "worker",
      managers: [...new Set([leader, ...remotes])],
    };
    await node.adoptIdentity({ caPem: issued.caCert, certPem: issued.cert, keyPem });
    node.state = state;
    await node.startServer(state);
    if (state.role === "manager") await node.roles.joinRaft(state, leader);
    await node.startAgent(state);
    await node.saveState();
    node.log.info({ node: state.nodeId, role: state.role, manager: leader }, "joined the cluster");
  } catch (e) {
    await node.teardown();
    throw e;
  }
}
