// The overlay driver's decisions: devices, forwarding and neighbour entries from a NetworkState
// and the host's current view (diffing: only what differs changes, only our own things), the
// LB and routing-mesh nftables text (checked by nft itself, in --check mode).
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { checkNetworkState, type NetworkState } from "../../shared/network-state.js";
import {
  desiredHost,
  diffHost,
  parseFdb,
  parseLinks,
  parseNeigh,
  type CurrentHost,
} from "../../agent/engine/network/overlay/plan.js";
import {
  meshPlan,
  overlayPeers,
  renderLbTable,
  renderMeshTable,
  vipBalances,
} from "../../agent/engine/network/overlay/rules.js";
import { networkTag, overlayBridgeName, overlayVxlanName } from "../../agent/engine/network/overlay/names.js";
import { renderFirewall } from "../../agent/engine/network/firewall.js";

const NET1 = "aaaaaaaaaa11111111112222222222";
const NET2 = "bbbbbbbbbb11111111112222222222";
const INGRESS = "cccccccccc11111111112222222222";
const A = { nodeId: "nodeA", hostAddr: "192.168.1.1" };
const B = { nodeId: "nodeB", hostAddr: "192.168.1.2" };

function state(): NetworkState {
  return {
    version: 7,
    networks: [
      { id: NET1, name: "front", vni: 4097, subnet: "10.0.1.0/24", ingress: false, attachable: false },
      { id: NET2, name: "back", vni: 4098, subnet: "10.0.2.0/24", ingress: false, attachable: true },
      { id: INGRESS, name: "ingress", vni: 4096, subnet: "10.0.0.0/24", ingress: true, attachable: false },
    ],
    nodes: [
      { networkId: NET1, nodeId: "nodeA", hostAddr: A.hostAddr, address: "10.0.1.2" },
      { networkId: NET1, nodeId: "nodeB", hostAddr: B.hostAddr, address: "10.0.1.3" },
      { networkId: NET2, nodeId: "nodeB", hostAddr: B.hostAddr, address: "10.0.2.2" },
      { networkId: INGRESS, nodeId: "nodeA", hostAddr: A.hostAddr, address: "10.0.0.2" },
      { networkId: INGRESS, nodeId: "nodeB", hostAddr: B.hostAddr, address: "10.0.0.3" },
    ],
    tasks: [
      task("t1", "web", NET1, B, "10.0.1.10", true),
      task("t2", "web", NET1, A, "10.0.1.11", true),
      task("t3", "web", NET1, B, "10.0.1.12", false),
      task("t1", "web", INGRESS, B, "10.0.0.10", true),
      task("t2", "web", INGRESS, A, "10.0.0.11", true),
      task("t3", "web", INGRESS, B, "10.0.0.12", false),
      task("t9", "db", NET2, B, "10.0.2.10", true),
    ],
    services: [
      {
        id: "web",
        name: "web",
        mode: "vip",
        vips: [
          { networkId: NET1, address: "10.0.1.5" },
          { networkId: INGRESS, address: "10.0.0.5" },
        ],
        ports: [{ protocol: "tcp", publishedPort: 8080, targetPort: 80 }],
      },
      { id: "db", name: "db", mode: "vip", vips: [{ networkId: NET2, address: "10.0.2.5" }], ports: [] },
      { id: "idle", name: "idle", mode: "vip", vips: [{ networkId: NET1, address: "10.0.1.6" }], ports: [] },
    ],
  };
}

function task(
  taskId: string,
  serviceId: string,
  networkId: string,
  node: { nodeId: string; hostAddr: string },
  address: string,
  running: boolean,
) {
  return {
    networkId,
    taskId,
    serviceId,
    nodeId: node.nodeId,
    hostAddr: node.hostAddr,
    address,
    names: [`${serviceId}.${taskId}`],
    running,
  };
}

const EMPTY: CurrentHost = { links: [], fdb: [], neigh: [] };

function nftCheck(text: string): string {
  const r = spawnSync("nft", ["-c", "-f", "-"], { input: text });
  return r.stderr.toString() + (r.status === 0 ? "" : `exit ${r.status}`);
}

