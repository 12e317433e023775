// The cluster routes (api/cluster.ts) go through the forwarding hook: a node whose router names a
// manager sends them there whole and streams the answer back; /swarm/init, join and leave, and the
// engine's routes, are always answered where they arrive.
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { buildApi, type ApiDeps } from "../../api/server.js";
import type { ClusterHost, ClusterRoute } from "../../api/deps.js";
import { NOT_A_MANAGER, WORKER_NOT_A_MANAGER } from "../../api/control.js";
import { silentLogger } from "../../shared/logging.js";
import { FORWARD_LIMITS } from "../../api/forward.js";
import type * as pb from "../../proto/gen/cluster.js";

interface Forwarded {
  addr: string;
  method: string;
  url: string;
  headers: pb.Header[];
  body: string;
}

const LEADER: ClusterRoute = { serve: "leader", addr: "10.0.0.1:2377" };

function fixture(route: ClusterRoute) {
  const forwarded: Forwarded[] = [];
  const asked: string[] = [];
  const left: boolean[] = [];
  let writesAwaited = 0;
  const host = {
    control: () => undefined,
    init: async () => "node-1",
    join: async () => undefined,
    leave: async (force: boolean) => {
      left.push(force);
    },
    inspect: () => undefined,
    nodeId: undefined,
    nodeForwardClient: () => undefined,
    route: (method: string, path: string) => {
      asked.push(`${method} ${path}`);
      return route;
    },
    client: (addr: string) =>
      ({
        waitForReady: (_deadline: number, ready: (err?: Error) => void) => ready(),
        forward: (r: pb.HttpRequest) => {
          forwarded.push({ addr, method: r.method, url: r.url, headers: r.headers, body: r.body.toString() });
          const stream = Object.assign(new EventEmitter(), { cancel: () => undefined });
          setImmediate(() => {
            stream.emit("data", {
              status: 200,
              headers: [{ name: "content-type", value: "application/json" }],
              body: Buffer.alloc(0),
            });
            stream.emit("data", {
              status: 0,
              headers: [],
              body: Buffer.from('{"answered":"by the manager"}'),
            });
            stream.emit("end");
          });
          return stream;
        },
      }) as unknown as pb.NodeClient,
    afterWrite: async () => {
      writesAwaited++;
    },
    confirmCurrent: () => undefined,
  } satisfies ClusterHost;
  const app = buildApi({
    log: silentLogger(),
    info: { version: "test" },
    containers: { list: () => [] },
    images: { list: () => [] },
    swarm: host,
  } as unknown as ApiDeps);
  return { app, forwarded, asked, left, writesAwaited: () => writesAwaited };
}

