// Clients of other nodes' services on the cluster port: the CA (joining, renewing) and the Node
// service (Raft membership, API forwarding).
import * as pb from "../../proto/gen/cluster.js";
import {
  channelOptions,
  clientCredentials,
  joiningCredentials,
  MANAGER_TLS_NAME,
  type TlsIdentity,
} from "../../shared/grpc-tls.js";

export const caClientJoining = (caPem?: string) => (addr: string) =>
  new pb.CAClient(addr, joiningCredentials(caPem), channelOptions(MANAGER_TLS_NAME));

export const caClient = (identity: TlsIdentity) => (addr: string) =>
  new pb.CAClient(addr, clientCredentials(identity), channelOptions(MANAGER_TLS_NAME));

/** A client of another node's Node service; `tlsName` is "swarm-manager" or that node's id. */
export const nodeClient =
  (identity: TlsIdentity, tlsName = MANAGER_TLS_NAME) =>
  (addr: string) =>
    new pb.NodeClient(addr, clientCredentials(identity), channelOptions(tlsName));

export type NodeClient = pb.NodeClient;