describe("overlay device names", () => {
  it("are at most 15 characters, ours by prefix, stable and distinct per network", () => {
    expect(overlayBridgeName(NET1)).toBe("shovaaaaaaaaaa");
    expect(overlayVxlanName(NET1)).toBe("shoxaaaaaaaaaa");
    // A swarm-style id (base 36) is hashed into hex.
    const tag = networkTag("4x9ntrp2q0sm1ok8bw3iqy2c1");
    expect(tag).toMatch(/^[0-9a-f]{10}$/);
    expect(networkTag("4x9ntrp2q0sm1ok8bw3iqy2c1")).toBe(tag);
    expect(overlayBridgeName("4x9ntrp2q0sm1ok8bw3iqy2c1").length).toBeLessThanOrEqual(15);
  });
});

describe("overlay plan", () => {
  it("makes devices only for networks this node has an endpoint on, and entries for every remote endpoint", () => {
    const d = desiredHost(state(), A);
    expect(d.networks.map((n) => n.network.name).sort()).toEqual(["front", "ingress"]);
    const front = d.networks.find((n) => n.network.name === "front");
    expect(front).toMatchObject({
      bridge: "shovaaaaaaaaaa",
      vxlan: "shoxaaaaaaaaaa",
      address: "10.0.1.2",
      prefix: 24,
      mac: "02:42:0a:00:01:02",
    });
    const fdbFront = d.fdb
      .filter((f) => f.dev === "shoxaaaaaaaaaa")
      .map((f) => `${f.mac}>${f.dst}`)
      .sort();
    // Node B's own address and its two tasks (running or not); not A's own task.
    expect(fdbFront).toEqual([
      "02:42:0a:00:01:03>192.168.1.2",
      "02:42:0a:00:01:0a>192.168.1.2",
      "02:42:0a:00:01:0c>192.168.1.2",
    ]);
    expect(
      d.neigh
        .filter((n) => n.dev === "shoxaaaaaaaaaa")
        .map((n) => `${n.ip}=${n.mac}`)
        .sort(),
    ).toEqual(["10.0.1.10=02:42:0a:00:01:0a", "10.0.1.12=02:42:0a:00:01:0c", "10.0.1.3=02:42:0a:00:01:03"]);
    // Nothing for "back", which has no endpoint of node A.
    expect(d.fdb.some((f) => f.mac === "02:42:0a:00:02:0a")).toBe(false);
  });

  it("from nothing: bridge with the node's address and MAC, VXLAN without learning, then entries", () => {
    const c = diffHost(desiredHost(state(), A), EMPTY);
    expect(c.ip).toContain("link add shovaaaaaaaaaa address 02:42:0a:00:01:02 mtu 1450 type bridge");
    expect(c.ip).toContain("addr add 10.0.1.2/24 dev shovaaaaaaaaaa");
    expect(c.ip).toContain(
      "link add shoxaaaaaaaaaa mtu 1450 type vxlan id 4097 dstport 4789 local 192.168.1.1 nolearning proxy",
    );
    expect(c.ip).toContain("link set shoxaaaaaaaaaa master shovaaaaaaaaaa");
    expect(c.ip).toContain(
      "neigh replace 10.0.1.10 lladdr 02:42:0a:00:01:0a dev shoxaaaaaaaaaa nud permanent",
    );
    expect(c.bridge).toContain(
      "fdb replace 02:42:0a:00:01:0a dev shoxaaaaaaaaaa dst 192.168.1.2 self permanent",
    );
    // Neighbours come after the devices they live on.
    const firstNeigh = c.ip.findIndex((l) => l.startsWith("neigh"));
    const lastLink = c.ip.map((l) => l.startsWith("link")).lastIndexOf(true);
    expect(firstNeigh).toBeGreaterThan(lastLink);
    expect(c.createdBridges.sort()).toEqual(["shovaaaaaaaaaa", "shovcccccccccc"]);
    expect(c.ip.join("\n")).not.toMatch(/eth0|flush/);
  });

  it("a host that already matches gets no command at all", () => {
    const want = desiredHost(state(), A);
    const current: CurrentHost = {
      links: want.networks.flatMap((d) => [
        {
          name: d.bridge,
          kind: "bridge",
          mtu: 1450,
          up: true,
          mac: d.mac,
          addrs: [`${d.address}/${d.prefix}`],
        },
        {
          name: d.vxlan,
          kind: "vxlan",
          mtu: 1450,
          up: true,
          master: d.bridge,
          mac: "aa:bb:cc:dd:ee:ff",
          addrs: [],
          vxlan: { id: d.network.vni, local: A.hostAddr, port: 4789, learning: false, proxy: true },
        },
      ]),
      fdb: want.fdb,
      neigh: want.neigh,
    };
    const c = diffHost(want, current);
    expect(c).toEqual({ ip: [], bridge: [], createdBridges: [], removedLinks: [] });
  });

  it("removes stale entries and devices of ours only, replaces a changed VXLAN, keeps networks in use", () => {
    const s = state();
    // t1 left, t3 moved to node A's... no: t3 now runs on another host (192.168.1.9).
    s.tasks = s.tasks.filter((t) => t.taskId !== "t1");
    s.tasks = s.tasks.map((t) =>
      t.taskId === "t3" ? { ...t, hostAddr: "192.168.1.9", nodeId: "nodeC" } : t,
    );
    const want = desiredHost(s, A);
    const current: CurrentHost = {
      links: [
        {
          name: "shovaaaaaaaaaa",
          kind: "bridge",
          mtu: 1450,
          up: true,
          mac: "02:42:0a:00:01:02",
          addrs: ["10.0.1.2/24", "10.0.1.99/24"],
        },
        {
          name: "shoxaaaaaaaaaa",
          kind: "vxlan",
          mtu: 1450,
          up: true,
          master: "shovaaaaaaaaaa",
          mac: "aa:aa:aa:aa:aa:aa",
          addrs: [],
          vxlan: { id: 4097, local: A.hostAddr, port: 4789, learning: false, proxy: true },
        },
        // ingress VXLAN with a wrong VNI: made again.
        {
          name: "shoxcccccccccc",
          kind: "vxlan",
          mtu: 1450,
          up: true,
          master: "shovcccccccccc",
          mac: "aa:aa:aa:aa:aa:ab",
          addrs: [],
          vxlan: { id: 9999, local: A.hostAddr, port: 4789, learning: false, proxy: true },
        },
        {
          name: "shovcccccccccc",
          kind: "bridge",
          mtu: 1450,
          up: true,
          mac: "02:42:0a:00:00:02",
          addrs: ["10.0.0.2/24"],
        },
        // A network that is gone, and one gone but still used by a local container.
        {
          name: "shovdddddddddd",
          kind: "bridge",
          mtu: 1450,
          up: true,
          mac: "02:42:0a:00:09:02",
          addrs: ["10.0.9.2/24"],
        },
        {
          name: "shoveeeeeeeeee",
          kind: "bridge",
          mtu: 1450,
          up: true,
          mac: "02:42:0a:00:08:02",
          addrs: ["10.0.8.2/24"],
        },
        {
          name: "shoxeeeeeeeeee",
          kind: "vxlan",
          mtu: 1450,
          up: true,
          master: "shoveeeeeeeeee",
          mac: "aa:aa:aa:aa:aa:ac",
          addrs: [],
          vxlan: { id: 5000, local: A.hostAddr, port: 4789, learning: false, proxy: true },
        },
      ],
      fdb: [
        { dev: "shoxaaaaaaaaaa", mac: "02:42:0a:00:01:0a", dst: "192.168.1.2" },
        { dev: "shoxaaaaaaaaaa", mac: "02:42:0a:00:01:0c", dst: "192.168.1.2" },
        { dev: "shoxaaaaaaaaaa", mac: "02:42:0a:00:01:03", dst: "192.168.1.2" },
        { dev: "shoxcccccccccc", mac: "02:42:0a:00:00:0a", dst: "192.168.1.2" },
        { dev: "shoxeeeeeeeeee", mac: "02:42:0a:00:08:0a", dst: "192.168.1.2" },
      ],
      neigh: [
        { dev: "shoxaaaaaaaaaa", ip: "10.0.1.10", mac: "02:42:0a:00:01:0a" },
        { dev: "shoxaaaaaaaaaa", ip: "10.0.1.3", mac: "02:42:0a:00:01:03" },
        { dev: "shoxeeeeeeeeee", ip: "10.0.8.10", mac: "02:42:0a:00:08:0a" },
      ],
    };
    const keep = new Set(["shoveeeeeeeeee", "shoxeeeeeeeeee"]);
    const c = diffHost(want, current, keep);
    expect(c.removedLinks.sort()).toEqual(["shovdddddddddd", "shoxcccccccccc"]);
    expect(c.ip).toContain("link del shovdddddddddd");
    expect(c.ip).toContain("addr del 10.0.1.99/24 dev shovaaaaaaaaaa");
    expect(c.ip).toContain(
      "link add shoxcccccccccc mtu 1450 type vxlan id 4096 dstport 4789 local 192.168.1.1 nolearning proxy",
    );
    expect(c.ip).toContain("neigh del 10.0.1.10 dev shoxaaaaaaaaaa");
    expect(c.ip).toContain(
      "neigh replace 10.0.1.12 lladdr 02:42:0a:00:01:0c dev shoxaaaaaaaaaa nud permanent",
    );
    expect(c.bridge).toContain("fdb del 02:42:0a:00:01:0a dev shoxaaaaaaaaaa dst 192.168.1.2 self");
    expect(c.bridge).toContain(
      "fdb replace 02:42:0a:00:01:0c dev shoxaaaaaaaaaa dst 192.168.1.9 self permanent",
    );
    // Unchanged entries are left alone.
    expect(c.bridge.join("\n")).not.toContain("02:42:0a:00:01:03");
    // Entries of the re-made device are written again, none deleted.
    expect(c.bridge).toContain(
      "fdb replace 02:42:0a:00:00:0c dev shoxcccccccccc dst 192.168.1.9 self permanent",
    );
    expect(c.bridge.join("\n")).not.toContain("fdb del 02:42:0a:00:00:0a");
    // The kept network: nothing about it.
    expect([...c.ip, ...c.bridge].join("\n")).not.toMatch(/eeeeeeeeee/);
  });

  it("reads only our links and entries from iproute2's JSON", () => {
    const links = parseLinks(
      JSON.stringify([
        {
          ifname: "eth0",
          mtu: 1500,
          flags: ["UP"],
          address: "52:54:00:00:00:01",
          addr_info: [{ family: "inet", local: "192.168.1.1", prefixlen: 24 }],
        },
        {
          ifname: "shovaaaaaaaaaa",
          mtu: 1450,
          flags: ["BROADCAST", "UP"],
          address: "02:42:0A:00:01:02",
          linkinfo: { info_kind: "bridge" },
          addr_info: [
            { family: "inet", local: "10.0.1.2", prefixlen: 24 },
            { family: "inet6", local: "fe80::1", prefixlen: 64 },
          ],
        },
        {
          ifname: "shoxaaaaaaaaaa",
          mtu: 1450,
          flags: ["UP"],
          master: "shovaaaaaaaaaa",
          address: "aa:aa:aa:aa:aa:aa",
          linkinfo: {
            info_kind: "vxlan",
            info_data: { id: 4097, local: "192.168.1.1", port: 4789, learning: false, proxy: true },
          },
        },
      ]),
    );
    expect(links.map((l) => l.name)).toEqual(["shovaaaaaaaaaa", "shoxaaaaaaaaaa"]);
    expect(links[0]).toMatchObject({
      kind: "bridge",
      mac: "02:42:0a:00:01:02",
      addrs: ["10.0.1.2/24"],
      up: true,
    });
    expect(links[1].vxlan).toEqual({
      id: 4097,
      local: "192.168.1.1",
      port: 4789,
      learning: false,
      proxy: true,
    });
    const fdb = parseFdb(
      JSON.stringify([
        {
          mac: "aa:aa:aa:aa:aa:aa",
          ifname: "shoxaaaaaaaaaa",
          flags: [],
          master: "shovaaaaaaaaaa",
          state: "permanent",
        },
        {
          mac: "02:42:0a:00:01:0a",
          ifname: "shoxaaaaaaaaaa",
          dst: "192.168.1.2",
          flags: ["self"],
          state: "permanent",
        },
        { mac: "00:00:00:00:00:00", ifname: "vxlan0", dst: "239.1.1.1", flags: ["self"], state: "permanent" },
      ]),
    );
    expect(fdb).toEqual([{ dev: "shoxaaaaaaaaaa", mac: "02:42:0a:00:01:0a", dst: "192.168.1.2" }]);
    const neigh = parseNeigh(
      JSON.stringify([
        { dst: "10.0.1.10", dev: "shoxaaaaaaaaaa", lladdr: "02:42:0a:00:01:0a", state: ["PERMANENT"] },
        { dst: "10.0.1.11", dev: "shoxaaaaaaaaaa", lladdr: "02:42:0a:00:01:0b", state: ["STALE"] },
        { dst: "192.168.1.254", dev: "eth0", lladdr: "52:54:00:00:00:fe", state: ["PERMANENT"] },
      ]),
    );
    expect(neigh).toEqual([{ dev: "shoxaaaaaaaaaa", ip: "10.0.1.10", mac: "02:42:0a:00:01:0a" }]);
  });
});

