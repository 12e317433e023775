// The Raft transport between managers over gRPC, in the manner of etcd's rafthttp: one long-lived
// client stream per peer carries messages in order, snapshots go on a stream of their own, and a
// peer that cannot keep up or cannot be reached loses messages rather than slowing the sender.
// Raft tolerates loss, duplication and reordering; it does not tolerate a driver that blocks.
import { constants as bufferConstants } from "node:buffer";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import * as grpc from "@grpc/grpc-js";
import * as pb from "../../../proto/gen/raft.js";
import type { Message, NodeId } from "../core/types.js";
import { messageFromProto, messageToProto } from "./convert.js";

/** pino's Logger fits; so does console. */
export interface TransportLogger {
  warn(obj: object, msg: string): void;
}

export interface GrpcTransportOptions {
  id: NodeId;
  /** host:port to listen on; port 0 picks a free one (see `port` after start()). */
  listen: string;
  /**
   * A server owned by someone else (shoald's one node port): the Raft service is added to it
   * and start()/stop() neither bind nor shut it down. `listen` is then only informative.
   */
  sharedServer?: grpc.Server;
  /**
   * Who may send: given the incoming stream, a reason to refuse it, or the check each message's
   * sender must pass (a reason to refuse, or undefined). Default: anyone, any sender.
   */
  authorize?: (call: grpc.ServerReadableStream<unknown, unknown>) => SenderCheck;
  /** Every other member: id → host:port. */
  peers: Map<NodeId, string>;
  /** Mutual TLS in production; insecure when absent (tests on loopback). */
  credentials?: { server: grpc.ServerCredentials; client: grpc.ChannelCredentials };
  /** Extra options for the channels to peers (the TLS name to expect, for instance). */
  channelOptions?: grpc.ChannelOptions;
  /** A message for this node. Called from I/O callbacks, never from inside send(). */
  onMessage: (m: Message) => void;
  /** A message to `id` was dropped or its stream broke: the core should probe that peer. */
  onUnreachable?: (id: NodeId) => void;
  /** Whether a snapshot reached `id` (it was received whole, not necessarily applied). */
  onSnapshotStatus?: (id: NodeId, ok: boolean) => void;
  log?: TransportLogger;
  /** Messages waiting per peer before new ones are dropped. Default 4096 (etcd's stream buffer). */
  queueSize?: number;
  /** Snapshot chunk size in bytes. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /** Largest message accepted from a peer, in bytes; -1 = no limit. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
  /** Reconnect backoff after a stream breaks, doubling from initial to max. Default 50 ms → 1 s. */
  backoff?: { initialMs: number; maxMs: number };
  /** A peer must accept a new stream within this time or it counts as down. Default 3 s. */
  connectTimeoutMs?: number;
  /** HTTP/2 keepalive, so a peer that vanished without closing its connection is noticed. */
  keepalive?: { timeMs: number; timeoutMs: number };
}

const DEFAULTS = {
  queueSize: 4096,
  snapshotChunkBytes: 1024 * 1024,
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  backoff: { initialMs: 50, maxMs: 1000 },
  connectTimeoutMs: 3000,
  keepalive: { timeMs: 10_000, timeoutMs: 5_000 },
};

type Settings = typeof DEFAULTS;

/** A stream refused outright, or the check every message's `from` on it must pass. */
export type SenderCheck = { refuse: string } | { sender: (from: NodeId) => string | undefined };

/** A refused sender is logged once per this interval (a misconfigured peer retries all the time). */
const REFUSAL_LOG_MS = 30_000;

const silentLog: TransportLogger = { warn: () => {} };

export class GrpcTransport {
  private readonly id: NodeId;
  private readonly listen: string;
  private readonly credentials: { server: grpc.ServerCredentials; client: grpc.ChannelCredentials };
  private readonly settings: Settings;
  private readonly log: TransportLogger;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly unknownWarned = new Set<NodeId>();
  private readonly refusalLogged = new Map<string, number>();
  private server: grpc.Server | null = null;
  private boundPort = 0;
  private stopped = false;
  private readonly pendingUnreachable = new Set<NodeId>();
  private unreachableFlushQueued = false;

