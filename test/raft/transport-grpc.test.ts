import { randomBytes } from "node:crypto";
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import * as pb from "../../proto/gen/raft.js";
import {
  GrpcTransport,
  type GrpcTransportOptions,
  type TransportLogger,
} from "../../manager/raft/transport/grpc-transport.js";
import type { Message, NodeId } from "../../manager/raft/core/types.js";

// The daemon hands its pino logger to the transport; this fails to compile if that stops fitting.
const _pinoFits: TransportLogger = pino({ level: "silent" });

interface Node {
  t: GrpcTransport;
  got: Message[];
  unreachable: NodeId[];
  snapStatus: Array<{ id: NodeId; ok: boolean }>;
  warnings: string[];
}

const open: GrpcTransport[] = [];
const servers: grpc.Server[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.stop()));
  for (const s of servers.splice(0)) s.forceShutdown();
});

async function node(
  id: NodeId,
  peers: Map<NodeId, string> = new Map(),
  extra: Partial<GrpcTransportOptions> & { port?: number } = {},
): Promise<Node> {
  const n: Node = {
    t: undefined as unknown as GrpcTransport,
    got: [],
    unreachable: [],
    snapStatus: [],
    warnings: [],
  };
  n.t = new GrpcTransport({
    id,
    listen: `127.0.0.1:${extra.port ?? 0}`,
    peers,
    onMessage: (m) => n.got.push(m),
    onUnreachable: (p) => n.unreachable.push(p),
    onSnapshotStatus: (p, ok) => n.snapStatus.push({ id: p, ok }),
    log: { warn: (_obj, msg) => n.warnings.push(msg) },
    ...extra,
  });
  await n.t.start();
  open.push(n.t);
  return n;
}

const addr = (n: Node): string => `127.0.0.1:${n.t.port}`;

/** Links every pair of nodes as peers of each other. */
function mesh(nodes: Map<NodeId, Node>): void {
  for (const [id, n] of nodes) for (const [other, o] of nodes) if (id !== other) n.t.addPeer(other, addr(o));
}

