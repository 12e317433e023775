// The pure parts of networking: port requests, clashes, the nftables text (checked by nft
// itself in --check mode, which parses without touching the kernel's rules) and -p parsing.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { clash, parsePortKey, portRequests } from "../../agent/engine/network/ports.js";
import {
  FirewallApplier,
  renderFirewall,
  renderSetSync,
  type FirewallState,
} from "../../agent/engine/network/firewall.js";
import { macForAddress } from "../../agent/engine/network/host-links.js";
import { parseExpose, parsePublish } from "../../cli/options.js";

const state: FirewallState = {
  networks: [
    { bridge: "shoal0", subnet: "172.17.0.0/16", gateway: "172.17.0.1", internal: false },
    { bridge: "shb-aaaaaaaaaaa", subnet: "10.1.0.0/24", gateway: "10.1.0.1", internal: false },
    { bridge: "shb-bbbbbbbbbbb", subnet: "10.2.0.0/24", gateway: "10.2.0.1", internal: true },
  ],
  ports: [
    { protocol: "tcp", hostIp: "", hostPort: 8080, containerIp: "172.17.0.2", containerPort: 80 },
    { protocol: "udp", hostIp: "10.9.9.9", hostPort: 5353, containerIp: "10.1.0.5", containerPort: 53 },
    { protocol: "tcp", hostIp: "127.0.0.1", hostPort: 8081, containerIp: "10.1.0.5", containerPort: 80 },
  ],
  overlay: { vnis: [4097, 4096], peers: ["192.168.50.2", "192.168.50.3\nflush ruleset"] },
};

describe("firewall table", () => {
  it("renders one table nft accepts, with a rule per port, masquerade per egress network and isolation", () => {
    const text = renderFirewall(state, "shoal_unit");
    expect(text).toContain(
      "map pub_tcp { type inet_service : ipv4_addr . inet_service; elements = { 8080 : 172.17.0.2 . 80 }; }",
    );
    expect(text).toContain("elements = { 10.9.9.9 . 5353 : 10.1.0.5 . 53 }");
    expect(text).toContain("dnat ip to ip daddr . tcp dport map @pub_tcp_addr");
    expect(text).toContain('ip saddr 10.1.0.0/24 oifname != "shb-aaaaaaaaaaa" masquerade');
    // An internal network has no masquerade and is cut off both ways.
    expect(text).not.toContain('ip saddr 10.2.0.0/24 oifname != "shb-bbbbbbbbbbb" masquerade');
    expect(text).toContain('iifname "shb-bbbbbbbbbbb" oifname != "shb-bbbbbbbbbbb" drop');
    // Only its own table: nothing else is flushed or deleted.
    expect(text).not.toMatch(/flush ruleset/);
    expect(text.match(/^delete table .*$/gm)).toEqual(["delete table ip shoal_unit"]);
    const check = spawnSync("nft", ["-c", "-f", "-"], { input: text });
    expect(check.stderr.toString()).toBe("");
    expect(check.status).toBe(0);
  });

  it("lets into a bridge only replies, published ports and its own traffic, like moby's forward-in chains", () => {
    const text = renderFirewall(state, "shoal_unit");
    const forward = text.slice(text.indexOf("chain forward"));
    const order = [
      "ct state established,related accept",
      "ct status dnat accept",
      'oifname "shoal0" iifname != "shoal0" drop',
      'oifname "shb-aaaaaaaaaaa" iifname != "shb-aaaaaaaaaaa" drop',
    ].map((rule) => forward.indexOf(rule));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // Direct access to a container address from another interface never reaches conntrack; the
    // gateway (the host's own address, where DNS answers) stays reachable.
    expect(text).toContain('iifname != "shb-aaaaaaaaaaa" ip daddr 10.1.0.0/24 ip daddr != 10.1.0.1 drop');
    expect(text).toMatch(/type filter hook prerouting priority raw/);
  });

  it("never routes localhost onto a bridge: 127/8 from a bridge is dropped, the host's own 127/8 is not NAT'ed", () => {
    const text = renderFirewall(state, "shoal_unit");
    expect(text).toContain(
      'iifname { "shoal0", "shb-aaaaaaaaaaa", "shb-bbbbbbbbbbb" } ip daddr 127.0.0.0/8 drop',
    );
    expect(text).toContain("ip daddr != 127.0.0.0/8 fib daddr type local jump published");
    expect(text).not.toContain("ip saddr 127.0.0.0/8 masquerade");
    // A port bound to 127.0.0.1 is the loopback proxy's: no map element, which could only serve
    // packets that route_localnet would have let in.
    expect(text).not.toContain("127.0.0.1 . 8081");
  });

  it("accepts VXLAN for its own VNIs only from the cluster's nodes, and writes nothing that is not an address", () => {
    const text = renderFirewall(state, "shoal_unit");
    expect(text).toContain("set overlay_peers { type ipv4_addr; elements = { 192.168.50.2 }; }");
    expect(text).toContain("udp dport 4789 @th,96,24 { 4096, 4097 } ip saddr != @overlay_peers drop");
    expect(text).not.toContain("192.168.50.3");
    // No overlay network: no VXLAN rule, so another program's VXLAN is not touched.
    const plain = renderFirewall({ ...state, overlay: undefined }, "shoal_unit");
    expect(plain).not.toContain("dport 4789");
  });

  it("a port or peer change syncs only the maps and the set, in one transaction nft accepts", () => {
    const sync = renderSetSync(state, "shoal_unit");
    expect(sync).toContain("flush map ip shoal_unit pub_tcp\n");
    expect(sync).toContain("add element ip shoal_unit pub_tcp { 8080 : 172.17.0.2 . 80 }");
    expect(sync).toContain("flush set ip shoal_unit overlay_peers\n");
    expect(sync).toContain("add element ip shoal_unit overlay_peers { 192.168.50.2 }");
    expect(sync).not.toContain("chain");
    const check = spawnSync("nft", ["-c", "-f", "-"], { input: renderFirewall(state, "shoal_unit") + sync });
    expect(check.stderr.toString()).toBe("");
  });

  it("coalesces updates: a burst of changes ends in one apply of the newest state; a table rewrite wins", async () => {
    const applied: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const applier = new FirewallApplier("t", async (text) => {
      applied.push(`${text.includes("chain") ? "table" : "ports"}:${(text.match(/\d : \d/g) ?? []).length}`);
      if (applied.length === 1) await gate;
    });
    const mk = (n: number): FirewallState => ({ networks: [], ports: state.ports.slice(0, n) });
    const first = applier.update(() => mk(0));
    const later = [applier.updateSets(() => mk(1)), applier.updateSets(() => mk(2))];
    release();
    await Promise.all([first, ...later]);
    expect(applied).toEqual(["table:0", "ports:2"]);
    await Promise.all([applier.updateSets(() => mk(1)), applier.update(() => mk(2))]);
    expect(applied.slice(2)).toEqual(["ports:1", "table:2"]);
  });
});