  constructor(private readonly opts: GrpcTransportOptions) {
    this.id = opts.id;
    this.listen = opts.listen;
    this.credentials = opts.credentials ?? {
      server: grpc.ServerCredentials.createInsecure(),
      client: grpc.credentials.createInsecure(),
    };
    this.settings = {
      queueSize: opts.queueSize ?? DEFAULTS.queueSize,
      snapshotChunkBytes: opts.snapshotChunkBytes ?? DEFAULTS.snapshotChunkBytes,
      maxReceiveMessageBytes: opts.maxReceiveMessageBytes ?? DEFAULTS.maxReceiveMessageBytes,
      backoff: opts.backoff ?? DEFAULTS.backoff,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      keepalive: opts.keepalive ?? DEFAULTS.keepalive,
    };
    if (this.settings.queueSize < 1) throw new RangeError("queueSize must be at least 1");
    if (this.settings.snapshotChunkBytes < 1) throw new RangeError("snapshotChunkBytes must be at least 1");
    this.log = opts.log ?? silentLog;
    for (const [id, addr] of opts.peers) this.addPeer(id, addr);
  }

  /** The port the server listens on (useful with port 0). Valid after start(). */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    if (this.stopped) throw new Error("raft transport: start() after stop()");
    if (this.server) throw new Error("raft transport: already started");
    const impl: pb.RaftServer = {
      send: (call, callback) => this.serveSend(call, callback),
      sendSnapshot: (call, callback) => this.serveSnapshot(call, callback),
    };
    if (this.opts.sharedServer) {
      this.opts.sharedServer.addService(pb.RaftService, impl);
      return;
    }
    const server = new grpc.Server({
      "grpc.max_receive_message_length": this.settings.maxReceiveMessageBytes,
      "grpc.keepalive_time_ms": this.settings.keepalive.timeMs,
      "grpc.keepalive_timeout_ms": this.settings.keepalive.timeoutMs,
    });
    server.addService(pb.RaftService, impl);
    this.server = server;
    this.boundPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(this.listen, this.credentials.server, (err, port) =>
        err ? reject(err) : resolve(port),
      );
    }).catch((err: unknown) => {
      this.server = null;
      server.forceShutdown();
      throw err;
    });
  }

  /**
   * Queues each message for its peer and returns at once. Never throws: a message for an unknown
   * peer is dropped with a warning; one that does not fit its peer's queue is dropped and the
   * peer reported unreachable (later, never from inside this call).
   */
  send(messages: Message[]): void {
    if (this.stopped) return;
    for (const m of messages) {
      const peer = this.peers.get(m.to);
      if (!peer) {
        if (!this.unknownWarned.has(m.to)) {
          this.unknownWarned.add(m.to);
          this.log.warn({ to: m.to, type: m.type }, "raft transport: dropping messages for an unknown peer");
        }
        if (m.snapshot) this.deferSnapshotStatus(m.to, false);
        continue;
      }
      try {
        peer.send(m);
      } catch (err) {
        // Only a bug could get here; the caller is the Raft loop and must not be taken down by it.
        this.log.warn({ to: m.to, err: String(err) }, "raft transport: send failed");
        this.reportUnreachable(m.to);
      }
    }
  }

  /** Adds a peer, or moves it to a new address (its streams restart). */
  addPeer(id: NodeId, addr: string): void {
    if (this.stopped) return;
    if (id === this.id) throw new RangeError(`raft transport: node ${id} cannot be its own peer`);
    const existing = this.peers.get(id);
    if (existing) {
      if (existing.addr === addr) return;
      existing.close();
    }
    this.unknownWarned.delete(id);
    this.peers.set(id, new Peer(this, id, addr));
  }

  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    peer.close();
    this.peers.delete(id);
  }

  /** Closes every stream, connection, timer and the server. Callbacks stop at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    // A shared server lives on; only our service leaves it (a demoted manager's node keeps serving).
    if (this.opts.sharedServer) this.opts.sharedServer.removeService(pb.RaftService);
    const server = this.server;
    this.server = null;
    if (!server) return;
    // tryShutdown's callback tells when the listener and every connection are closed; the forced
    // shutdown right after makes that soon, since peers' streams into us never end on their own.
    const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    server.forceShutdown();
    await closed;
  }

  // ---- used by Peer ----

  /** @internal */
  get config(): Settings {
    return this.settings;
  }

  /** @internal */
  get extraChannelOptions(): grpc.ChannelOptions {
    return this.opts.channelOptions ?? {};
  }

  /** @internal */
  get channelCredentials(): grpc.ChannelCredentials {
    return this.credentials.client;
  }

  /** @internal */
  get logger(): TransportLogger {
    return this.log;
  }

  /**
   * Reports are coalesced and delivered from a microtask, so the Raft loop is never re-entered
   * from inside send() and a burst of drops becomes one report per peer.
   * @internal
   */
  reportUnreachable(id: NodeId): void {
    if (this.stopped || !this.opts.onUnreachable) return;
    this.pendingUnreachable.add(id);
    if (this.unreachableFlushQueued) return;
    this.unreachableFlushQueued = true;
    queueMicrotask(() => {
      this.unreachableFlushQueued = false;
      const ids = [...this.pendingUnreachable];
      this.pendingUnreachable.clear();
      for (const peerId of ids) {
        if (this.stopped) return;
        this.safely("onUnreachable", () => this.opts.onUnreachable?.(peerId));
      }
    });
  }

  /** @internal */
  deferSnapshotStatus(id: NodeId, ok: boolean): void {
    if (this.stopped || !this.opts.onSnapshotStatus) return;
    queueMicrotask(() => {
      if (this.stopped) return;
      this.safely("onSnapshotStatus", () => this.opts.onSnapshotStatus?.(id, ok));
    });
  }

  // ---- server side ----

  /** The stream's sender check, or undefined once the stream was refused (answered here). */
  private admitted(
    call: grpc.ServerReadableStream<unknown, unknown>,
    callback: (err: grpc.ServiceError | Partial<grpc.StatusObject> | null) => void,
  ): ((from: NodeId) => string | undefined) | undefined {
    const check = this.opts.authorize?.(call) ?? { sender: () => undefined };
    if ("sender" in check) return check.sender;
    this.refuse(call, callback, check.refuse);
    return undefined;
  }

  /** Ends a stream with PERMISSION_DENIED; logged once per interval per peer and reason. */
  private refuse(
    call: grpc.ServerReadableStream<unknown, unknown>,
    callback: (err: grpc.ServiceError | Partial<grpc.StatusObject> | null) => void,
    reason: string,
  ): void {
    const peer = call.getPeer().replace(/:\d+$/, "");
    const key = `${peer} ${reason}`;
    const now = Date.now();
    const last = this.refusalLogged.get(key);
    if (last === undefined || now - last >= REFUSAL_LOG_MS) {
      if (this.refusalLogged.size > 1000) this.refusalLogged.clear();
      this.refusalLogged.set(key, now);
      this.log.warn({ peer, reason }, "raft transport: refused a peer");
    }
    call.on("error", () => {});
    callback({ code: grpc.status.PERMISSION_DENIED, details: reason });
  }

  private serveSend(
    call: grpc.ServerReadableStream<pb.RaftMessage, pb.SendAck>,
    callback: grpc.sendUnaryData<pb.SendAck>,
  ): void {
    const sender = this.admitted(call, callback);
    if (!sender) return;
    // Headers at once tell the sender its stream is up (see Peer.connect).
    call.sendMetadata(new grpc.Metadata());
    let received = 0;
    let refused = false;
    call.on("data", (msg: pb.RaftMessage) => {
      if (refused) return;
      const reason = sender(msg.from);
      if (reason !== undefined) {
        refused = true;
        this.refuse(call, callback, reason);
        return;
      }
      received++;
      this.deliver(msg, "message stream");
    });
    call.on("end", () => {
      if (!refused) callback(null, { received });
    });
    // A sender that goes away cancels the call; there is nothing to answer.
    call.on("error", () => {});
  }

  private serveSnapshot(
    call: grpc.ServerReadableStream<pb.SnapshotChunk, pb.SnapshotAck>,
    callback: grpc.sendUnaryData<pb.SnapshotAck>,
  ): void {
    const sender = this.admitted(call, callback);
    if (!sender) return;
    let head: pb.RaftMessage | undefined;
    let data: Buffer | undefined;
    let total = 0;
    let received = 0;
    let done = false;
    const fail = (details: string): void => {
      if (done) return;
      done = true;
      this.log.warn({ from: head?.from, details }, "raft transport: refused a snapshot");
      callback({ code: grpc.status.INVALID_ARGUMENT, details });
    };
    call.on("data", (chunk: pb.SnapshotChunk) => {
      if (done) return;
      if (head === undefined) {
        if (!chunk.message?.snapshot) return fail("the first snapshot chunk carries no snap message");
        const reason = sender(chunk.message.from);
        if (reason !== undefined) {
          done = true;
          this.refuse(call, callback, reason);
          return;
        }
        head = chunk.message;
        total = chunk.totalSize;
        if (total > bufferConstants.MAX_LENGTH) return fail(`snapshot of ${total} bytes is too large`);
        data = Buffer.allocUnsafe(total);
      } else if (chunk.message !== undefined) {
        return fail("a snapshot chunk after the first carries a message");
      }
      if (chunk.offset !== received) return fail(`snapshot chunk at ${chunk.offset}, expected ${received}`);
      if (received + chunk.data.length > total)
        return fail(`snapshot data exceeds its size of ${total} bytes`);
      chunk.data.copy(data as Buffer, received);
      received += chunk.data.length;
    });
    call.on("end", () => {
      if (done) return;
      if (head?.snapshot === undefined || data === undefined) return fail("empty snapshot stream");
      if (received !== total) return fail(`snapshot stream ended at ${received} of ${total} bytes`);
      done = true;
      head.snapshot.data = data;
      this.deliver(head, "snapshot stream");
      callback(null, { receivedBytes: received });
    });
    call.on("error", () => {
      done = true;
    });
  }

  private deliver(msg: pb.RaftMessage, via: string): void {
    if (this.stopped) return;
    let m: Message;
    try {
      m = messageFromProto(msg);
    } catch (err) {
      this.log.warn(
        { from: msg.from, via, err: String(err) },
        "raft transport: dropping a message it cannot read",
      );
      return;
    }
    if (m.to !== this.id) {
      // A peer that has this address under another id: delivering would corrupt the core's view.
      this.log.warn(
        { from: m.from, to: m.to, self: this.id },
        "raft transport: dropping a message for another node",
      );
      return;
    }
    this.safely("onMessage", () => this.opts.onMessage(m));
  }

  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.warn({ err: String(err) }, `raft transport: ${what} threw`);
    }
  }
}

