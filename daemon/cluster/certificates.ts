// The node's certificate from the cluster CA: renewed for a role change and before it expires.
import { messageOf } from "../../shared/errors.js";
import { callLeader } from "../../shared/leader-call.js";
import { createCsr, newNodeKey, renewalTime } from "../../manager/ca/ca.js";
import { caClient } from "./clients.js";
import type { ClusterNode } from "./node.js";
import type { SwarmState } from "./state.js";

export class CertificateRenewal {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly node: ClusterNode) {}

  /**
   * A new key and certificate from the CA, with the role the store gives this node now. Used for
   * role changes and before the certificate expires; links made from now on use the new one.
   */
  async renew(state: SwarmState): Promise<{ role: string; leader: string }> {
    const node = this.node;
    const keyPem = await newNodeKey();
    const csr = await createCsr(keyPem, {
      nodeId: state.nodeId,
      role: state.role,
      clusterId: state.clusterId,
    });
    const { res, addr: leader } = await callLeader(
      node.agent?.manager ?? state.managers[0] ?? state.advertiseAddr,
      caClient(node.requireIdentity()),
      (c) => c.renewNodeCertificate,
      { csr },
    );
    await node.adoptIdentity({ caPem: res.caCert, certPem: res.cert, keyPem });
    this.schedule();
    node.log.info({ role: res.role }, "renewed this node's certificate");
    return { role: res.role, leader };
  }

  /** Renew at a random point between half and four fifths of the validity (swarmkit's rule). */
  schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    const identity = this.node.identity;
    if (!identity) return;
    const due = renewalTime(identity.certPem).getTime();
    // setTimeout holds at most ~24.8 days: wake up then and look again.
    const wait = Math.min(Math.max(due - Date.now(), 1000), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      const state = this.node.state;
      if (!state) return;
      if (Date.now() < due) return this.schedule();
      void this.node
        .serial(() => this.renew(state))
        .catch((e: unknown) => {
          this.node.log.warn(
            { err: messageOf(e) },
            "renewing this node's certificate failed; trying again in a minute",
          );
          this.timer = setTimeout(() => this.schedule(), 60_000);
        });
    }, wait);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
