// The engine's way to the leader's ResourceAllocator for plain containers on attachable overlay
// networks (moby's AttachNetwork/DetachNetwork), with this node's identity. Calls go to the
// manager this node's session is with (the leader) and follow redirects.
import * as grpc from "@grpc/grpc-js";
import { ResourceAllocatorClient } from "../proto/gen/cluster.js";
import {
  conflict,
  forbidden,
  invalid,
  isShoalError,
  notFound,
  unavailable,
  type ShoalError,
} from "../shared/errors.js";
import { channelOptions, clientCredentials, MANAGER_TLS_NAME, type TlsIdentity } from "../shared/grpc-tls.js";
import { callLeader } from "../shared/leader-call.js";
import type { ClusterAttacher } from "./engine/network/cluster-attach.js";

/** How long an attach or detach call to the leader may take. */
const ATTACH_CALL_MS = 10_000;

/** A ResourceAllocator refusal as the status `docker run` should show (the leader's words). */
function attachError(addr: string, e: grpc.ServiceError): ShoalError {
  const what = e.details || e.message;
  switch (e.code) {
    case grpc.status.NOT_FOUND:
      return notFound(what);
    case grpc.status.PERMISSION_DENIED:
      return forbidden(what);
    case grpc.status.ALREADY_EXISTS:
    case grpc.status.ABORTED:
      return conflict(what);
    case grpc.status.INVALID_ARGUMENT:
      return invalid(what);
    case grpc.status.UNAUTHENTICATED:
      return forbidden(`the leader at ${addr} refused this node: ${what}`);
    default:
      return unavailable(
        `the cluster's leader (${addr}) could not be reached to attach or detach the container (${what}): try again when the managers are reachable`,
      );
  }
}

export interface ClusterAttacherOptions {
  /** The manager this node has a session with now (the leader), if any. */
  leader(): string | undefined;
  /** Any manager this node knows of, for giving an attachment back while it has no session. */
  anyManager(): string | undefined;
  /** False once the agent has stopped: nothing waits for a session any more. */
  active(): boolean;
  identity(): TlsIdentity;
}

export function clusterAttacher(o: ClusterAttacherOptions): ClusterAttacher {
  const client = (addr: string) =>
    new ResourceAllocatorClient(addr, clientCredentials(o.identity()), channelOptions(MANAGER_TLS_NAME));
  return {
    connected: async (waitMs) => {
      const until = Date.now() + waitMs;
      while (!o.leader()) {
        if (Date.now() >= until || !o.active()) return false;
        await new Promise((r) => setTimeout(r, 100));
      }
      return true;
    },
    attach: async (req) => {
      const addr = o.leader();
      if (!addr)
        throw unavailable(
          "this node has no connection to the cluster's leader, which gives the container its address on the overlay network: try again when the managers are reachable",
        );
      const { res } = await callLeader(
        addr,
        client,
        (c) => c.attachNetwork,
        {
          network: req.network,
          containerId: req.containerId,
          containerName: req.containerName,
          aliases: req.aliases,
          address: req.address ?? "",
        },
        { timeoutMs: ATTACH_CALL_MS, mapError: attachError },
      );
      return res;
    },
    detach: async (attachmentId) => {
      const addr = o.leader() ?? o.anyManager();
      if (!addr) throw unavailable("no manager is known to this node");
      try {
        await callLeader(
          addr,
          client,
          (c) => c.detachNetwork,
          { attachmentId },
          { timeoutMs: ATTACH_CALL_MS, mapError: attachError },
        );
      } catch (e) {
        // Gone already (its node was removed, or an earlier call got through): given back.
        if (isShoalError(e) && e.status === 404) return;
        throw e;
      }
    },
  };
}
