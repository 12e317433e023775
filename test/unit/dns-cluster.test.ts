// Cluster DNS records from a NetworkState, scoped to the asker's networks: service names (VIP or
// every running task with dnsrr), tasks.<service>, task names, and the answer bytes themselves.
import dnsPacket from "dns-packet";
import { describe, expect, it } from "vitest";
import { clusterNames } from "../../agent/engine/dns/cluster.js";
import { DnsRecords } from "../../agent/engine/dns/records.js";
import { decide } from "../../agent/engine/dns/answer.js";
import type { NetworkState } from "../../shared/network-state.js";

const FRONT = "front-id";
const BACK = "back-id";

function state(): NetworkState {
  const t = (
    taskId: string,
    serviceId: string,
    networkId: string,
    address: string,
    running: boolean,
    names: string[],
  ) => ({
    networkId,
    taskId,
    serviceId,
    nodeId: "n2",
    hostAddr: "192.168.1.2",
    address,
    names,
    running,
  });
  return {
    version: 3,
    networks: [
      { id: FRONT, name: "front", vni: 4097, subnet: "10.0.1.0/24", ingress: false, attachable: false },
      { id: BACK, name: "back", vni: 4098, subnet: "10.0.2.0/24", ingress: false, attachable: false },
    ],
    nodes: [],
    tasks: [
      t("w1", "web", FRONT, "10.0.1.10", true, ["web.1.w1", "frontend"]),
      t("w2", "web", FRONT, "10.0.1.11", true, ["web.2.w2"]),
      t("w3", "web", FRONT, "10.0.1.12", false, ["web.3.w3"]),
      t("c1", "client", FRONT, "10.0.1.20", true, ["client.1.c1"]),
      t("c1", "client", BACK, "10.0.2.20", true, ["client.1.c1"]),
      t("d1", "db", BACK, "10.0.2.10", true, ["db.1.d1"]),
      t("d2", "db", BACK, "10.0.2.11", true, ["db.2.d2"]),
      t("o1", "other", BACK, "10.0.2.30", true, ["other.1.o1"]),
    ],
    services: [
      { id: "web", name: "web", mode: "vip", vips: [{ networkId: FRONT, address: "10.0.1.5" }], ports: [] },
      { id: "db", name: "db", mode: "dnsrr", vips: [], ports: [] },
      {
        id: "client",
        name: "client",
        mode: "vip",
        vips: [
          { networkId: FRONT, address: "10.0.1.6" },
          { networkId: BACK, address: "10.0.2.6" },
        ],
        ports: [],
      },
      {
        id: "other",
        name: "other",
        mode: "vip",
        vips: [{ networkId: BACK, address: "10.0.2.7" }],
        ports: [],
      },
    ],
  };
}

function records(): DnsRecords {
  const r = new DnsRecords();
  r.setCluster(clusterNames(state()));
  // A local container on "front" only, registered by the engine as usual.
  r.setEndpoint({ containerId: "local1", networkId: FRONT, ip: "10.0.1.30", names: ["mylocal", "web"] });
  return r;
}

describe("cluster DNS records", () => {
  it("a VIP service resolves to its VIP, tasks.<name> to every running task", () => {
    const r = records();
    expect(r.lookup("10.0.1.30", "web")).toEqual(["10.0.1.5"]);
    expect(r.lookup("10.0.1.30", "tasks.web")).toEqual(["10.0.1.10", "10.0.1.11"]);
    expect(r.lookup("10.0.1.30", "web.1.w1")).toEqual(["10.0.1.10"]);
    expect(r.lookup("10.0.1.30", "FRONTEND.")).toEqual(["10.0.1.10"]);
    // A stopped task is gone from every answer.
    expect(r.lookup("10.0.1.30", "web.3.w3")).toBeUndefined();
    // The local container's own names still resolve.
    expect(r.lookup("10.0.1.30", "mylocal")).toEqual(["10.0.1.30"]);
  });

  it("is scoped to the networks of whoever asks", () => {
    const r = records();
    // The local container is on front only: back's names are not its.
    expect(r.lookup("10.0.1.30", "db")).toBeUndefined();
    expect(r.lookup("10.0.1.30", "other")).toBeUndefined();
    // The client task is on both (asking from either address), and sees each service's VIP on
    // the network it shares with it.
    expect(r.lookup("10.0.1.20", "db")).toEqual(["10.0.2.10", "10.0.2.11"]);
    expect(r.lookup("10.0.2.20", "web")).toEqual(["10.0.1.5"]);
    expect(r.lookup("10.0.2.20", "client")).toEqual(["10.0.1.6", "10.0.2.6"]);
    expect(r.lookup("10.0.2.30", "client")).toEqual(["10.0.2.6"]);
    // A stranger sees nothing.
    expect(r.lookup("10.9.9.9", "web")).toBeUndefined();
  });

  it("dnsrr answers every running task; the cluster's name wins over a local alias", () => {
    const r = records();
    expect(r.lookup("10.0.2.30", "db")).toEqual(["10.0.2.10", "10.0.2.11"]);
    expect(r.lookup("10.0.2.30", "tasks.db")).toEqual(["10.0.2.10", "10.0.2.11"]);
    // "web" is also the local container's alias: the service answers, not the container.
    expect(r.lookup("10.0.1.30", "web")).toEqual(["10.0.1.5"]);
  });

  it("a service with nothing running is a known name with no address; replaced records take effect at once", () => {
    const s = state();
    s.tasks = s.tasks.map((t) => (t.serviceId === "db" ? { ...t, running: false } : t));
    const r = new DnsRecords();
    r.setCluster(clusterNames(s));
    expect(r.lookup("10.0.2.30", "db")).toEqual([]);
    expect(r.isLocalName("10.0.2.30", "tasks.db")).toBe(true);
    r.setCluster(clusterNames({ ...s, tasks: [], services: [] }));
    expect(r.lookup("10.0.2.30", "db")).toBeUndefined();
  });

  it("answers A queries with the addresses, PTR with the names, and forwards outside names", () => {
    const r = records();
    const ask = (name: string, type: "A" | "PTR") =>
      decide(
        dnsPacket.encode({
          type: "query",
          id: 7,
          flags: dnsPacket.RECURSION_DESIRED,
          questions: [{ type, name }],
        }),
        "10.0.1.30",
        r,
        600,
        "udp",
      );
    const a = ask("tasks.web", "A");
    expect(a.kind).toBe("local");
    if (a.kind === "local") {
      const reply = dnsPacket.decode(a.reply);
      expect((reply.answers ?? []).map((x) => (x as { data: string }).data)).toEqual([
        "10.0.1.10",
        "10.0.1.11",
      ]);
    }
    const ptr = ask("5.1.0.10.in-addr.arpa", "PTR");
    expect(ptr.kind).toBe("local");
    if (ptr.kind === "local")
      expect((dnsPacket.decode(ptr.reply).answers ?? [])[0]).toMatchObject({ data: "web" });
    expect(ask("example.com", "A").kind).toBe("forward");
  });
});
