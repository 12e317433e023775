// The node's one gRPC port (2377 by default), served over mutual TLS with the node's certificate.
// Services are registered once and delegate to whatever this node currently is: the CA, the
// dispatcher and the ResourceAllocator answer only while it manages (a promoted worker starts
// answering, a demoted manager stops) without the port ever closing. Raft is added and removed
// by the manager itself. Every call passes the guard first (client certificates and roles per
// method, manager/auth/guard.ts), and no message larger than MAX_RECEIVE_BYTES is read.
import * as grpc from "@grpc/grpc-js";
import * as pb from "../../proto/gen/cluster.js";
import { MemoryCertificateProvider, serverCredentials, type TlsIdentity } from "../../shared/grpc-tls.js";

type Impl = grpc.UntypedServiceImplementation;

/** A service whose calls go to `current()`, or fail with "not a manager" while there is none. */
function delegating(definition: grpc.ServiceDefinition, current: () => Impl | undefined): Impl {
  const out: Impl = {};
  for (const [name, method] of Object.entries(definition)) {
    const refuse = { code: grpc.status.UNAVAILABLE, details: "this node is not a manager" };
    if (method.responseStream) {
      out[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const impl = current();
        if (!impl) {
          call.emit("error", refuse);
          return;
        }
        (impl[name] as (c: typeof call) => void)(call);
      };
    } else {
      out[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const impl = current();
        if (!impl) {
          cb(refuse);
          return;
        }
        (impl[name] as (c: typeof call, cb: grpc.sendUnaryData<unknown>) => void)(call, cb);
      };
    }
  }
  return out;
}

/**
 * The largest message the port reads (Raft sends snapshots in 1 MiB chunks and appends of at most
 * about 1 MiB): a larger one is refused from its length prefix, before it is buffered.
 */
export const MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

/** Calls at once on one connection; a node needs a handful, Raft two per peer. */
const MAX_CONCURRENT_STREAMS = 256;

export class NodeServer {
  readonly server: grpc.Server;
  readonly provider: MemoryCertificateProvider;
  private ca: pb.CAServer | undefined;
  private dispatcher: pb.DispatcherServer | undefined;
  private resourceAllocator: pb.ResourceAllocatorServer | undefined;
  private port = 0;

  /** `guard` sees every call first (manager/auth/guard.ts: certificates and roles per method). */
  constructor(identity: TlsIdentity, node: pb.NodeServer, guard?: grpc.ServerInterceptor) {
    this.server = new grpc.Server({
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.max_receive_message_length": MAX_RECEIVE_BYTES,
      "grpc.max_concurrent_streams": MAX_CONCURRENT_STREAMS,
      interceptors: guard ? [guard] : [],
    });
    this.provider = new MemoryCertificateProvider(identity);
    this.server.addService(
      pb.CAService,
      delegating(pb.CAService, () => this.ca as Impl | undefined),
    );
    this.server.addService(
      pb.DispatcherService,
      delegating(pb.DispatcherService, () => this.dispatcher as Impl | undefined),
    );
    this.server.addService(
      pb.ResourceAllocatorService,
      delegating(pb.ResourceAllocatorService, () => this.resourceAllocator as Impl | undefined),
    );
    this.server.addService(pb.NodeService, node as unknown as Impl);
  }

  get credentials(): grpc.ServerCredentials {
    return serverCredentials(this.provider);
  }

  /** Binds host:port; answers the port actually bound. */
  async listen(addr: string): Promise<number> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(addr, serverCredentials(this.provider), (err, port) =>
        err
          ? reject(new Error(`cannot listen on ${addr} for the cluster port: ${err.message}`))
          : resolve(port),
      ),
    );
    return this.port;
  }

  /** What answers the manager-only services; undefined while this node does not manage. */
  setManagerServices(
    services:
      | { ca: pb.CAServer; dispatcher: pb.DispatcherServer; resourceAllocator?: pb.ResourceAllocatorServer }
      | undefined,
  ): void {
    this.ca = services?.ca;
    this.dispatcher = services?.dispatcher;
    this.resourceAllocator = services?.resourceAllocator;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.server.forceShutdown();
    await closed;
  }
}
