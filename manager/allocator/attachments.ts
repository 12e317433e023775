// Plain containers on attachable overlay networks (`docker run --network app` on any node): the
// leader's side of swarmkit's ResourceAllocator. AttachNetwork records an attachment for (the
// calling node, a container, a network) with its address, allocated at once under the
// allocation lock, so the node learns the address in the answer and a refusal (not attachable,
// no free address, a taken --ip) reaches `docker run` as it happens. The attachment then shows
// in the network state like a task endpoint: every host gets forwarding entries and DNS names
// for it, and the allocator gives its node an endpoint on the network. DetachNetwork deletes it
// and the address is free again at once (everything is read from the store).
import { forbidden, invalid, notFound } from "../../shared/errors.js";
import { findByRef, type ClusterStore, type ReadTx } from "../store/store.js";
import type { AttachmentObject, NetworkObject } from "../store/types.js";
import { Allocations, attachmentView, withAllocationLock } from "./allocator.js";

export interface AttachRequest {
  /** The network's id, name or unique id prefix. */
  network: string;
  containerId: string;
  containerName: string;
  aliases?: string[];
  /** A fixed address (`--ip`), no prefix. */
  address?: string;
}

const CONTAINER_ID = /^[0-9a-f]{12,64}$/;

/** The refusal for a network plain containers may not join, as Docker says it, with the fix. */
function notAttachable(name: string): string {
  return `network ${name} is not manually attachable: recreate it with \`docker network create -d overlay --attachable ${name}\`, or run the container as a service (docker service create --network ${name})`;
}

/** The attachment's DNS names on its network: container name, short id, aliases (as Docker). */
export function attachmentNames(a: AttachmentObject): string[] {
  return [
    ...new Set([a.ContainerName, a.ContainerID.slice(0, 12), ...(a.Aliases ?? [])].filter((x) => x !== "")),
  ];
}

/**
 * Record an attachment of `nodeId`'s container to a network and give it an address. A new one
 * every time (swarmkit's rule): a retried call leaves an unused one, which its node finds in the
 * network state and detaches.
 */
export async function attachNetwork(
  store: ClusterStore,
  nodeId: string,
  req: AttachRequest,
): Promise<{ attachment: AttachmentObject; network: NetworkObject }> {
  if (!req.network) throw invalid("attaching needs a network: name it");
  if (!CONTAINER_ID.test(req.containerId))
    throw invalid(`invalid container id ${JSON.stringify(req.containerId)}: give the container's full id`);
  return withAllocationLock(store, async () => {
    let out: { attachment: AttachmentObject; network: NetworkObject } | undefined;
    await store.update((tx) => {
      if (!tx.get("nodes", nodeId))
        throw forbidden(`node ${nodeId} is not (or no longer) part of the cluster: join it again`);
      const n = findByRef(tx, "networks", req.network);
      if (!n) throw notFound(`network ${req.network} not found`);
      if (n.Spec.Attachable !== true || n.Spec.Ingress === true) throw forbidden(notAttachable(n.Spec.Name));
      const address = Allocations.fromStore(tx).attachmentAddress(n.ID, req.address || undefined);
      const aliases = [...new Set((req.aliases ?? []).filter((x) => x !== ""))];
      const attachment = tx.create("attachments", {
        NodeID: nodeId,
        ContainerID: req.containerId,
        ContainerName: req.containerName.replace(/^\//, ""),
        ...(aliases.length > 0 ? { Aliases: aliases } : {}),
        Attachment: { Network: attachmentView(n), Addresses: [address] },
      });
      out = { attachment, network: n };
    });
    if (!out) throw new Error("the attachment was not recorded");
    return out;
  });
}

/** Delete an attachment of `nodeId`'s: 404 when it is gone already, 403 for another node's. */
export async function detachNetwork(
  store: ClusterStore,
  nodeId: string,
  attachmentId: string,
): Promise<void> {
  if (!attachmentId) throw invalid("detaching needs an attachment id");
  await store.update((tx) => {
    const a = tx.get("attachments", attachmentId);
    if (!a) throw notFound(`attachment ${attachmentId} not found`);
    if (a.NodeID !== nodeId)
      throw forbidden(`attachment ${attachmentId} belongs to node ${a.NodeID}, not to node ${nodeId}`);
    tx.delete("attachments", attachmentId, a.Meta.Version.Index);
  });
}

/** Attachments whose node or network is gone: nobody will detach them, so the allocator does. */
export function orphanedAttachments(tx: ReadTx): AttachmentObject[] {
  return tx.list(
    "attachments",
    (a) => !tx.get("nodes", a.NodeID) || !tx.get("networks", a.Attachment.Network.ID),
  );
}