// The generated serializer encodes each message into a fresh writer that grows by doubling (and
// then copies the result once more). One writer kept across messages has long grown to the size
// of an append, and finish() already hands back a copy, so the Buffer can wrap it as it is.
let messageWriter = new BinaryWriter();

function serializeMessage(value: pb.RaftMessage): Buffer {
  try {
    const bytes = pb.RaftMessage.encode(value, messageWriter).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (err) {
    messageWriter = new BinaryWriter(); // its state is unknown after a failed encode
    throw err;
  }
}

const RaftClient = grpc.makeGenericClientConstructor(
  { ...pb.RaftService, send: { ...pb.RaftService.send, requestSerialize: serializeMessage } },
  "shoal.raft.v1.Raft",
) as unknown as typeof pb.RaftClient;

type PipeState = "idle" | "connecting" | "open" | "backoff";

/** One peer: its client channel, its message pipe with a bounded queue, and its snapshot sends. */
class Peer {
  private readonly client: pb.RaftClient;
  private state: PipeState = "idle";
  private queue: Message[] = [];
  private stream: grpc.ClientWritableStream<pb.RaftMessage> | null = null;
  private waitingDrain = false;
  private backoffMs: number;
  private timer: NodeJS.Timeout | null = null;
  private failing = false;
  private readonly snapshotCalls = new Set<grpc.ClientWritableStream<pb.SnapshotChunk>>();
  private closed = false;

  constructor(
    private readonly transport: GrpcTransport,
    readonly id: NodeId,
    readonly addr: string,
  ) {
    const cfg = transport.config;
    this.backoffMs = cfg.backoff.initialMs;
    this.client = new RaftClient(addr, transport.channelCredentials, {
      ...transport.extraChannelOptions,
      // Our own backoff decides when to retry; grpc-js's default (1 s growing to 2 min) would keep
      // a restarted peer cut off long after it came back.
      "grpc.initial_reconnect_backoff_ms": cfg.backoff.initialMs,
      "grpc.max_reconnect_backoff_ms": cfg.backoff.maxMs,
      "grpc.keepalive_time_ms": cfg.keepalive.timeMs,
      "grpc.keepalive_timeout_ms": cfg.keepalive.timeoutMs,
      "grpc.keepalive_permit_without_calls": 1,
      // Retries would buffer and replay a stream's messages behind our back.
      "grpc.enable_retries": 0,
      // Two transports in one process (tests, the simulator's real-network mode) must not share a connection.
      "grpc.use_local_subchannel_pool": 1,
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
    });
  }

  send(m: Message): void {
    if (this.closed) return;
    if (m.snapshot) {
      this.sendSnapshot(m);
      return;
    }
    // Messages held through a backoff would be stale when delivered; the core resends what matters.
    if (this.state === "backoff" || this.queue.length >= this.transport.config.queueSize) {
      this.transport.reportUnreachable(this.id);
      return;
    }
    this.queue.push(m);
    if (this.state === "idle") this.connect();
    else if (this.state === "open") this.pump();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.queue = [];
    const stream = this.stream;
    this.stream = null;
    stream?.cancel();
    for (const call of this.snapshotCalls) call.cancel();
    this.snapshotCalls.clear();
    this.client.close();
  }

  private connect(): void {
    this.state = "connecting";
    const call = this.client.send((err) => this.onStreamEnd(call, err));
    this.stream = call;
    call.on("error", () => {}); // the status reaches the callback above
    call.on("metadata", () => {
      if (this.stream !== call || this.closed) return;
      this.clearTimer();
      this.state = "open";
      this.failing = false;
      this.backoffMs = this.transport.config.backoff.initialMs;
      this.pump();
    });
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stream === call && this.state === "connecting") call.cancel();
    }, this.transport.config.connectTimeoutMs);
    this.timer.unref();
  }

  private pump(): void {
    const call = this.stream;
    if (!call) return;
    while (this.state === "open" && this.stream === call && !this.waitingDrain && this.queue.length > 0) {
      const m = this.queue.shift() as Message;
      let wire: pb.RaftMessage;
      try {
        wire = messageToProto(m);
      } catch (err) {
        this.transport.logger.warn(
          { to: this.id, err: String(err) },
          "raft transport: cannot encode a message",
        );
        continue;
      }
      if (!call.write(wire)) {
        this.waitingDrain = true;
        call.once("drain", () => {
          if (this.stream !== call) return;
          this.waitingDrain = false;
          this.pump();
        });
      }
    }
  }

  private onStreamEnd(call: grpc.ClientWritableStream<pb.RaftMessage>, err: grpc.ServiceError | null): void {
    if (this.stream !== call || this.closed) return;
    this.stream = null;
    this.waitingDrain = false;
    this.clearTimer();
    if (!this.failing) {
      this.failing = true;
      this.transport.logger.warn(
        { peer: this.id, addr: this.addr, err: err ? err.details || err.message : "stream closed by peer" },
        "raft transport: message stream to peer lost; reconnecting",
      );
    }
    this.queue = [];
    this.transport.reportUnreachable(this.id);
    this.state = "backoff";
    const base = this.backoffMs;
    this.backoffMs = Math.min(base * 2, this.transport.config.backoff.maxMs);
    // Jitter keeps the members of a restarted cluster from reconnecting in lockstep.
    const delay = base * (0.8 + 0.4 * Math.random());
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed) return;
      this.state = "idle";
    }, delay);
    this.timer.unref();
  }

  private sendSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    if (!snapshot) return;
    const chunkBytes = this.transport.config.snapshotChunkBytes;
    const data = snapshot.data;
    const total = data.byteLength;
    const head = messageToProto({ ...m, snapshot: { metadata: snapshot.metadata, data: new Uint8Array(0) } });
    let settled = false;
    const call = this.client.sendSnapshot((err, ack) => {
      this.snapshotCalls.delete(call);
      if (settled || this.closed) return;
      settled = true;
      const ok = err === null && ack.receivedBytes === total;
      if (!ok) {
        this.transport.logger.warn(
          {
            peer: this.id,
            index: snapshot.metadata.index,
            err: err ? err.details || err.message : "short ack",
          },
          "raft transport: snapshot send failed",
        );
        this.transport.reportUnreachable(this.id);
      }
      this.transport.deferSnapshotStatus(this.id, ok);
    });
    this.snapshotCalls.add(call);
    call.on("error", () => {});
    let offset = 0;
    let first = true;
    const writeMore = (): void => {
      while (!this.closed && !settled && (first || offset < total)) {
        const len = Math.min(chunkBytes, total - offset);
        const chunk: pb.SnapshotChunk = {
          totalSize: first ? total : 0,
          offset,
          data: Buffer.from(data.buffer, data.byteOffset + offset, len),
        };
        if (first) chunk.message = head;
        first = false;
        offset += len;
        if (!call.write(chunk)) {
          call.once("drain", writeMore);
          return;
        }
      }
      if (!this.closed && !settled) call.end();
    };
    writeMore();
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