describe("the cluster routes' forwarding hook", () => {
  it("sends every cluster route to the manager the router names, and streams its answer back", async () => {
    const f = fixture(LEADER);
    const routes: Array<[method: "GET" | "POST" | "DELETE", url: string]> = [
      ["GET", "/swarm"],
      ["POST", "/swarm/update?version=3"],
      ["GET", "/nodes"],
      ["GET", "/nodes/n1"],
      ["POST", "/nodes/n1/update?version=2"],
      ["DELETE", "/nodes/n1"],
      ["POST", "/services/create"],
      ["GET", "/services"],
      ["GET", "/services/web"],
      ["POST", "/services/web/update?version=5"],
      ["DELETE", "/services/web"],
      ["GET", "/services/web/logs?stdout=1"],
      ["GET", "/tasks"],
      ["GET", "/tasks/t1"],
    ];
    for (const [method, url] of routes) {
      const r = await f.app.inject({ method, url, headers: { "x-registry-auth": "abc" } });
      expect(r.statusCode, `${method} ${url}`).toBe(200);
      expect(r.json(), `${method} ${url}`).toEqual({ answered: "by the manager" });
    }
    expect(f.forwarded.map((x) => `${x.method} ${x.url}`)).toEqual(routes.map(([m, u]) => `${m} ${u}`));
    expect(f.forwarded.every((x) => x.addr === "10.0.0.1:2377")).toBe(true);
    expect(f.forwarded[0].headers).toContainEqual({ name: "x-registry-auth", value: "abc" });
    // The router decides on the path without its query; writes wait for this node's store.
    expect(f.asked[1]).toBe("POST /swarm/update");
    expect(f.writesAwaited()).toBe(routes.filter(([m]) => m !== "GET").length);
    await f.app.close();
  });

  it("sends the request body along, and the path without the API version prefix", async () => {
    const f = fixture(LEADER);
    const r = await f.app.inject({
      method: "POST",
      url: "/v1.44/services/create",
      payload: { Name: "web" },
    });
    expect(r.statusCode).toBe(200);
    expect(f.forwarded).toHaveLength(1);
    expect(f.forwarded[0].url).toBe("/services/create");
    expect(JSON.parse(f.forwarded[0].body)).toEqual({ Name: "web" });
    await f.app.close();
  });

  it("answers /swarm/init, join and leave itself, and never asks the router about engine routes", async () => {
    const f = fixture(LEADER);
    const leave = await f.app.inject({ method: "POST", url: "/swarm/leave?force=1" });
    expect(leave.statusCode).toBe(200);
    expect(f.left).toEqual([true]);
    const init = await f.app.inject({ method: "POST", url: "/swarm/init", payload: {} });
    expect(init.body).toBe('"node-1"');
    expect((await f.app.inject({ method: "POST", url: "/swarm/join", payload: {} })).statusCode).toBe(200);
    expect((await f.app.inject({ method: "GET", url: "/_ping" })).body).toBe("OK");
    expect((await f.app.inject({ method: "GET", url: "/containers/json" })).json()).toEqual([]);
    expect(f.forwarded).toEqual([]);
    expect(f.asked).toEqual([]);
    await f.app.close();
  });

  it("serves a cluster route here when the router names no manager (503 with Docker's words off a manager)", async () => {
    const f = fixture({ serve: "here" });
    const r = await f.app.inject({ method: "GET", url: "/nodes" });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toEqual({ message: NOT_A_MANAGER });
    expect(f.asked).toEqual(["GET /nodes"]);
    expect(f.forwarded).toEqual([]);
    await f.app.close();
  });

  it("on a worker answers every cluster route 503 with Docker's words and sends nothing on; leave stays local", async () => {
    const f = fixture({ serve: "refused", message: WORKER_NOT_A_MANAGER });
    const routes: Array<[method: "GET" | "POST", url: string]> = [
      ["GET", "/swarm"],
      ["POST", "/nodes/n1/update?version=2"],
      ["POST", "/services/create"],
      ["GET", "/services/web/logs?follow=1"],
    ];
    for (const [method, url] of routes) {
      const r = await f.app.inject({ method, url, payload: method === "POST" ? {} : undefined });
      expect(r.statusCode, `${method} ${url}`).toBe(503);
      expect(r.json(), `${method} ${url}`).toEqual({ message: WORKER_NOT_A_MANAGER });
      expect(r.body).not.toContain("SWMTKN");
    }
    expect((await f.app.inject({ method: "POST", url: "/swarm/leave?force=1" })).statusCode).toBe(200);
    expect(f.left).toEqual([true]);
    expect(f.forwarded).toEqual([]);
    await f.app.close();
  });

  it("refuses to send on a body over the node port's message limit with a 413 naming the limit", async () => {
    const f = fixture(LEADER);
    const big = Buffer.alloc(FORWARD_LIMITS.bodyBytes + 1, "a");
    const r = await f.app.inject({
      method: "POST",
      url: "/services/create",
      payload: big,
      headers: { "content-type": "application/json" },
    });
    expect(r.statusCode).toBe(413);
    expect(r.json<{ message: string }>().message).toContain(`at most ${FORWARD_LIMITS.bodyBytes} bytes`);
    expect(f.forwarded).toEqual([]);
    // One that fits goes on.
    const fits = await f.app.inject({ method: "POST", url: "/services/create", payload: { Name: "web" } });
    expect(fits.statusCode).toBe(200);
    expect(f.forwarded).toHaveLength(1);
    await f.app.close();
  });
});
