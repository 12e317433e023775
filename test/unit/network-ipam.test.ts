import { afterEach, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatSubnet, overlaps, parseIp, parseSubnet, formatIp } from "../../agent/engine/network/cidr.js";
import { defaultPools, hostRoutes, pickFreeSubnet } from "../../agent/engine/network/subnet-picker.js";
import { AddressPool } from "../../agent/engine/network/address-pool.js";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("cidr", () => {
  it("parses and formats addresses and subnets, refusing bad ones with the value named", () => {
    expect(formatIp(parseIp("172.20.0.1"))).toBe("172.20.0.1");
    expect(formatSubnet(parseSubnet("10.1.0.0/16"))).toBe("10.1.0.0/16");
    expect(() => parseIp("300.1.1.1")).toThrow(/300.1.1.1/);
    expect(() => parseSubnet("10.1.0.1/16")).toThrow(/host bits are set; did you mean 10.1.0.0\/16/);
    expect(() => parseSubnet("10.1.0.0")).toThrow(/CIDR/);
    expect(overlaps(parseSubnet("10.0.0.0/8"), parseSubnet("10.5.0.0/16"))).toBe(true);
    expect(overlaps(parseSubnet("10.0.0.0/16"), parseSubnet("10.1.0.0/16"))).toBe(false);
  });
});

describe("subnet picker", () => {
  it("skips pools used by networks or routed on the host, and says what to do when all are taken", () => {
    const used = [parseSubnet("172.17.0.0/16"), parseSubnet("172.16.0.0/12")];
    expect(formatSubnet(pickFreeSubnet([parseSubnet("172.17.0.0/16")]))).toBe("172.18.0.0/16");
    expect(formatSubnet(pickFreeSubnet(used))).toBe("192.168.0.0/20");
    expect(() => pickFreeSubnet([...used, parseSubnet("192.168.0.0/16")])).toThrow(/pass --subnet/);
    expect(defaultPools()).toHaveLength(31);
  });

  it("reads the host's routes from /proc/net/route format", async () => {
    dir = await mkdtemp("/tmp/shoal-ipam-");
    const file = join(dir, "route");
    await writeFile(
      file,
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
        "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
        "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n",
    );
    expect((await hostRoutes(file)).map(formatSubnet)).toEqual(["10.0.0.0/16"]);
    expect(Array.isArray(await hostRoutes())).toBe(true);
  });
});

describe("address pool", () => {
  it("never hands an address out twice, keeps the gateway, and survives a round trip through its state", () => {
    const pool = AddressPool.create(parseSubnet("10.9.0.0/29"));
    expect(pool.state.gateway).toBe("10.9.0.1");
    const got = ["a", "b", "c", "d", "e"].map((o) => pool.allocate(o));
    expect(got).toEqual(["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]);
    expect(() => pool.allocate("f")).toThrow(/no free address in 10.9.0.0\/29/);
    pool.release("10.9.0.3");
    pool.release("10.9.0.1"); // the gateway stays reserved
    const restored = AddressPool.restore(JSON.parse(JSON.stringify(pool.state)), parseSubnet("10.9.0.0/29"));
    expect(restored.allocate("g")).toBe("10.9.0.3");
    expect(() => restored.allocate("h", "10.9.0.2")).toThrow(/already in use by a/);
    expect(() => restored.allocate("h", "10.9.0.7")).toThrow(/not a host address/);
    expect(
      restored
        .inUse()
        .map((x) => x.owner)
        .sort(),
    ).toEqual(["a", "c", "d", "e", "g"]);
  });

  it("allocates from --ip-range only, and checks the gateway", () => {
    const pool = AddressPool.create(parseSubnet("10.8.0.0/24"), { range: parseSubnet("10.8.0.128/25") });
    expect(pool.allocate("x")).toBe("10.8.0.128");
    expect(() => AddressPool.create(parseSubnet("10.8.0.0/24"), { gateway: "10.9.0.1" })).toThrow(
      /not a host address/,
    );
    expect(() =>
      AddressPool.create(parseSubnet("10.8.0.0/24"), { range: parseSubnet("10.7.0.0/25") }),
    ).toThrow(/not inside subnet/);
  });
});
