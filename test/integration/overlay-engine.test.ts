// The engine's host networks on overlay networks (HostNetworks.applyOverlay), as a library
// in a namespace of its own (test/fixtures/overlay-host-networks.mjs): the cluster's networks appear
// in the engine's table with this node's address as gateway, containers join them only with the
// address the managers assigned, DNS listens on the overlay bridge, a restart re-applies the
// saved state, and an empty state takes every device, record and table away.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { deleteNetns, inNetns, makeNetns, repoRoot, runFixtureIn } from "../helpers/daemon.js";
import type { NetworkState } from "../../shared/network-state.js";

const run = promisify(execFile);
const tag = randomBytes(3).toString("hex");
const ns = `shoal-ove-${tag}`;
const NET = `4444444444${tag}dddd`;
const self = { nodeId: "n1", hostAddr: "192.168.78.1" };
let dir: string;

const state: NetworkState = {
  version: 5,
  networks: [
    { id: NET, name: "front", vni: 6001, subnet: "10.71.1.0/24", ingress: false, attachable: false },
  ],
  nodes: [
    { networkId: NET, nodeId: "n1", hostAddr: self.hostAddr, address: "10.71.1.2" },
    { networkId: NET, nodeId: "n2", hostAddr: "192.168.78.2", address: "10.71.1.3" },
  ],
  tasks: [
    {
      networkId: NET,
      taskId: "t1",
      serviceId: "s",
      nodeId: "n2",
      hostAddr: "192.168.78.2",
      address: "10.71.1.20",
      names: ["web.1.t1"],
      running: true,
    },
  ],
  services: [
    { id: "s", name: "web", mode: "vip", vips: [{ networkId: NET, address: "10.71.1.5" }], ports: [] },
  ],
};

interface Out {
  afterRestart: number;
  version: number;
  networks: Array<{
    Id: string;
    Name: string;
    Driver: string;
    Scope: string;
    BridgeName: string;
    IPAM: { Config: Array<{ Subnet: string; Gateway: string }> };
  }>;
  join?: { ok: boolean; networks?: string[]; error?: string };
  joinWithout?: { ok: boolean; error?: string };
  listening: string;
}

function manager(input: object): Promise<Out> {
  return runFixtureIn<Out>(ns, join(repoRoot, "test/fixtures/overlay-host-networks.mjs"), { dir, ...input });
}

beforeAll(async () => {
  dir = await mkdtemp("/tmp/shoal-overlay-engine-");
  await makeNetns(ns);
  await run("ip", ["-n", ns, "link", "add", "under0", "type", "veth", "peer", "name", "under1"]);
  await run("ip", ["-n", ns, "link", "set", "under1", "up"]);
  await run("ip", ["-n", ns, "addr", "add", `${self.hostAddr}/24`, "dev", "under0"]);
  await run("ip", ["-n", ns, "link", "set", "under0", "up"]);
});

afterAll(async () => {
  await deleteNetns(ns);
  await rm(dir, { recursive: true, force: true });
});

describe("overlay networks in the engine", () => {
  it("shows the cluster's network with this node's address as gateway, joinable only with an assigned address", async () => {
    const out = await manager({
      state,
      self,
      join: {
        mode: "front",
        endpoints: { front: { IPAMConfig: { IPv4Address: "10.71.1.30" }, Aliases: ["a"] } },
      },
    });
    expect(out.version).toBe(5);
    expect(out.networks).toHaveLength(1);
    expect(out.networks[0]).toMatchObject({
      Id: NET,
      Name: "front",
      Driver: "overlay",
      Scope: "swarm",
      BridgeName: "shov4444444444",
      IPAM: { Config: [{ Subnet: "10.71.1.0/24", Gateway: "10.71.1.2" }] },
    });
    expect(out.join).toEqual({ ok: true, networks: ["front"] });
    expect(out.joinWithout?.ok).toBe(false);
    expect(out.joinWithout?.error).toMatch(/assigned/);
    // DNS answers on the overlay bridge's address.
    expect(out.listening).toMatch(/10\.71\.1\.2:53/);
    const fw = (await inNetns(ns, "nft", ["list", "table", "ip", "shoal"])).stdout;
    expect(fw).toContain('ip saddr 10.71.1.0/24 oifname != "shov4444444444" masquerade');
  });

  it("after a restart the saved state is applied again at once, before any manager speaks", async () => {
    const out = await manager({});
    expect(out.afterRestart).toBe(5);
    expect(out.networks.map((n) => n.Name)).toEqual(["front"]);
    expect(out.listening).toMatch(/10\.71\.1\.2:53/);
  });

  it("an empty state takes the network, its devices and entries away", async () => {
    const out = await manager({
      state: { version: 6, networks: [], nodes: [], tasks: [], services: [] },
      self,
    });
    expect(out.version).toBe(6);
    expect(out.networks).toEqual([]);
    const links = (await inNetns(ns, "ip", ["-o", "link"])).stdout;
    expect(links).not.toMatch(/shov|shox/);
    expect((await inNetns(ns, "ip", ["neigh"])).stdout).not.toMatch(/shox/);
    expect((await inNetns(ns, "nft", ["list", "tables"])).stdout).not.toMatch(/shoal_mesh/);
    expect(links).toMatch(/under0/);
  });
});