describe("VIP load balancing table", () => {
  it("spreads a VIP over the service's running tasks on the container's networks, rejects an idle one", () => {
    const b = vipBalances(state(), [NET1]);
    expect(b).toEqual([
      { vip: "10.0.1.5", backends: ["10.0.1.10", "10.0.1.11"] },
      { vip: "10.0.1.6", backends: [] },
    ]);
    const text = renderLbTable(b, "shoal_lb_unit");
    expect(text).toContain("ip daddr 10.0.1.5 dnat to numgen inc mod 2 map { 0 : 10.0.1.10, 1 : 10.0.1.11 }");
    expect(text).toContain("ip daddr { 10.0.1.6 } meta l4proto tcp reject with tcp reset");
    // Not the db VIP: that network is not the container's.
    expect(text).not.toContain("10.0.2.5");
    expect(text.match(/^delete table .*$/gm)).toEqual(["delete table ip shoal_lb_unit"]);
    expect(nftCheck(text)).toBe("");
  });

  it("one backend is a plain DNAT; no VIP at all only deletes the table", () => {
    const text = renderLbTable(vipBalances(state(), [NET2]), "shoal_lb_unit");
    expect(text).toContain("ip daddr 10.0.2.5 dnat to 10.0.2.10\n");
    expect(nftCheck(text)).toBe("");
    expect(renderLbTable([], "shoal_lb_unit")).toBe(
      "table ip shoal_lb_unit\ndelete table ip shoal_lb_unit\n",
    );
  });

  it("dnsrr services get no VIP rule", () => {
    const s = state();
    s.services[0].mode = "dnsrr";
    expect(vipBalances(s, [NET1]).map((b) => b.vip)).toEqual(["10.0.1.6"]);
  });
});

