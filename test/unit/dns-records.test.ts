import { describe, expect, it } from "vitest";
import { DnsRecords } from "../../agent/engine/dns/records.js";
import { decide, ptrToIpv4 } from "../../agent/engine/dns/answer.js";
import dnsPacket from "dns-packet";

// Two networks: web and db on A, cache on B, "both" on A and B with one address on each.
function sample(): DnsRecords {
  const r = new DnsRecords();
  r.setEndpoint({ containerId: "c1", networkId: "A", ip: "10.1.0.2", names: ["web", "Frontend"] });
  r.setEndpoint({ containerId: "c2", networkId: "A", ip: "10.1.0.3", names: ["db"] });
  r.setEndpoint({ containerId: "c3", networkId: "B", ip: "10.2.0.2", names: ["cache"] });
  r.setEndpoint({ containerId: "c4", networkId: "A", ip: "10.1.0.4", names: ["both"] });
  r.setEndpoint({ containerId: "c4", networkId: "B", ip: "10.2.0.3", names: ["both"] });
  return r;
}

describe("DnsRecords", () => {
  it("scopes names to the networks of the asking container", () => {
    const r = sample();
    expect(r.lookup("10.1.0.2", "db")).toEqual(["10.1.0.3"]);
    expect(r.lookup("10.1.0.2", "cache")).toBeUndefined();
    expect(r.lookup("10.2.0.2", "db")).toBeUndefined();
    // A container on both networks sees both, whichever of its addresses asks.
    expect(r.lookup("10.1.0.4", "cache")).toEqual(["10.2.0.2"]);
    expect(r.lookup("10.2.0.3", "db")).toEqual(["10.1.0.3"]);
    // Its own name, with every address a peer may reach it on, in numeric order.
    expect(r.lookup("10.1.0.2", "both")).toEqual(["10.1.0.4"]);
    expect(r.lookup("10.1.0.4", "both")).toEqual(["10.1.0.4", "10.2.0.3"]);
    expect(r.lookup("10.1.0.2", "web")).toEqual(["10.1.0.2"]);
  });

  it("ignores case and a trailing dot, resolves aliases, and knows no strangers", () => {
    const r = sample();
    expect(r.lookup("10.1.0.3", "WEB.")).toEqual(["10.1.0.2"]);
    expect(r.lookup("10.1.0.3", "frontend")).toEqual(["10.1.0.2"]);
    expect(r.lookup("10.9.9.9", "web")).toBeUndefined();
    expect(r.isLocalName("10.1.0.3", "Web")).toBe(true);
    expect(r.isLocalName("10.1.0.3", "cache")).toBe(false);
  });

  it("returns unique addresses sorted numerically", () => {
    const r = new DnsRecords();
    r.setEndpoint({ containerId: "a", networkId: "N", ip: "10.0.0.10", names: ["svc"] });
    r.setEndpoint({ containerId: "b", networkId: "N", ip: "10.0.0.9", names: ["svc", "svc"] });
    r.setEndpoint({ containerId: "c", networkId: "N", ip: "10.0.0.100", names: ["svc"] });
    expect(r.lookup("10.0.0.9", "svc")).toEqual(["10.0.0.9", "10.0.0.10", "10.0.0.100"]);
  });

  it("replaces an endpoint set again and forgets removed ones", () => {
    const r = sample();
    r.setEndpoint({ containerId: "c2", networkId: "A", ip: "10.1.0.7", names: ["db2"] });
    expect(r.lookup("10.1.0.2", "db")).toBeUndefined();
    expect(r.lookup("10.1.0.2", "db2")).toEqual(["10.1.0.7"]);
    expect(r.endpoints().filter((e) => e.containerId === "c2")).toHaveLength(1);
    r.removeEndpoint("c4", "B");
    expect(r.lookup("10.1.0.4", "cache")).toBeUndefined();
    r.removeContainer("c4");
    expect(r.lookup("10.1.0.2", "both")).toBeUndefined();
    expect(r.endpoints().map((e) => e.containerId)).toEqual(["c1", "c3", "c2"]);
    // The copies handed out do not write through.
    r.endpoints()[0].names.push("evil");
    expect(r.lookup("10.1.0.2", "evil")).toBeUndefined();
  });

  it("answers reverse lookups only for shared networks", () => {
    const r = sample();
    expect(r.reverse("10.1.0.2", "10.1.0.3")).toBe("db");
    expect(r.reverse("10.1.0.2", "10.2.0.2")).toBeUndefined();
    expect(r.reverse("10.1.0.4", "10.2.0.2")).toBe("cache");
  });
});

