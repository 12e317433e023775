// Unary calls a node makes to the cluster's leader (the CA while joining or renewing, Raft
// membership, network attachments for plain containers). A manager that is not the leader answers
// UNAVAILABLE with the leader's address in the `shoal-leader` trailer; calls here follow that, so
// callers can name any manager.
import * as grpc from "@grpc/grpc-js";
import { LEADER_METADATA } from "./grpc-tls.js";
import { forbidden, invalid, ShoalError, unavailable } from "./errors.js";

const CALL_TIMEOUT_MS = 15_000;

/** "10.0.0.1" → "10.0.0.1:2377"; "[::1]:7" and "h:7" stay. */
export function withPort(addr: string, port = 2377): string {
  if (/^\[.*\]:\d+$/.test(addr) || /^[^:]+:\d+$/.test(addr)) return addr;
  return `${addr}:${port}`;
}

/** A gRPC failure as the error a user sees, naming the node that answered. */
export function remoteError(addr: string, e: grpc.ServiceError): ShoalError {
  const what = e.details || e.message;
  switch (e.code) {
    case grpc.status.PERMISSION_DENIED:
    case grpc.status.UNAUTHENTICATED:
      return forbidden(`the manager at ${addr} refused this node: ${what}`);
    case grpc.status.INVALID_ARGUMENT:
      return invalid(`the manager at ${addr} refused the request: ${what}`);
    default:
      return unavailable(`the manager at ${addr} could not be reached or failed: ${what}`);
  }
}

function leaderHint(e: grpc.ServiceError): string | undefined {
  if (e.code !== grpc.status.UNAVAILABLE) return undefined;
  const v = e.metadata?.get(LEADER_METADATA)[0];
  return typeof v === "string" && v !== "" ? v : undefined;
}

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: grpc.requestCallback<Res>,
) => unknown;

/**
 * One unary call, retried at the leader when a follower names it (at most 3 hops). `make` builds
 * the client for an address; the client is closed after the call.
 */
export async function callLeader<C extends grpc.Client, Req, Res>(
  addr: string,
  make: (addr: string) => C,
  method: (c: C) => Unary<Req, Res>,
  req: Req,
  o: { timeoutMs?: number; mapError?: (addr: string, e: grpc.ServiceError) => ShoalError } = {},
): Promise<{ res: Res; addr: string }> {
  let target = addr;
  for (let hop = 0; ; hop++) {
    const client = make(target);
    try {
      const res = await new Promise<Res>((resolve, reject) =>
        method(client).call(
          client,
          req,
          new grpc.Metadata(),
          { deadline: Date.now() + (o.timeoutMs ?? CALL_TIMEOUT_MS) },
          (err: grpc.ServiceError | null, value?: Res) => (err ? reject(err) : resolve(value as Res)),
        ),
      );
      return { res, addr: target };
    } catch (e) {
      const err = e as grpc.ServiceError;
      const hint = leaderHint(err);
      if (hint && hint !== target && hop < 3) {
        target = hint;
        continue;
      }
      throw (o.mapError ?? remoteError)(target, err);
    } finally {
      client.close();
    }
  }
}