describe("routing mesh table", () => {
  it("publishes on local addresses, balanced over running tasks on ingress, with SNAT to the node's ingress address", () => {
    const plan = meshPlan(state(), A);
    expect(plan).toEqual({
      bridge: "shovcccccccccc",
      address: "10.0.0.2",
      ports: [{ protocol: "tcp", publishedPort: 8080, targetPort: 80, backends: ["10.0.0.10", "10.0.0.11"] }],
    });
    const text = renderMeshTable(plan, "shoal_mesh_unit");
    expect(text).toContain("fib daddr type local jump mesh");
    expect(text).toContain(
      "tcp dport 8080 dnat ip to numgen inc mod 2 map { 0 : 10.0.0.10 . 80, 1 : 10.0.0.11 . 80 }",
    );
    expect(text).toContain('oifname "shovcccccccccc" ct status dnat snat ip to 10.0.0.2');
    expect(nftCheck(text)).toBe("");
  });

  it("a port without running tasks is refused; a node without an ingress endpoint has no mesh", () => {
    const s = state();
    s.tasks = s.tasks.map((t) => ({ ...t, running: false }));
    s.services[1].ports = [{ protocol: "udp", publishedPort: 5353, targetPort: 53 }];
    const text = renderMeshTable(meshPlan(s, A), "shoal_mesh_unit");
    expect(text).toContain("fib daddr type local tcp dport { 8080 } reject with tcp reset");
    expect(text).toContain("fib daddr type local udp dport { 5353 } reject");
    expect(text).not.toMatch(/dnat ip to/);
    expect(nftCheck(text)).toBe("");
    s.nodes = s.nodes.filter((n) => !(n.networkId === INGRESS && n.nodeId === "nodeA"));
    expect(meshPlan(s, A)).toBeUndefined();
    expect(renderMeshTable(undefined, "shoal_mesh_unit")).toBe(
      "table ip shoal_mesh_unit\ndelete table ip shoal_mesh_unit\n",
    );
    const single = state();
    single.tasks = single.tasks.filter((t) => t.taskId !== "t1");
    expect(renderMeshTable(meshPlan(single, A), "m")).toContain("tcp dport 8080 dnat ip to 10.0.0.11:80\n");
    expect(nftCheck(renderMeshTable(meshPlan(single, A), "shoal_mesh_unit"))).toBe("");
  });
});

