// Mutual TLS for the gRPC links between nodes, with certificates from the cluster CA. One
// server port serves nodes that already hold a certificate and nodes that are joining (which
// have none yet), so the server asks every client for a certificate but does not insist; each
// service decides, from the peer certificate, whether the caller may go on (see peerCertificatePem).
// Certificates live in memory behind a provider, so a renewed one takes effect without restarting
// the server. Clients check the server's certificate against the CA and against the name the
// CA wrote into it (swarmkit's way: "swarm-manager" for managers, the node id for a given node).
import { X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { experimental } from "@grpc/grpc-js";

export interface TlsIdentity {
  caPem: string;
  certPem: string;
  keyPem: string;
}

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** A certificate provider whose certificates are set from code (at start and on renewal). */
export class MemoryCertificateProvider implements experimental.CertificateProvider {
  private identity: TlsIdentity;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(identity: TlsIdentity) {
    this.identity = identity;
  }

  get current(): TlsIdentity {
    return this.identity;
  }

  update(identity: TlsIdentity): void {
    this.identity = identity;
    for (const l of this.caListeners) l({ caCertificate: Buffer.from(identity.caPem) });
    for (const l of this.identityListeners)
      l({ certificate: Buffer.from(identity.certPem), privateKey: Buffer.from(identity.keyPem) });
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // Later, not now: grpc-js registers its watcher only after adding the listener.
    queueMicrotask(() => listener({ caCertificate: Buffer.from(this.identity.caPem) }));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() =>
      listener({
        certificate: Buffer.from(this.identity.certPem),
        privateKey: Buffer.from(this.identity.keyPem),
      }),
    );
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

/** Server side: asks for a client certificate, does not require one (joining nodes have none). */
export function serverCredentials(provider: MemoryCertificateProvider): grpc.ServerCredentials {
  return experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/**
 * Trailing metadata naming the leader's host:port when a follower refuses a call only the leader
 * answers (dispatcher sessions, admissions); callers retry there.
 */
export const LEADER_METADATA = "shoal-leader";

/** The name a manager's certificate carries, used to check any manager (swarmkit's convention). */
export const MANAGER_TLS_NAME = "swarm-manager";

/**
 * Pings on every node-to-node connection: a peer behind a dead link (a cut host, a pulled cable)
 * is noticed within about 4 s and the connection made again, instead of waiting out TCP's
 * retransmission backoff after the link comes back. grpc-js servers accept pings this often.
 */
export const NODE_KEEPALIVE: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 2_000,
  "grpc.keepalive_timeout_ms": 2_000,
  "grpc.keepalive_permit_without_calls": 1,
};

/** Channel options that make the TLS name check look for `tlsName` instead of the address. */
export function channelOptions(tlsName: string): grpc.ChannelOptions {
  return {
    "grpc.ssl_target_name_override": tlsName,
    "grpc.default_authority": tlsName,
    ...NODE_KEEPALIVE,
  };
}

/** Client side with this node's certificate: for every link after joining. */
export function clientCredentials(identity: TlsIdentity): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    Buffer.from(identity.caPem),
    Buffer.from(identity.keyPem),
    Buffer.from(identity.certPem),
  );
}

/**
 * Client side while joining: no certificate of our own. With the CA known (from the token's
 * digest check) the server is verified against it; before that (fetching the CA itself) it is
 * not, and the caller must check what it gets against the token.
 */
export function joiningCredentials(caPem?: string): grpc.ChannelCredentials {
  if (caPem) return grpc.credentials.createSsl(Buffer.from(caPem));
  return grpc.credentials.createSsl(null, null, null, {
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
}

/**
 * The caller's certificate (PEM) on a server call, if it presented one that chains to the CA the
 * server trusts (grpc-js hands over no certificate when that check failed, so a foreign one looks
 * like none). Its subject still has to be read (verifyNodeCertificate) to know who calls.
 */
export function peerCertificatePem(call: {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}): string | undefined {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  if (!raw || raw.length === 0) return undefined;
  return new X509Certificate(raw).toString();
}
