// A write a follower sends on to the leader always gets an answer: a leader that never answers
// gives 503 "outcome unknown" once the call deadline passes, a leader whose port does not open
// gives 503 "not applied", and a stream (logs --follow) is never cut by the call deadline. Real
// gRPC on loopback (without TLS: the deadlines are the client's, not the link's).
import * as grpc from "@grpc/grpc-js";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterHost, ClusterRoute } from "../../api/deps.js";
import { forwardToManager, type ForwardLimits } from "../../api/forward.js";
import * as pb from "../../proto/gen/cluster.js";
import { silentLogger } from "../../shared/logging.js";

const LIMITS: ForwardLimits = { connectMs: 300, callMs: 300, bodyBytes: 1024 };

type ForwardCall = grpc.ServerWritableStream<pb.HttpRequest, pb.HttpResponseChunk>;

let server: grpc.Server;
let leaderAddr = "";
let closedAddr = "";

/** The leader: never answers /services/create; answers a follow slowly, chunk by chunk. */
function leaderForward(call: ForwardCall): void {
  if (call.request.url.startsWith("/services/create")) return;
  call.write({
    status: 200,
    headers: [{ name: "content-type", value: "text/plain" }],
    body: Buffer.alloc(0),
  });
  const later = (ms: number, f: () => void) => setTimeout(f, ms).unref();
  later(LIMITS.callMs * 2, () => call.write({ status: 0, headers: [], body: Buffer.from("line 1\n") }));
  later(LIMITS.callMs * 3, () => {
    call.write({ status: 0, headers: [], body: Buffer.from("line 2\n") });
    call.end();
  });
}

function bind(s: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    s.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, port) =>
      e ? reject(e) : resolve(port),
    ),
  );
}

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(pb.NodeService, {
    forward: leaderForward,
    joinRaft: () => undefined,
    leaveRaft: () => undefined,
  } as unknown as grpc.UntypedServiceImplementation);
  leaderAddr = `127.0.0.1:${await bind(server)}`;
  // A port that was free a moment ago: nothing answers there.
  const gone = new grpc.Server();
  closedAddr = `127.0.0.1:${await bind(gone)}`;
  gone.forceShutdown();
});
afterAll(() => server?.forceShutdown());

function api(addr: string) {
  const clients: grpc.Client[] = [];
  const host = {
    route: (): ClusterRoute => ({ serve: "leader", addr }),
    client: (a: string) => {
      const c = new pb.NodeClient(a, grpc.credentials.createInsecure());
      clients.push(c);
      return c;
    },
    afterWrite: async () => undefined,
  } as unknown as ClusterHost;
  // Only the hook under test, with short limits, in front of stand-ins for the cluster routes.
  const app = Fastify();
  app.addHook("onRequest", forwardToManager(host, silentLogger(), LIMITS));
  app.all("/*", async () => ({ served: "here" }));
  return {
    app,
    close: async () => {
      await app.close();
      for (const c of clients) c.close();
    },
  };
}

describe("forwarding a cluster request to the leader", () => {
  it("a write the leader never answers: 503 outcome unknown, naming the leader and how to check", async () => {
    const a = api(leaderAddr);
    const r = await a.app.inject({ method: "POST", url: "/services/create", payload: { Name: "web" } });
    expect(r.statusCode).toBe(503);
    const message = r.json<{ message: string }>().message;
    expect(message).toMatch(/^outcome unknown: the leader at 127\.0\.0\.1:\d+ did not answer in time/);
    expect(message).toContain("check with `docker service ls` or `docker service inspect` before retrying");
    await a.close();
  });

  it("a write to a leader whose port does not open: 503 not applied, no leader reachable", async () => {
    const a = api(closedAddr);
    const r = await a.app.inject({ method: "POST", url: "/nodes/n1/update?version=2", payload: {} });
    expect(r.statusCode).toBe(503);
    const message = r.json<{ message: string }>().message;
    expect(message).toMatch(/^not applied: the leader at 127\.0\.0\.1:\d+ could not be reached/);
    expect(message).toContain("no leader reachable");
    await a.close();
  });

  it("a stream (--follow) outlives the call deadline and gets every chunk", async () => {
    const a = api(leaderAddr);
    const r = await a.app.inject({ method: "GET", url: "/services/web/logs?follow=1" });
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe("line 1\nline 2\n");
    await a.close();
  });
});
