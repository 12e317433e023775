// The DNS server on real sockets, loopback only. The source address picks the "container": a
// client socket bound to 127.0.0.x asks, and the records say which container owns 127.0.0.x.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server, type Socket } from "node:net";
import dnsPacket from "dns-packet";
import type { DecodedPacket, Packet, RecordType } from "dns-packet";
import { DnsRecords } from "../../agent/engine/dns/records.js";
import { DnsServer } from "../../agent/engine/dns/server.js";
import { UpstreamResolver, type UpstreamServer } from "../../agent/engine/dns/upstream.js";
import { silentLogger } from "../../shared/logging.js";

const SERVER = "127.0.0.1";
const WEB = "127.0.0.2"; // c1 on A
const DB = "127.0.0.3"; // c2 on A
const CACHE = "127.0.0.4"; // c3 on B
const BOTH_A = "127.0.0.5"; // c4 on A
const BOTH_B = "127.0.0.6"; // c4 on B
const STRANGER = "127.0.0.9";

/** Everything opened by a test, closed after it whatever happened. */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch {
      // Keep closing the rest.
    }
  }
});

function closeUdp(s: UdpSocket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

function rcodeOf(buf: Buffer): number {
  return buf.readUInt16BE(2) & 0x0f;
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** Read length-prefixed messages until `count` arrived or the peer closed. */
function readFrames(
  socket: Socket,
  count: number,
  timeoutMs = 5000,
): Promise<{ frames: Buffer[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    const frames: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error("no TCP answer in time")), timeoutMs);
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      resolve({ frames, closed });
    };
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const size = pending.readUInt16BE(0);
        frames.push(pending.subarray(2, 2 + size));
        pending = pending.subarray(2 + size);
      }
      if (frames.length >= count) finish(false);
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => undefined);
  });
}

function query(name: string, type: RecordType = "A", extra: Partial<Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: Math.floor(Math.random() * 65536),
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
    ...extra,
  });
}

async function udpSocketOn(address: string): Promise<UdpSocket> {
  const s = createSocket("udp4");
  cleanups.push(() => closeUdp(s));
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.bind(0, address, () => resolve());
  });
  return s;
}

/** Send raw bytes from `from` and wait for one datagram back. */
async function askUdpRaw(from: string, port: number, msg: Buffer, timeoutMs = 5000): Promise<Buffer> {
  const s = await udpSocketOn(from);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no UDP answer in time")), timeoutMs);
    s.on("message", (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
    s.send(msg, port, SERVER);
  });
}

async function askUdp(from: string, port: number, msg: Buffer): Promise<{ raw: Buffer; p: DecodedPacket }> {
  const raw = await askUdpRaw(from, port, msg);
  expect(raw.readUInt16BE(0)).toBe(msg.readUInt16BE(0));
  return { raw, p: dnsPacket.decode(raw) };
}

async function tcpTo(from: string, port: number): Promise<Socket> {
  const socket = connect({ host: SERVER, port, localAddress: from });
  cleanups.push(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.once("connect", () => resolve());
  });
  return socket;
}

async function askTcp(from: string, port: number, msg: Buffer): Promise<{ raw: Buffer; p: DecodedPacket }> {
  const socket = await tcpTo(from, port);
  const got = readFrames(socket, 1);
  socket.write(frame(msg));
  const { frames } = await got;
  expect(frames).toHaveLength(1);
  expect(frames[0].readUInt16BE(0)).toBe(msg.readUInt16BE(0));
  return { raw: frames[0], p: dnsPacket.decode(frames[0]) };
}

function addresses(p: DecodedPacket | undefined): string[] {
  return (p?.answers ?? []).flatMap((a) => (a.type === "A" ? [a.data] : []));
}

/**
 * Bind UDP on a free port, then TCP on the same one; retried if TCP has it taken. The TCP
 * connections are destroyed at cleanup: a server only closes once its connections are gone.
 */