describe("published ports", () => {
  it("reads port keys and bindings, -P adds exposed ports on ephemeral host ports", () => {
    expect(parsePortKey("53/udp")).toEqual({ port: 53, protocol: "udp" });
    expect(parsePortKey("80")).toEqual({ port: 80, protocol: "tcp" });
    expect(() => parsePortKey("80/sctp")).toThrow(/tcp or PORT\/udp/);
    expect(() => parsePortKey("0/tcp")).toThrow(/1 to 65535/);
    const reqs = portRequests(
      { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8000-8010" }] },
      { "80/tcp": {}, "443/tcp": {} },
      true,
    );
    expect(reqs).toEqual([
      { protocol: "tcp", containerPort: 80, hostIp: "127.0.0.1", hostPorts: [8000, 8010] },
      { protocol: "tcp", containerPort: 443, hostIp: "", hostPorts: [0, 0] },
    ]);
    expect(() => portRequests({ "80/tcp": [{ HostIp: "::1", HostPort: "80" }] }, {}, false)).toThrow(/IPv4/);
  });

  it("a wildcard binding clashes with every address, a specific one only with itself", () => {
    const any = { protocol: "tcp" as const, hostIp: "", hostPort: 80 };
    expect(clash(any, { protocol: "tcp", hostIp: "127.0.0.1", hostPort: 80 })).toBe(true);
    expect(clash(any, { protocol: "udp", hostIp: "", hostPort: 80 })).toBe(false);
    expect(
      clash(
        { protocol: "tcp", hostIp: "127.0.0.1", hostPort: 80 },
        { protocol: "tcp", hostIp: "10.0.0.1", hostPort: 80 },
      ),
    ).toBe(false);
  });

  it("-p reads like the docker CLI: ip, host port, ranges, protocol", () => {
    expect(parsePublish("8080:80")).toEqual([{ key: "80/tcp", binding: { HostIp: "", HostPort: "8080" } }]);
    expect(parsePublish("127.0.0.1:53:53/udp")).toEqual([
      { key: "53/udp", binding: { HostIp: "127.0.0.1", HostPort: "53" } },
    ]);
    expect(parsePublish("80")).toEqual([{ key: "80/tcp", binding: { HostIp: "", HostPort: "" } }]);
    expect(parsePublish("127.0.0.1::80")).toEqual([
      { key: "80/tcp", binding: { HostIp: "127.0.0.1", HostPort: "" } },
    ]);
    expect(parsePublish("9000-9001:80-81").map((p) => `${p.binding.HostPort}->${p.key}`)).toEqual([
      "9000->80/tcp",
      "9001->81/tcp",
    ]);
    expect(parsePublish("9000-9010:80")).toEqual([
      { key: "80/tcp", binding: { HostIp: "", HostPort: "9000-9010" } },
    ]);
    expect(() => parsePublish("9000-9002:80-81")).toThrow(/differ in length/);
    expect(() => parsePublish("80/sctp")).toThrow(/tcp or udp/);
    expect(() => parsePublish("70000:80")).toThrow(/1 to 65535/);
    expect(parseExpose("7000-7001/udp")).toEqual(["7000/udp", "7001/udp"]);
  });

  it("a container's MAC comes from its address, as Docker makes it", () => {
    expect(macForAddress("172.17.0.2")).toBe("02:42:ac:11:00:02");
  });
});
