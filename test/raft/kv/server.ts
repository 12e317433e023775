// A replicated key-value server: one Raft member as its own process, used by the real-process
// tests and the benchmark. It wires RaftNode to the on-disk WAL (NodeDisk), the gRPC transport
// and a timer, and serves a tiny HTTP API for clients on loopback:
//   POST /kv     {client, seq, op: "put"|"cas"|"get", key, value?, expected?} → {ok, value}
//   GET  /status → this member's raft status
//   GET  /admin/digest → {applied, digest}: sha256 of the state machine's snapshot (tests compare
//        members with it once they have applied the same index)
//   POST /admin/add-member {id, raftAddr, clientAddr?} → adds a member: learner, then voter once
//        caught up (answers when it is a voter)
//   POST /admin/remove-member {id} → removes a member
//   POST /admin/transfer {to} → asks the leader to hand leadership to `to` (202: asked, not done)
// The admin POSTs answer 421 with the leader when this member is not the leader. A conf change
// carries the member's addresses in its context (JSON {raftAddr, clientAddr}), so every member's
// transport learns a new peer when the change is applied (and drops a removed one).
// A member that is not the leader answers 421 with the leader's id (and client address when
// known), so clients go to the leader directly instead of paying a forwarding hop.
//
// Usage: node dist/test/raft/kv/server.js --id N --peers 1=h:p,2=h:p,3=h:p --dir DIR
//        --client-port P [--bootstrap] [--tick-ms 100] [--election-ticks 10]
//        [--heartbeat-ticks 1] [--snapshot-entries N] [--catch-up-entries N] [--raft-listen h:p]
//        [--client-peers 1=h:p,...] [--propose-timeout-ms 3000]
// A member joining a running cluster starts without --bootstrap on an empty --dir; its --peers
// must name the existing members (it may name itself too), and it is then added through the
// leader's /admin/add-member.
// --raft-listen lets tests put a proxy between members: each member can be given its own view
// of the peers' addresses (proxies) while it listens on its real one.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { pino } from "pino";
import {
  GrpcTransport,
  NodeDisk,
  RaftNode,
  type ConfChange,
  type NodeId,
} from "../../../manager/raft/index.js";
import { encodeKvCommand, type KvOp, type KvResult } from "./commands.js";
import { KvStateMachine } from "./state-machine.js";

interface ServerArgs {
  id: NodeId;
  peers: Map<NodeId, string>;
  dir: string;
  clientPort: number;
  bootstrap: boolean;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotEntries?: number;
  catchUpEntries?: number;
  raftListen: string;
  clientPeers: Map<NodeId, string>;
  proposeTimeoutMs: number;
}

function parseMap(flag: string, s: string): Map<NodeId, string> {
  const out = new Map<NodeId, string>();
  for (const part of s.split(",").filter((p) => p.length > 0)) {
    const eq = part.indexOf("=");
    const id = Number(part.slice(0, eq));
    if (eq < 1 || !Number.isInteger(id) || id <= 0) throw new Error(`${flag}: bad entry '${part}'`);
    out.set(id, part.slice(eq + 1));
  }
  return out;
}

function parseArgs(argv: string[]): ServerArgs {
  const flags = new Map<string, string>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument '${a}'`);
    if (a === "--bootstrap") switches.add(a);
    else {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      flags.set(a, v);
    }
  }
  const need = (f: string): string => {
    const v = flags.get(f);
    if (v === undefined) throw new Error(`${f} is required`);
    return v;
  };
  const int = (f: string, def?: number): number => {
    const v = flags.get(f);
    if (v === undefined) {
      if (def === undefined) throw new Error(`${f} is required`);
      return def;
    }
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${f}: not a positive integer: '${v}'`);
    return n;
  };
  const id = int("--id");
  const peers = parseMap("--peers", need("--peers"));
  const own = peers.get(id);
  const raftListen = flags.get("--raft-listen") ?? own;
  if (raftListen === undefined) throw new Error(`--peers has no entry for this member (${id})`);
  return {
    id,
    peers,
    dir: need("--dir"),
    clientPort: int("--client-port"),
    bootstrap: switches.has("--bootstrap"),
    tickMs: int("--tick-ms", 100),
    electionTicks: int("--election-ticks", 10),
    heartbeatTicks: int("--heartbeat-ticks", 1),
    snapshotEntries: flags.has("--snapshot-entries") ? int("--snapshot-entries") : undefined,
    catchUpEntries: flags.has("--catch-up-entries") ? int("--catch-up-entries") : undefined,
    raftListen,
    clientPeers: parseMap("--client-peers", flags.get("--client-peers") ?? ""),
    proposeTimeoutMs: int("--propose-timeout-ms", 3000),
  };
}