function msg(from: NodeId, to: NodeId, index: number, extra: Partial<Message> = {}): Message {
  return {
    type: "app",
    to,
    from,
    term: 1,
    logTerm: 1,
    index,
    entries: [{ term: 1, index: index + 1, type: "normal", data: new TextEncoder().encode(`e${index}`) }],
    commit: index,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array(0),
    ...extra,
  };
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A port nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function indexesFrom(n: Node, from: NodeId): number[] {
  return n.got.filter((m) => m.from === from).map((m) => m.index);
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("GrpcTransport", () => {
  it("carries messages both ways between two nodes, in order and intact", async () => {
    const a = await node(1);
    const b = await node(2);
    mesh(
      new Map([
        [1, a],
        [2, b],
      ]),
    );
    const n = 2000;
    // Many small batches plus one big one: the stream's backpressure path gets used too.
    for (let i = 0; i < n / 2; i++) a.t.send([msg(1, 2, i)]);
    a.t.send(range(n / 2).map((i) => msg(1, 2, n / 2 + i)));
    b.t.send(
      range(100).map((i) =>
        msg(2, 1, i, { type: "app_resp", entries: [], reject: i % 2 === 1, rejectHint: i }),
      ),
    );
    await until(() => b.got.length === n && a.got.length === 100, "all messages");
    expect(b.got.map((m) => m.index)).toEqual(range(n));
    expect(b.got[7]).toStrictEqual(msg(1, 2, 7));
    expect(a.got.map((m) => m.rejectHint)).toEqual(range(100));
    expect(a.got[3].reject).toBe(true);
    expect(a.unreachable).toEqual([]);
    expect(b.unreachable).toEqual([]);
  });

  it("takes a stream's messages only from the sender its authorization allows", async () => {
    // Node 3 may speak only as itself; the check sees each message's `from`.
    const a = await node(1, new Map(), {
      authorize: () => ({ sender: (from) => (from === 3 ? undefined : `not member ${from}`) }),
    });
    const honest = await node(3, new Map([[1, addr(a)]]));
    honest.t.send([msg(3, 1, 0)]);
    await until(() => a.got.length === 1, "the honest message");
    // A peer whose messages claim another member's id: refused, the stream ended, nothing taken.
    const forger = await node(2, new Map([[1, addr(a)]]));
    forger.t.send([msg(2, 1, 0), msg(2, 1, 1)]);
    await until(() => forger.unreachable.length > 0, "the refusal reported to the forger");
    expect(a.got.map((m) => m.from)).toEqual([3]);
    expect(a.warnings.filter((w) => w.includes("refused a peer"))).toHaveLength(1);
  });

  it("refuses a stream its authorization refuses outright", async () => {
    const a = await node(1, new Map(), { authorize: () => ({ refuse: "not a manager" }) });
    const b = await node(2, new Map([[1, addr(a)]]));
    b.t.send([msg(2, 1, 0)]);
    await until(() => b.unreachable.length > 0, "the refusal");
    expect(a.got).toEqual([]);
  });

  it("keeps each sender's order among three nodes sending to each other at once", async () => {
    const nodes = new Map<NodeId, Node>();
    for (const id of [1, 2, 3]) nodes.set(id, await node(id));
    mesh(nodes);
    const per = 300;
    for (let i = 0; i < per; i++) {
      for (const [id, n] of nodes) {
        n.t.send([...nodes.keys()].filter((o) => o !== id).map((o) => msg(id, o, i)));
      }
    }
    await until(() => [...nodes.values()].every((n) => n.got.length === 2 * per), "all messages");
    for (const [id, n] of nodes) {
      for (const other of nodes.keys()) {
        if (other === id) continue;
        expect(indexesFrom(n, other)).toEqual(range(per));
      }
      expect(n.got.every((m) => m.to === id)).toBe(true);
    }
  });

  it("sends a 5 MiB snapshot in chunks on its own stream, whole, and reports success", async () => {
    const a = await node(1);
    const b = await node(2);
    a.t.addPeer(2, addr(b));
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const snap: Message = {
      ...msg(1, 2, 0, { type: "snap", entries: [], term: 4 }),
      snapshot: { metadata: { index: 900, term: 3, confState: { voters: [1, 2, 3], learners: [4] } }, data },
    };
    // Ordinary messages around it keep flowing on the message stream.
    a.t.send([msg(1, 2, 1), snap, msg(1, 2, 2)]);
    await until(() => a.snapStatus.length === 1 && b.got.length === 3, "snapshot and messages");
    expect(a.snapStatus).toEqual([{ id: 2, ok: true }]);
    const got = b.got.find((m) => m.type === "snap");
    expect(got?.snapshot?.metadata).toEqual({
      index: 900,
      term: 3,
      confState: { voters: [1, 2, 3], learners: [4] },
    });
    expect(got?.term).toBe(4);
    expect(Buffer.compare(Buffer.from(got?.snapshot?.data ?? new Uint8Array(0)), data)).toBe(0);
    expect(indexesFrom(b, 1).filter((i) => i !== 0)).toEqual([1, 2]);
    expect(a.unreachable).toEqual([]);
  });

  it("puts the snap message and total size in the first chunk and data at increasing offsets", async () => {
    const chunks: pb.SnapshotChunk[] = [];
    const server = new grpc.Server();
    servers.push(server);
    server.addService(pb.RaftService, {
      send: (call: grpc.ServerReadableStream<pb.RaftMessage, pb.SendAck>) => call.on("error", () => {}),
      sendSnapshot: (
        call: grpc.ServerReadableStream<pb.SnapshotChunk, pb.SnapshotAck>,
        cb: grpc.sendUnaryData<pb.SnapshotAck>,
      ) => {
        let bytes = 0;
        call.on("data", (c: pb.SnapshotChunk) => {
          chunks.push(c);
          bytes += c.data.length;
        });
        call.on("end", () => cb(null, { receivedBytes: bytes }));
      },
    } satisfies pb.RaftServer);
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? rej(e) : res(p),
      ),
    );
    const a = await node(1, new Map([[2, `127.0.0.1:${port}`]]));
    const data = randomBytes(5 * 1024 * 1024);
    a.t.send([
      {
        ...msg(1, 2, 0, { type: "snap", entries: [] }),
        snapshot: { metadata: { index: 5, term: 2, confState: { voters: [1, 2], learners: [] } }, data },
      },
    ]);
    await until(() => a.snapStatus.length === 1, "snapshot status");
    expect(a.snapStatus).toEqual([{ id: 2, ok: true }]);
    expect(chunks.length).toBe(5);
    expect(chunks[0].message?.snapshot?.metadata?.index).toBe(5);
    expect(chunks[0].message?.snapshot?.data.length).toBe(0);
    expect(chunks[0].totalSize).toBe(data.length);
    expect(chunks.slice(1).every((c) => c.message === undefined)).toBe(true);
    expect(chunks.map((c) => c.offset)).toEqual(range(5).map((i) => i * 1024 * 1024));
    expect(chunks.every((c) => c.data.length === 1024 * 1024)).toBe(true);
  });

  it("sends an empty snapshot as a single chunk", async () => {
    const a = await node(1);
    const b = await node(2);
    a.t.addPeer(2, addr(b));
    a.t.send([
      {
        ...msg(1, 2, 0, { type: "snap", entries: [] }),
        snapshot: {
          metadata: { index: 1, term: 1, confState: { voters: [1], learners: [] } },
          data: new Uint8Array(0),
        },
      },
    ]);
    await until(() => b.got.length === 1 && a.snapStatus.length === 1, "empty snapshot");
    expect(b.got[0].snapshot?.data.byteLength).toBe(0);
    expect(a.snapStatus).toEqual([{ id: 2, ok: true }]);
  });

  it("reports a snapshot to a peer that is down as failed and the peer unreachable", async () => {
    const a = await node(1, new Map([[2, `127.0.0.1:${await freePort()}`]]));
    a.t.send([
      {
        ...msg(1, 2, 0, { type: "snap", entries: [] }),
        snapshot: {
          metadata: { index: 1, term: 1, confState: { voters: [1, 2], learners: [] } },
          data: randomBytes(1000),
        },
      },
    ]);
    await until(() => a.snapStatus.length === 1, "snapshot status");
    expect(a.snapStatus).toEqual([{ id: 2, ok: false }]);
    expect(a.unreachable).toContain(2);
  });

  it("drops messages to a peer that is down and reports it, then delivers once it is up", async () => {
    const port = await freePort();
    const a = await node(1, new Map([[2, `127.0.0.1:${port}`]]), { backoff: { initialMs: 20, maxMs: 100 } });
    let next = 0;
    const sendOne = (): void => a.t.send([msg(1, 2, next++)]);
    for (let i = 0; i < 20; i++) sendOne();
    await until(() => a.unreachable.includes(2), "unreachable report");
    expect(a.warnings.length).toBeGreaterThan(0);

    const b = await node(2, new Map([[1, addr(a)]]), { port });
    // A Raft leader keeps sending (heartbeats); delivery resumes within a backoff period.
    await until(() => {
      sendOne();
      return b.got.length >= 5;
    }, "delivery after the peer came up");
    const seen = indexesFrom(b, 1);
    // What arrives is a suffix of what was sent, in order; what was sent while it was down is gone.
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(seen[0]).toBeGreaterThanOrEqual(20);
  });

  it("notices a peer restarting and resumes delivery to the new process", async () => {
    const a = await node(1, new Map(), { backoff: { initialMs: 20, maxMs: 100 } });
    let b = await node(2);
    const port = b.t.port;
    a.t.addPeer(2, `127.0.0.1:${port}`);
    a.t.send(range(10).map((i) => msg(1, 2, i)));
    await until(() => b.got.length === 10, "first batch");

    await b.t.stop();
    a.unreachable.length = 0;
    let next = 10;
    await until(() => {
      a.t.send([msg(1, 2, next++)]);
      return a.unreachable.includes(2);
    }, "unreachable after the peer stopped");

    b = await node(2, new Map(), { port });
    await until(() => {
      a.t.send([msg(1, 2, next++)]);
      return b.got.length >= 3;
    }, "delivery to the restarted peer");
    const seen = indexesFrom(b, 1);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
  });

  it("bounds the queue of a peer that does not answer: drops and reports, never blocks or throws", async () => {
    // A server that accepts the stream but never answers, as a hung (SIGSTOPped) process would.
    const server = new grpc.Server();
    servers.push(server);
    server.addService(pb.RaftService, {
      send: (call: grpc.ServerReadableStream<pb.RaftMessage, pb.SendAck>) => call.on("error", () => {}),
      sendSnapshot: (call: grpc.ServerReadableStream<pb.SnapshotChunk, pb.SnapshotAck>) =>
        call.on("error", () => {}),
    } satisfies pb.RaftServer);
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? rej(e) : res(p),
      ),
    );
    const a = await node(1, new Map([[2, `127.0.0.1:${port}`]]), { queueSize: 8, connectTimeoutMs: 200 });
    const started = Date.now();
    a.t.send(range(100).map((i) => msg(1, 2, i)));
    expect(Date.now() - started).toBeLessThan(1000);
    // Reported later, not from inside send(), and coalesced per peer.
    expect(a.unreachable).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(a.unreachable).toEqual([2]);
    // The stuck stream is given up after the connect timeout.
    await until(() => a.warnings.some((w) => w.includes("lost")), "stream given up");
  });

  it("never throws from send(): unknown peers, itself, after removePeer and after stop", async () => {
    const a = await node(1);
    const b = await node(2);
    a.t.addPeer(2, addr(b));
    expect(() => a.t.send([msg(1, 9, 0), msg(1, 1, 0)])).not.toThrow();
    expect(a.warnings.filter((w) => w.includes("unknown peer")).length).toBe(2);
    a.t.send([msg(1, 2, 0)]);
    await until(() => b.got.length === 1, "delivery");
    a.t.removePeer(2);
    expect(() => a.t.send([msg(1, 2, 1)])).not.toThrow();
    expect(() => a.t.addPeer(1, "127.0.0.1:1")).toThrow(RangeError);
    await a.t.stop();
    expect(() => a.t.send([msg(1, 2, 2)])).not.toThrow();
    await a.t.stop();
  });

  it("drops a message it cannot encode without breaking the stream for the others", async () => {
    const a = await node(1);
    const b = await node(2);
    a.t.addPeer(2, addr(b));
    a.t.send([msg(1, 2, 0), msg(1, 2, 1, { term: -1 }), msg(1, 2, 2)]);
    await until(() => b.got.length === 2, "the good messages");
    a.t.send([msg(1, 2, 3)]);
    await until(() => b.got.length === 3, "a later message");
    expect(b.got.map((m) => m.index)).toEqual([0, 2, 3]);
    expect(a.unreachable).toEqual([]);
    expect(a.warnings.some((w) => w.includes("cannot encode"))).toBe(true);
  });

  it("moves a peer to a new address with addPeer", async () => {
    const a = await node(1);
    const b1 = await node(2);
    const b2 = await node(2);
    a.t.addPeer(2, addr(b1));
    a.t.send([msg(1, 2, 0)]);
    await until(() => b1.got.length === 1, "delivery to the first address");
    a.t.addPeer(2, addr(b2));
    a.t.send([msg(1, 2, 1)]);
    await until(() => b2.got.length === 1, "delivery to the second address");
    expect(b2.got[0].index).toBe(1);
  });

  it("drops a message addressed to another node id, and one it cannot decode", async () => {
    const a = await node(1);
    const b = await node(2);
    // b's address registered under id 3: the message says to=3 and b must not take it.
    a.t.addPeer(3, addr(b));
    a.t.addPeer(2, addr(b));
    a.t.send([msg(1, 3, 0)]);
    a.t.send([msg(1, 2, 1)]);
    await until(() => b.got.length === 1, "delivery");
    expect(b.got[0].index).toBe(1);
    expect(b.warnings.some((w) => w.includes("another node"))).toBe(true);
  });

  it("stop() closes the listener and every connection and stops all callbacks", async () => {
    const tcpHandles = (): number =>
      process.getActiveResourcesInfo().filter((r) => r === "TCPServerWrap" || r === "TCPSocketWrap").length;
    const before = tcpHandles();
    const nodes = new Map<NodeId, Node>();
    for (const id of [1, 2, 3]) nodes.set(id, await node(id));
    mesh(nodes);
    for (const [id, n] of nodes)
      n.t.send([...nodes.keys()].filter((o) => o !== id).map((o) => msg(id, o, 0)));
    await until(() => [...nodes.values()].every((n) => n.got.length === 2), "delivery");
    expect(tcpHandles()).toBeGreaterThan(before);
    const counts = [...nodes.values()].map((n) => n.got.length + n.unreachable.length);
    await Promise.all([...nodes.values()].map((n) => n.t.stop()));
    await until(() => tcpHandles() <= before, "sockets closed", 5000);
    await new Promise((r) => setTimeout(r, 100));
    expect([...nodes.values()].map((n) => n.got.length + n.unreachable.length)).toEqual(counts);
  });
});
