// A cluster CA and node certificates for tests of the gRPC services, and a mutual-TLS gRPC
// server on loopback as shoald would run it (one server, services added by the caller).
import * as grpc from "@grpc/grpc-js";
import { createRootCA, issueNodeCertificate, type KeyPair, type NodeRole } from "../../manager/ca/ca.js";
import { newObjectId } from "../../manager/store/store.js";
import { MemoryCertificateProvider, serverCredentials, type TlsIdentity } from "../../shared/grpc-tls.js";

export interface TestCa {
  root: KeyPair;
  clusterId: string;
  /** A key and certificate for a node of this cluster. */
  identity(nodeId: string, role: NodeRole): Promise<TlsIdentity>;
}

export async function testCa(): Promise<TestCa> {
  const root = await createRootCA();
  const clusterId = newObjectId();
  return {
    root,
    clusterId,
    async identity(nodeId, role) {
      const pair = await issueNodeCertificate(root, { nodeId, role, clusterId });
      return { caPem: root.certPem, certPem: pair.certPem, keyPem: pair.keyPem };
    },
  };
}

/** A started gRPC server on 127.0.0.1 (a free port) presenting `identity`. */
export async function tlsServer(
  identity: TlsIdentity,
  addServices: (server: grpc.Server) => void,
): Promise<{ server: grpc.Server; addr: string }> {
  const server = new grpc.Server();
  addServices(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", serverCredentials(new MemoryCertificateProvider(identity)), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { server, addr: `127.0.0.1:${port}` };
}
