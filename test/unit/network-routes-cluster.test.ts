// The Engine API's /networks routes with the cluster's delegate: overlay creates go to the
// cluster on a manager and are refused with Docker's words elsewhere; ls shows both kinds;
// inspect and rm find cluster networks by name; local bridge networks stay the engine's.
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { networkRoutes } from "../../api/routes/networks.js";
import type { ClusterNetworks, EngineApiDeps } from "../../api/deps.js";
import { isShoalError, notFound } from "../../shared/errors.js";
import { ClusterStore, localProposer } from "../../manager/store/store.js";
import { ClusterNetworksApi } from "../../manager/controlapi/networks.js";

function app(cluster: () => ClusterNetworks | undefined) {
  const local = [
    {
      Name: "bridge",
      Id: "b1",
      Created: "",
      Scope: "local",
      Driver: "bridge",
      EnableIPv6: false,
      IPAM: { Driver: "default", Options: null, Config: [] },
      Internal: false,
      Attachable: false,
      Ingress: false,
      ConfigOnly: false,
      Options: {},
      Labels: {},
    },
  ];
  const networks = {
    list: () => local,
    attached: () => [],
    get: (ref: string) => {
      const n = local.find((x) => x.Id === ref || x.Name === ref);
      if (!n) throw notFound(`network ${ref} not found`);
      return n;
    },
    create: async () => ({ Id: "local-made", Warning: "" }),
    remove: async (ref: string) => {
      throw notFound(`network ${ref} not found`);
    },
  };
  const a = Fastify();
  a.setErrorHandler((e, _req, reply) => {
    if (isShoalError(e)) return reply.code(e.status).send({ message: e.message });
    return reply.code(500).send({ message: String(e) });
  });
  a.register(networkRoutes, { networks, clusterNetworks: cluster } as unknown as EngineApiDeps);
  return a;
}

describe("/networks with the cluster's networks", () => {
  it("a node that is not a manager refuses overlay networks with Docker's words; bridge creates stay local", async () => {
    const a = app(() => undefined);
    const r = await a.inject({
      method: "POST",
      url: "/networks/create",
      payload: { Name: "x", Driver: "overlay" },
    });
    expect(r.statusCode).toBe(403);
    expect(r.json().message).toMatch(
      /^This node is not a swarm manager\. Worker nodes can't be used to create overlay networks/,
    );
    const b = await a.inject({ method: "POST", url: "/networks/create", payload: { Name: "x" } });
    expect(b.statusCode).toBe(201);
    expect(b.json().Id).toBe("local-made");
  });

  it("on a manager: create, ls (both kinds), inspect by name (also ?scope=swarm), rm", async () => {
    const store = new ClusterStore();
    store.setProposer(localProposer(store));
    const cluster = new ClusterNetworksApi(store);
    const a = app(() => cluster);
    const c = await a.inject({
      method: "POST",
      url: "/networks/create",
      payload: {
        Name: "appnet",
        Driver: "overlay",
        Attachable: true,
        IPAM: { Config: [{ Subnet: "10.10.0.0/24" }] },
      },
    });
    expect(c.statusCode).toBe(201);
    const id = c.json().Id as string;
    const ls = (await a.inject({ method: "GET", url: "/networks" })).json() as Array<{
      Name: string;
      Scope: string;
    }>;
    expect(ls.map((n) => [n.Name, n.Scope])).toEqual([
      ["appnet", "swarm"],
      ["bridge", "local"],
    ]);
    const filtered = (
      await a.inject({ method: "GET", url: '/networks?filters={"driver":["overlay"]}' })
    ).json();
    expect(filtered.map((n: { Name: string }) => n.Name)).toEqual(["appnet"]);
    const i = await a.inject({ method: "GET", url: "/networks/appnet?scope=swarm" });
    expect(i.statusCode).toBe(200);
    expect(i.json()).toMatchObject({
      Id: id,
      Name: "appnet",
      Scope: "swarm",
      Driver: "overlay",
      Attachable: true,
      IPAM: { Driver: "default", Config: [{ Subnet: "10.10.0.0/24", Gateway: "10.10.0.1" }] },
      Options: { "com.docker.network.driver.overlay.vxlanid_list": "4097" },
    });
    expect((await a.inject({ method: "GET", url: "/networks/bridge?scope=swarm" })).statusCode).toBe(404);
    expect((await a.inject({ method: "GET", url: "/networks/bridge" })).statusCode).toBe(200);
    const dup = await a.inject({
      method: "POST",
      url: "/networks/create",
      payload: { Name: "bridge", Driver: "overlay" },
    });
    expect(dup.statusCode).toBe(409);
    const overlap = await a.inject({
      method: "POST",
      url: "/networks/create",
      payload: { Name: "other", Driver: "overlay", IPAM: { Config: [{ Subnet: "10.10.0.0/16" }] } },
    });
    expect(overlap.statusCode).toBe(409);
    expect(overlap.json().message).toContain("overlaps network appnet");
    expect((await a.inject({ method: "DELETE", url: "/networks/appnet" })).statusCode).toBe(204);
    expect((await a.inject({ method: "DELETE", url: "/networks/appnet" })).statusCode).toBe(404);
  });
});