async function bindPair(address: string): Promise<{ udp: UdpSocket; tcp: Server; port: number }> {
  for (;;) {
    const udp = await udpSocketOn(address);
    const port = udp.address().port;
    const tcp = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => resolve(false));
      tcp.listen(port, address, () => resolve(true));
    });
    if (ok) {
      const conns = new Set<Socket>();
      tcp.on("connection", (c) => {
        conns.add(c);
        c.on("error", () => undefined);
      });
      cleanups.push(() => {
        conns.forEach((c) => c.destroy());
        return closeServer(tcp);
      });
      return { udp, tcp, port };
    }
    await closeUdp(udp);
  }
}

interface FakeUpstream {
  server: UpstreamServer;
  seen: Array<{ name: string; type: string; protocol: "udp" | "tcp" }>;
  /** The exact bytes of the last answer sent. */
  lastAnswer?: Buffer;
}

/**
 * A resolver on 127.0.0.1 answering example.com, "big.example" with 40 addresses (cut with TC
 * over UDP, whole over TCP), "fail.example" with SERVFAIL, NXDOMAIN otherwise.
 */
async function fakeUpstream(): Promise<FakeUpstream> {
  const { udp, tcp, port } = await bindPair("127.0.0.1");
  const fake: FakeUpstream = { server: { address: "127.0.0.1", port }, seen: [] };
  const answer = (msg: Buffer, protocol: "udp" | "tcp"): Buffer => {
    const q = dnsPacket.decode(msg);
    const question = q.questions?.[0] ?? { name: "", type: "A" as const };
    fake.seen.push({ name: question.name, type: question.type, protocol });
    const reply: Packet = {
      type: "response",
      id: q.id,
      flags: dnsPacket.RECURSION_AVAILABLE,
      questions: q.questions,
    };
    if (question.name === "example.com" && question.type === "A") {
      reply.answers = [{ type: "A", name: question.name, ttl: 30, data: "192.0.2.10" }];
    } else if (question.name === "big.example") {
      if (protocol === "udp") reply.flags = (reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE;
      else
        reply.answers = Array.from({ length: 40 }, (_, i) => ({
          type: "A" as const,
          name: question.name,
          ttl: 30,
          data: `192.0.2.${i + 1}`,
        }));
    } else if (question.name === "fail.example") {
      reply.flags = (reply.flags ?? 0) | 2;
    } else {
      reply.flags = (reply.flags ?? 0) | 3;
    }
    const bytes = dnsPacket.encode(reply);
    fake.lastAnswer = bytes;
    return bytes;
  };
  udp.on("message", (msg, rinfo) => udp.send(answer(msg, "udp"), rinfo.port, rinfo.address));
  tcp.on("connection", (socket) => {
    readFrames(socket, 1)
      .then(({ frames }) => {
        if (frames[0]) socket.end(frame(answer(frames[0], "tcp")));
      })
      .catch(() => socket.destroy());
  });
  return fake;
}

/** A port on 127.0.0.1 nobody listens on, UDP or TCP. */
async function deadPort(): Promise<number> {
  const { udp, tcp, port } = await bindPair("127.0.0.1");
  await closeUdp(udp);
  await closeServer(tcp);
  return port;
}

let records: DnsRecords;
let upstreams: UpstreamServer[];
let server: DnsServer;
let port: number;

beforeEach(async () => {
  records = new DnsRecords();
  records.setEndpoint({ containerId: "c1", networkId: "A", ip: WEB, names: ["web", "frontend"] });
  records.setEndpoint({ containerId: "c2", networkId: "A", ip: DB, names: ["db"] });
  records.setEndpoint({ containerId: "c3", networkId: "B", ip: CACHE, names: ["cache"] });
  records.setEndpoint({ containerId: "c4", networkId: "A", ip: BOTH_A, names: ["both"] });
  records.setEndpoint({ containerId: "c4", networkId: "B", ip: BOTH_B, names: ["both"] });
  upstreams = [];
  const upstream = new UpstreamResolver(() => upstreams, { timeoutMs: 300 });
  cleanups.push(() => upstream.close());
  server = new DnsServer({ records, upstream, log: silentLogger() });
  cleanups.push(() => server.close());
  await server.listen(SERVER, 0);
  port = server.portOf(SERVER) ?? 0;
  expect(port).toBeGreaterThan(0);
});

describe("DNS server: local names", () => {
  it("resolves names on the asker's networks only", async () => {
    const fake = await fakeUpstream();
    upstreams = [fake.server];
    expect(addresses((await askUdp(WEB, port, query("db"))).p)).toEqual([DB]);
    expect(addresses((await askUdp(WEB, port, query("web"))).p)).toEqual([WEB]);
    expect(addresses((await askUdp(WEB, port, query("frontend"))).p)).toEqual([WEB]);
    expect(addresses((await askUdp(WEB, port, query("both"))).p)).toEqual([BOTH_A]);
    // cache is on B only: web cannot see it, the query goes to the host's resolvers.
    const cache = await askUdp(WEB, port, query("cache"));
    expect(rcodeOf(cache.raw)).toBe(3);
    expect(fake.seen).toEqual([{ name: "cache", type: "A", protocol: "udp" }]);
    // The container on both networks sees both.
    expect(addresses((await askUdp(BOTH_A, port, query("cache"))).p)).toEqual([CACHE]);
    expect(addresses((await askUdp(BOTH_B, port, query("db"))).p)).toEqual([DB]);
    expect(addresses((await askUdp(BOTH_A, port, query("both"))).p)).toEqual([BOTH_A, BOTH_B]);
    // An address no container owns gets no container names.
    expect(rcodeOf((await askUdp(STRANGER, port, query("db"))).raw)).toBe(3);
  });

  it("answers with the question as asked, ttl 600, RA and RD", async () => {
    const { raw, p } = await askUdp(WEB, port, query("DB.", "A"));
    expect(p.flag_qr && p.flag_ra && p.flag_rd).toBe(true);
    expect(rcodeOf(raw)).toBe(0);
    expect(p.questions).toEqual([{ name: "DB", type: "A", class: "IN" }]);
    expect(p.answers).toEqual([expect.objectContaining({ type: "A", name: "DB", ttl: 600, data: DB })]);
  });

  it("says NOERROR with no answer for AAAA of a known name, without asking upstream", async () => {
    const fake = await fakeUpstream();
    upstreams = [fake.server];
    const { raw, p } = await askUdp(WEB, port, query("db", "AAAA"));
    expect(rcodeOf(raw)).toBe(0);
    expect(p.answers).toEqual([]);
    expect(fake.seen).toEqual([]);
  });

  it("answers PTR for a container on a shared network and forwards the others", async () => {
    const fake = await fakeUpstream();
    upstreams = [fake.server];
    const { p } = await askUdp(WEB, port, query("3.0.0.127.in-addr.arpa", "PTR"));
    expect(p.answers).toEqual([expect.objectContaining({ type: "PTR", data: "db", ttl: 600 })]);
    await askUdp(WEB, port, query("4.0.0.127.in-addr.arpa", "PTR"));
    expect(fake.seen).toEqual([{ name: "4.0.0.127.in-addr.arpa", type: "PTR", protocol: "udp" }]);
  });

  it("answers over TCP, several queries on one connection", async () => {
    expect(addresses((await askTcp(WEB, port, query("db"))).p)).toEqual([DB]);
    const socket = await tcpTo(BOTH_B, port);
    const got = readFrames(socket, 2);
    const q1 = query("db");
    const q2 = query("cache");
    socket.write(Buffer.concat([frame(q1), frame(q2)]));
    const { frames } = await got;
    const byId = new Map(frames.map((f) => [f.readUInt16BE(0), dnsPacket.decode(f)]));
    expect(addresses(byId.get(q1.readUInt16BE(0)))).toEqual([DB]);
    expect(addresses(byId.get(q2.readUInt16BE(0)))).toEqual([CACHE]);
  });

  it("lets a removed endpoint's name fall through to the host's resolvers", async () => {
    const fake = await fakeUpstream();
    upstreams = [fake.server];
    expect(addresses((await askUdp(WEB, port, query("db"))).p)).toEqual([DB]);
    records.removeEndpoint("c2", "A");
    expect(rcodeOf((await askUdp(WEB, port, query("db"))).raw)).toBe(3);
    expect(fake.seen.map((s) => s.name)).toEqual(["db"]);
  });
});

describe("DNS server: forwarding", () => {
  it("relays the upstream answer byte for byte over UDP and over TCP", async () => {
    const fake = await fakeUpstream();
    upstreams = [fake.server];
    const udp = await askUdp(WEB, port, query("example.com"));
    expect(udp.raw.equals(fake.lastAnswer ?? Buffer.alloc(0))).toBe(true);
    expect(addresses(udp.p)).toEqual(["192.0.2.10"]);
    const tcp = await askTcp(STRANGER, port, query("example.com"));
    expect(tcp.raw.equals(fake.lastAnswer ?? Buffer.alloc(0))).toBe(true);
    expect(fake.seen.map((s) => s.protocol)).toEqual(["udp", "tcp"]);
  });

  it("asks again over TCP when the UDP answer is truncated, and fits the answer to the client", async () => {
    const fake = await fakeUpstream();
    upstreams = [fake.server];
    const edns: Partial<Packet> = {
      additionals: [
        {
          type: "OPT",
          name: ".",
          udpPayloadSize: 4096,
          extendedRcode: 0,
          ednsVersion: 0,
          flags: 0,
          flag_do: false,
          options: [],
        },
      ],
    };
    const big = await askUdp(WEB, port, query("big.example", "A", edns));
    expect(big.p.flag_tc).toBe(false);
    expect(addresses(big.p)).toHaveLength(40);
    expect(fake.seen.map((s) => s.protocol)).toEqual(["udp", "tcp"]);
    // A client without EDNS takes 512 bytes: as many addresses as fit, and TC.
    const plain = await askUdp(WEB, port, query("big.example"));
    expect(plain.raw.length).toBeLessThanOrEqual(512);
    expect(plain.p.flag_tc).toBe(true);
    expect(addresses(plain.p).length).toBeGreaterThan(0);
  });

  it("moves on to the next server when one is down or fails", async () => {
    const fake = await fakeUpstream();
    upstreams = [{ address: "127.0.0.1", port: await deadPort() }, fake.server];
    expect(addresses((await askUdp(WEB, port, query("example.com"))).p)).toEqual(["192.0.2.10"]);
    expect(addresses((await askTcp(WEB, port, query("example.com"))).p)).toEqual(["192.0.2.10"]);
    // SERVFAIL from every server: the last one's answer is relayed.
    upstreams = [fake.server, fake.server];
    expect(rcodeOf((await askUdp(WEB, port, query("fail.example"))).raw)).toBe(2);
    expect(fake.seen.filter((s) => s.name === "fail.example")).toHaveLength(2);
  });

  it("answers SERVFAIL when no upstream answers", async () => {
    upstreams = [{ address: "127.0.0.1", port: await deadPort() }];
    const udp = await askUdp(WEB, port, query("example.com"));
    expect(rcodeOf(udp.raw)).toBe(2);
    expect(udp.p.questions).toEqual([{ name: "example.com", type: "A", class: "IN" }]);
    expect(rcodeOf((await askTcp(WEB, port, query("example.com"))).raw)).toBe(2);
    upstreams = [];
    expect(rcodeOf((await askUdp(WEB, port, query("example.com"))).raw)).toBe(2);
  });

  it("times out a silent upstream", async () => {
    // Bound but never answering: only the timeout can end the wait.
    const { port: silent } = await bindPair("127.0.0.1");
    upstreams = [{ address: "127.0.0.1", port: silent }];
    const started = Date.now();
    expect(rcodeOf((await askUdp(WEB, port, query("example.com"))).raw)).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});

describe("upstream resolver", () => {
  it("close() ends the exchanges in flight at once", async () => {
    const { port: silent } = await bindPair("127.0.0.1");
    const resolver = new UpstreamResolver(() => [{ address: "127.0.0.1", port: silent }], {
      timeoutMs: 30_000,
    });
    cleanups.push(() => resolver.close());
    const started = Date.now();
    const udp = resolver.forward(query("example.com"), "udp");
    const tcp = resolver.forward(query("example.com"), "tcp");
    await new Promise((r) => setTimeout(r, 50));
    resolver.close();
    expect(await udp).toBeUndefined();
    expect(await tcp).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await resolver.forward(query("example.com"), "udp")).toBeUndefined();
  });

  it("keeps the query id and refuses short queries", async () => {
    const fake = await fakeUpstream();
    const resolver = new UpstreamResolver(() => Promise.resolve([fake.server]));
    cleanups.push(() => resolver.close());
    const msg = query("example.com");
    const answer = await resolver.forward(msg, "tcp");
    expect(answer?.readUInt16BE(0)).toBe(msg.readUInt16BE(0));
    expect(await resolver.forward(Buffer.from([1, 2, 3]), "udp")).toBeUndefined();
  });
});

describe("DNS server: robustness and listening", () => {
  it("ignores malformed datagrams and closes TCP connections that send them", async () => {
    const s = await udpSocketOn(WEB);
    s.send(Buffer.from("not dns at all"), port, SERVER);
    // A response is not a query either.
    s.send(
      dnsPacket.encode({ type: "response", id: 1, questions: [{ type: "A", name: "db" }] }),
      port,
      SERVER,
    );
    expect(addresses((await askUdp(WEB, port, query("db"))).p)).toEqual([DB]);
    const socket = await tcpTo(WEB, port);
    const got = readFrames(socket, 1);
    socket.write(frame(Buffer.from("garbage!")));
    expect(await got).toEqual({ frames: [], closed: true });
    expect(addresses((await askTcp(WEB, port, query("db"))).p)).toEqual([DB]);
  });

  it("listens once per address, names the address and port when it cannot bind", async () => {
    await server.listen(SERVER, 0);
    await server.listen(SERVER, port);
    expect(server.addresses()).toEqual([SERVER]);
    await expect(server.listen(SERVER, port === 65535 ? 65534 : port + 1)).rejects.toThrow(/already served/);
    // A port someone else holds on another loopback address.
    const { port: taken } = await bindPair("127.0.0.7");
    await expect(server.listen("127.0.0.7", taken)).rejects.toThrow(
      new RegExp(`127\\.0\\.0\\.7:${taken} \\(udp\\).*already serves`),
    );
    expect(server.addresses()).toEqual([SERVER]);
    await Promise.all([server.listen("127.0.0.8", 0), server.listen("127.0.0.8", 0)]);
    expect(server.addresses()).toEqual([SERVER, "127.0.0.8"]);
    const other = server.portOf("127.0.0.8") ?? 0;
    const reply = await new Promise<Buffer>((resolve, reject) => {
      void udpSocketOn(WEB).then((s) => {
        const timer = setTimeout(() => reject(new Error("no answer")), 5000);
        s.on("message", (m) => {
          clearTimeout(timer);
          resolve(m);
        });
        s.send(query("db"), other, "127.0.0.8");
      });
    });
    expect(addresses(dnsPacket.decode(reply))).toEqual([DB]);
    await server.unlisten("127.0.0.8");
    expect(server.addresses()).toEqual([SERVER]);
    expect(server.portOf("127.0.0.8")).toBeUndefined();
  });

  it("answers only its own network's subnet: a query from anywhere else gets nothing, and is counted", async () => {
    // Listening again on the address narrows who may ask: 127.0.0.0/30 holds web and db, not cache.
    await server.listen(SERVER, port, "127.0.0.0/30");
    expect(addresses((await askUdp(WEB, port, query("db"))).p)).toEqual([DB]);
    expect(addresses((await askTcp(DB, port, query("web"))).p)).toEqual([WEB]);
    await expect(askUdpRaw(CACHE, port, query("db"), 500)).rejects.toThrow(/no UDP answer/);
    const outsider = await tcpTo(CACHE, port);
    const got = readFrames(outsider, 1);
    outsider.write(frame(query("db")));
    expect(await got).toEqual({ frames: [], closed: true });
    expect(server.refusedQueries).toBe(2);
  });

  it("closes every socket, so the ports are free again", async () => {
    const open = await tcpTo(WEB, port);
    const closed = new Promise<void>((resolve) => open.on("close", () => resolve()));
    await server.close();
    await closed;
    expect(server.addresses()).toEqual([]);
    const again = new DnsServer({ records, upstream: new UpstreamResolver(() => []), log: silentLogger() });
    cleanups.push(() => again.close());
    await again.listen(SERVER, port);
    expect(again.portOf(SERVER)).toBe(port);
  });
});
