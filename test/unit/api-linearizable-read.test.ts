// Cluster reads on a manager are confirmed through Raft before they are served (api/linearizable-
// read.ts): a manager that cannot confirm its store is current answers 503 with the way out, a
// caller asking for a stale read by name gets the local answer, and writes are not held up by it.
import { describe, expect, it } from "vitest";
import { buildApi, type ApiDeps } from "../../api/server.js";
import type { ClusterHost } from "../../api/deps.js";
import { silentLogger } from "../../shared/logging.js";

function fixture(confirm: (() => Promise<void>) | undefined) {
  let confirmations = 0;
  const host = {
    // A manager whose store holds one service (what a cut-off manager would serve, frozen).
    control: () => ({ listServices: () => [{ ID: "svc1", Spec: { Name: "web" } }] }),
    init: async () => "node-1",
    join: async () => undefined,
    leave: async () => undefined,
    inspect: () => undefined,
    nodeId: undefined,
    nodeForwardClient: () => undefined,
    route: () => ({ serve: "here" }),
    client: () => {
      throw new Error("nothing is forwarded here");
    },
    afterWrite: async () => undefined,
    confirmCurrent: () => {
      if (!confirm) return undefined;
      confirmations++;
      return confirm();
    },
  } as unknown as ClusterHost;
  const app = buildApi({
    log: silentLogger(),
    info: { version: "test" },
    containers: { list: () => [] },
    images: { list: () => [] },
    swarm: host,
  } as unknown as ApiDeps);
  return { app, confirmations: () => confirmations };
}

const unreachable = () => Promise.reject(new Error("raft proposal dropped: no leader at term 4"));

describe("linearizable cluster reads", () => {
  it("a manager that cannot confirm its data is current answers 503 naming the way out", async () => {
    const { app, confirmations } = fixture(unreachable);
    const res = await app.inject({ method: "GET", url: "/v1.44/services" });
    expect(res.statusCode).toBe(503);
    expect(res.json().message).toMatch(
      /^no leader is reachable: this manager cannot confirm its data is current; retry, or add header X-Shoal-Stale-Read: 1/,
    );
    expect(confirmations()).toBe(1);
    for (const url of ["/nodes", "/tasks", "/swarm", "/services/web"])
      expect((await app.inject({ method: "GET", url })).statusCode).toBe(503);
  });

  it("serves the local, possibly stale, answer only when asked for by name", async () => {
    const { app, confirmations } = fixture(unreachable);
    const res = await app.inject({ method: "GET", url: "/services", headers: { "X-Shoal-Stale-Read": "1" } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([expect.objectContaining({ ID: "svc1" })]);
    expect(confirmations()).toBe(0);
  });

  it("serves a read once it is confirmed, and confirms nothing on a node that is not a manager", async () => {
    const confirmed = fixture(async () => undefined);
    expect((await confirmed.app.inject({ method: "GET", url: "/services" })).statusCode).toBe(200);
    expect(confirmed.confirmations()).toBe(1);
    const worker = fixture(undefined);
    expect((await worker.app.inject({ method: "GET", url: "/services" })).statusCode).toBe(200);
  });

  it("does not hold writes or the engine's own routes on a confirmation", async () => {
    const { app, confirmations } = fixture(unreachable);
    await app.inject({ method: "POST", url: "/services/create", payload: {} });
    await app.inject({ method: "GET", url: "/containers/json" });
    expect(confirmations()).toBe(0);
  });
});