describe("engine firewall with overlay bridges", () => {
  it("masquerades overlay egress and isolates overlay bridges from each other and from bridges", () => {
    const text = renderFirewall(
      {
        networks: [
          { bridge: "shoal0", subnet: "172.17.0.0/16", gateway: "172.17.0.1", internal: false },
          { bridge: "shovaaaaaaaaaa", subnet: "10.0.1.0/24", gateway: "10.0.1.2", internal: false },
          { bridge: "shovbbbbbbbbbb", subnet: "10.0.2.0/24", gateway: "10.0.2.2", internal: false },
        ],
        ports: [],
      },
      "shoal_unit",
    );
    expect(text).toContain('ip saddr 10.0.1.0/24 oifname != "shovaaaaaaaaaa" masquerade');
    expect(text).toContain('oifname "shovaaaaaaaaaa" iifname != "shovaaaaaaaaaa" drop');
    expect(text).toContain('oifname "shovbbbbbbbbbb" iifname != "shovbbbbbbbbbb" drop');
    expect(nftCheck(text)).toBe("");
  });
});

describe("a node's address never becomes a command", () => {
  const injected = "192.168.1.2\nfdb add 00:11:22:33:44:55 dev shoxaaaaaaaaaa dst 6.6.6.6";
  const hostile = (): NetworkState => {
    const s = state();
    s.nodes = s.nodes.map((n) => (n.nodeId === "nodeB" ? { ...n, hostAddr: injected } : n));
    s.tasks = s.tasks.map((t) => (t.nodeId === "nodeB" ? { ...t, hostAddr: injected } : t));
    return s;
  };

  it("an endpoint whose underlay address is not an address is left out of every batch, naming its node", () => {
    const desired = desiredHost(hostile(), A);
    expect(desired.fdb).toEqual([]);
    expect(desired.neigh).toEqual([]);
    expect(desired.refused.length).toBeGreaterThan(0);
    expect(
      desired.refused.every((r) => r.nodeId === "nodeB" && r.reason.includes("not an IPv4 address")),
    ).toBe(true);
    const changes = diffHost(desired, { links: [], fdb: [], neigh: [] });
    const text = [...changes.ip, ...changes.bridge].join("\n");
    expect(text).not.toContain("6.6.6.6");
    expect(text).not.toContain("00:11:22:33:44:55");
    // The rest of the state still applies: this node's own devices are made.
    expect(changes.createdBridges).toContain(overlayBridgeName(NET1));
  });

  it("this node's own bad address stops the apply before anything is written", () => {
    expect(() =>
      desiredHost(state(), { nodeId: "nodeA", hostAddr: "1.2.3.4 nolearning\nlink del eth0" }),
    ).toThrow(/this node's underlay address/);
  });

  it("the agent's decode of a received state leaves out what is not valid and says why", () => {
    const s = hostile() as unknown as Record<string, unknown>;
    (s.services as Array<Record<string, unknown>>).push({
      id: "evil",
      name: "evil",
      mode: "vip",
      vips: [{ networkId: NET1, address: "10.0.1.7; flush ruleset" }],
      ports: [],
    });
    (s.networks as Array<Record<string, unknown>>).push({
      id: "bad net",
      name: "x",
      vni: 5000,
      subnet: "10.9.0.0/24",
      ingress: false,
      attachable: false,
    });
    const { state: checked, refused } = checkNetworkState(s);
    expect(checked.nodes.some((n) => n.nodeId === "nodeB")).toBe(false);
    expect(checked.tasks.some((t) => t.nodeId === "nodeB")).toBe(false);
    expect(checked.services.map((x) => x.id)).not.toContain("evil");
    expect(checked.networks.map((n) => n.id)).toEqual([NET1, NET2, INGRESS]);
    expect(refused).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^node nodeB: underlay address ".*" is not an IPv4 address$/),
        expect.stringMatching(/^service evil: virtual IP .* is not an IPv4 address$/),
        expect.stringMatching(/^network "bad net": not a valid network id$/),
      ]),
    );
    // A good state passes whole.
    expect(checkNetworkState(state())).toEqual({ state: state(), refused: [] });
    expect(() => checkNetworkState("nope")).toThrow(/not a network state/);
  });

  it("the VXLAN peers are the state's other nodes", () => {
    expect(overlayPeers(state(), A)).toEqual([B.hostAddr]);
  });
});