describe("answer decisions", () => {
  const query = (name: string, type: "A" | "AAAA" | "PTR" | "MX"): Buffer =>
    dnsPacket.encode({
      type: "query",
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type, name }],
    });

  it("parses in-addr.arpa names", () => {
    expect(ptrToIpv4("4.3.2.1.in-addr.arpa")).toBe("1.2.3.4");
    expect(ptrToIpv4("4.3.2.1.IN-ADDR.ARPA.")).toBe("1.2.3.4");
    expect(ptrToIpv4("256.3.2.1.in-addr.arpa")).toBeUndefined();
    expect(ptrToIpv4("3.2.1.in-addr.arpa")).toBeUndefined();
  });

  it("answers known names, says NOERROR/empty for other types, forwards the rest", () => {
    const r = sample();
    const a = decide(query("db", "A"), "10.1.0.2", r, 600, "udp");
    expect(a.kind).toBe("local");
    if (a.kind !== "local") return;
    const reply = dnsPacket.decode(a.reply);
    expect(reply.id).toBe(7);
    expect(reply.flag_qr && reply.flag_ra && reply.flag_rd).toBe(true);
    expect(reply.answers).toEqual([
      expect.objectContaining({ type: "A", name: "db", ttl: 600, data: "10.1.0.3" }),
    ]);
    const mx = decide(query("db", "MX"), "10.1.0.2", r, 600, "udp");
    expect(mx.kind === "local" && dnsPacket.decode(mx.reply).answers).toEqual([]);
    expect(decide(query("example.com", "A"), "10.1.0.2", r, 600, "udp").kind).toBe("forward");
    expect(decide(Buffer.from("nonsense"), "10.1.0.2", r, 600, "udp").kind).toBe("malformed");
  });

  it("cuts a local answer too big for UDP and sets TC", () => {
    const r = new DnsRecords();
    for (let i = 1; i <= 60; i++) {
      r.setEndpoint({ containerId: `c${i}`, networkId: "N", ip: `10.0.0.${i}`, names: ["many"] });
    }
    const udp = decide(query("many", "A"), "10.0.0.1", r, 600, "udp");
    const tcp = decide(query("many", "A"), "10.0.0.1", r, 600, "tcp");
    if (udp.kind !== "local" || tcp.kind !== "local") throw new Error("expected local answers");
    expect(udp.reply.length).toBeLessThanOrEqual(512);
    const cut = dnsPacket.decode(udp.reply);
    expect(cut.flag_tc).toBe(true);
    expect(cut.answers?.length).toBeGreaterThan(0);
    expect(dnsPacket.decode(tcp.reply).answers).toHaveLength(60);
  });
});

describe("--link aliases", () => {
  it("resolve for the linking container only, to the linked container's address", () => {
    const r = new DnsRecords();
    r.setEndpoint({ containerId: "db", networkId: "n1", ip: "10.0.0.2", names: ["linkdb", "dbid"] });
    r.setEndpoint({ containerId: "web", networkId: "n1", ip: "10.0.0.3", names: ["web"] });
    r.setEndpoint({ containerId: "other", networkId: "n1", ip: "10.0.0.4", names: ["other"] });
    r.setLinks("web", new Map([["store", "linkdb"]]));
    expect(r.lookup("10.0.0.3", "store")).toEqual(["10.0.0.2"]);
    expect(r.isLocalName("10.0.0.3", "Store.")).toBe(true);
    expect(r.lookup("10.0.0.4", "store")).toBeUndefined();
    r.removeContainer("web");
    r.setEndpoint({ containerId: "web", networkId: "n1", ip: "10.0.0.3", names: ["web"] });
    expect(r.lookup("10.0.0.3", "store")).toBeUndefined();
  });
});