interface KvRequest {
  client: string;
  seq: number;
  op: "put" | "cas" | "get";
  key: string;
  value?: string;
  expected?: string | null;
}

function parseRequest(body: string): KvRequest {
  const r = JSON.parse(body) as Partial<KvRequest>;
  if (typeof r.client !== "string" || typeof r.seq !== "number" || typeof r.key !== "string") {
    throw new Error("client (string), seq (number) and key (string) are required");
  }
  if (r.op !== "put" && r.op !== "cas" && r.op !== "get") throw new Error("op must be put, cas or get");
  if (r.op !== "get" && typeof r.value !== "string") throw new Error(`${r.op} needs a string value`);
  return r as KvRequest;
}

/** The addresses a conf change carries in its context (JSON), so every member can reach a new one. */
interface MemberAddrs {
  raftAddr: string;
  clientAddr?: string;
}

function encodeAddrs(a: MemberAddrs): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(a));
}

function decodeAddrs(context: Uint8Array | undefined): MemberAddrs | undefined {
  if (!context || context.byteLength === 0) return undefined;
  try {
    const a = JSON.parse(new TextDecoder().decode(context)) as Partial<MemberAddrs>;
    if (typeof a.raftAddr !== "string") return undefined;
    return { raftAddr: a.raftAddr, clientAddr: typeof a.clientAddr === "string" ? a.clientAddr : undefined };
  } catch {
    return undefined;
  }
}

function positiveId(v: unknown, field: string): NodeId {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
    throw new Error(`${field} must be a positive integer`);
  return v;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const log = pino(
    { level: process.env.SHOAL_LOG_LEVEL ?? "info", base: { member: args.id } },
    pino.destination(2),
  );
  const sm = new KvStateMachine();
  const peers = new Map([...args.peers].filter(([id]) => id !== args.id));
  // The node is created after the transport (the transport's port must be bound first, so
  // peers can connect as soon as we vote); messages that arrive before it exists are dropped,
  // which raft tolerates like any loss.
  const ref: { node?: RaftNode } = {};
  // Every member applies every conf change (also when replaying its log at start-up), so each
  // one's transport learns the addresses carried in the change's context.
  const onConfChange = (cc: ConfChange): void => {
    if (cc.type === "remove_node") {
      args.clientPeers.delete(cc.nodeId);
      if (cc.nodeId !== args.id) transport.removePeer(cc.nodeId);
      log.info({ node: cc.nodeId }, "member removed");
      return;
    }
    const addrs = decodeAddrs(cc.context);
    if (!addrs) return;
    if (addrs.clientAddr !== undefined) args.clientPeers.set(cc.nodeId, addrs.clientAddr);
    if (cc.nodeId !== args.id) transport.addPeer(cc.nodeId, addrs.raftAddr);
    log.info({ node: cc.nodeId, type: cc.type, raft: addrs.raftAddr }, "member added");
  };
  const transport = new GrpcTransport({
    id: args.id,
    listen: args.raftListen,
    peers,
    onMessage: (m) => ref.node?.step(m),
    onUnreachable: (peer) => ref.node?.reportUnreachable(peer),
    onSnapshotStatus: (peer, ok) => {
      log.info({ peer, ok }, "snapshot sent to a peer that fell behind");
      ref.node?.reportSnapshot(peer, ok);
    },
    log,
  });
  await transport.start();
  const raft = await RaftNode.open({
    id: args.id,
    bootstrapPeers: args.bootstrap ? [...args.peers.keys()] : undefined,
    dir: args.dir,
    disk: new NodeDisk(),
    transport: { send: (messages) => transport.send(messages) },
    stateMachine: sm,
    rand: Math.random,
    electionTick: args.electionTicks,
    heartbeatTick: args.heartbeatTicks,
    snapshotEntries: args.snapshotEntries,
    catchUpEntries: args.catchUpEntries,
    onConfChange: (cc) => onConfChange(cc),
    logger: log,
  });
  ref.node = raft;

  let lastRole = "";
  let lastLead = -1;
  const ticker = setInterval(() => {
    raft.tick();
    const s = raft.status();
    if (s.role !== lastRole || s.lead !== lastLead) {
      lastRole = s.role;
      lastLead = s.lead;
      log.info({ role: s.role, lead: s.lead, term: s.term, commit: s.commit }, "raft role");
    }
  }, args.tickMs);

  const handleKv = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let r: KvRequest;
    try {
      r = parseRequest(await readBody(req));
    } catch (e) {
      reply(res, 400, { error: String(e) });
      return;
    }
    const s = raft.leadership();
    if (s.role !== "leader") {
      // Not proposed anywhere: the client may retry elsewhere without risk of a double apply.
      if (s.lead === 0) reply(res, 503, { error: "no leader", retry: true });
      else
        reply(res, 421, {
          error: "not the leader",
          leader: s.lead,
          leaderAddr: args.clientPeers.get(s.lead),
        });
      return;
    }
    try {
      if (r.op === "get") {
        await raft.readBarrier(args.proposeTimeoutMs);
        reply(res, 200, { ok: true, value: sm.read(r.key) });
        return;
      }
      const cmd: KvOp =
        r.op === "put"
          ? { op: "put", key: r.key, value: r.value as string }
          : { op: "cas", key: r.key, expected: r.expected ?? null, value: r.value as string };
      const result = (await raft.propose(
        encodeKvCommand({ client: r.client, seq: r.seq, cmd }),
        args.proposeTimeoutMs,
      )) as KvResult | undefined;
      // undefined: the session had already moved past this seq; its outcome is not known here.
      if (result === undefined) reply(res, 409, { error: "stale sequence number", unknown: true });
      else reply(res, 200, { ok: result.ok, value: result.value });
    } catch (e) {
      // The command may still commit later (or may have been dropped): the outcome is unknown.
      reply(res, 503, { error: String(e), unknown: true });
    }
  };

  /** Admin requests run on the leader only; elsewhere they are redirected like /kv. */
  const notLeader = (res: ServerResponse): boolean => {
    const s = raft.leadership();
    if (s.role === "leader") return false;
    if (s.lead === 0) reply(res, 503, { error: "no leader", retry: true });
    else
      reply(res, 421, { error: "not the leader", leader: s.lead, leaderAddr: args.clientPeers.get(s.lead) });
    return true;
  };

  const handleAdmin = async (url: string, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    } catch (e) {
      reply(res, 400, { error: String(e) });
      return;
    }
    if (notLeader(res)) return;
    try {
      if (url === "/admin/add-member") {
        const id = positiveId(body.id, "id");
        if (typeof body.raftAddr !== "string") throw new Error("raftAddr (string) is required");
        const clientAddr = typeof body.clientAddr === "string" ? body.clientAddr : undefined;
        const cs = await raft.addMember(
          id,
          encodeAddrs({ raftAddr: body.raftAddr, clientAddr }),
          args.proposeTimeoutMs,
        );
        reply(res, 200, { ok: true, confState: cs });
      } else if (url === "/admin/remove-member") {
        const id = positiveId(body.id, "id");
        const cs = await raft.changeMembership({ type: "remove_node", nodeId: id }, args.proposeTimeoutMs);
        reply(res, 200, { ok: true, confState: cs });
      } else {
        const to = positiveId(body.to, "to");
        raft.transferLeadership(to);
        reply(res, 202, { ok: true });
      }
    } catch (e) {
      reply(res, 503, { error: String(e) });
    }
  };
  const adminPosts = new Set(["/admin/add-member", "/admin/remove-member", "/admin/transfer"]);

  const http = createServer({ keepAlive: true, keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.method === "POST" && req.url === "/kv") {
      handleKv(req, res).catch((e: unknown) => {
        if (!res.headersSent) reply(res, 500, { error: String(e), unknown: true });
      });
    } else if (req.method === "GET" && req.url === "/status") {
      reply(res, 200, { ...raft.status(), id: args.id });
    } else if (req.method === "GET" && req.url === "/admin/digest") {
      const digest = createHash("sha256").update(sm.snapshot()).digest("hex");
      reply(res, 200, { id: args.id, applied: raft.status().applied, digest });
    } else if (req.method === "POST" && req.url !== undefined && adminPosts.has(req.url)) {
      const url = req.url;
      handleAdmin(url, req, res).catch((e: unknown) => {
        if (!res.headersSent) reply(res, 500, { error: String(e) });
      });
    } else {
      reply(res, 404, { error: "not found" });
    }
  });
  http.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(args.clientPort, "127.0.0.1", () => resolve());
  });
  log.info({ raft: args.raftListen, client: args.clientPort }, "kv server listening");

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    clearInterval(ticker);
    http.closeAllConnections();
    http.close();
    await raft.close();
    await transport.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`kv server: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
