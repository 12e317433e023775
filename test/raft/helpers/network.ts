// An in-process network of RawNodes for the raft core tests (the spirit of etcd raft_test.go's
// `network`): messages are delivered synchronously, in FIFO order, until the network is quiet.
// Every Ready is handled like the real driver: persist to MemoryStorage, send, apply, advance.
import { decodeConfChange } from "../../../manager/raft/core/conf-change.js";
import { MemoryStorage } from "../../../manager/raft/core/memory-storage.js";
import { Raft, type RaftConfig } from "../../../manager/raft/core/raft.js";
import { RawNode } from "../../../manager/raft/core/raw-node.js";
import type {
  ConfState,
  Entry,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Snapshot,
} from "../../../manager/raft/core/types.js";
import { seededRand } from "../sim/rand.js";

export interface NetNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  /** Normal entries with data, in apply order (what a state machine would see). */
  applied: Entry[];
  /** Every committed entry delivered for application, including empty and conf change ones. */
  appliedAll: Entry[];
  snapshots: Snapshot[];
  readStates: ReadState[];
  confState: ConfState;
  config: Partial<RaftConfig>;
}

export type Verdict = "deliver" | "drop";

export interface NetworkOptions {
  seed?: number;
  /** Applied to every node's config. */
  config?: Partial<Omit<RaftConfig, "id" | "storage">>;
  learners?: NodeId[];
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export class Network {
  readonly nodes = new Map<NodeId, NetNode>();
  /** Every message that was delivered, in order (for assertions). */
  readonly delivered: Message[] = [];
  /** Custom filter, consulted before the link rules. */
  intercept: ((m: Message) => Verdict) | undefined = undefined;
  private readonly cutLinks = new Set<string>();
  private readonly dropRates = new Map<string, number>();
  private readonly ignored = new Set<MessageType>();
  private readonly down = new Set<NodeId>();
  private readonly queue: Message[] = [];
  readonly rand: () => number;
  private readonly seed: number;

  constructor(ids: NodeId[], opts: NetworkOptions = {}) {
    this.seed = opts.seed ?? 1;
    this.rand = seededRand(this.seed ^ 0x5eed);
    const voters = ids.filter((id) => !(opts.learners ?? []).includes(id));
    const cs: ConfState = { voters, learners: opts.learners ?? [] };
    for (const id of ids) this.addNode(id, new MemoryStorage(cs), opts.config ?? {});
  }

  /** Adds (or replaces) a node on the given storage; a fresh joiner uses an empty ConfState. */
  addNode(id: NodeId, storage: MemoryStorage, config: Partial<RaftConfig> = {}): NetNode {
    const node = new RawNode({
      rand: seededRand(this.seed * 7919 + id),
      ...config,
      id,
      storage,
    });
    const nn: NetNode = {
      id,
      node,
      storage,
      applied: [],
      appliedAll: [],
      snapshots: [],
      readStates: [],
      confState: storage.initialState().confState,
      config,
    };
    this.nodes.set(id, nn);
    this.down.delete(id);
    this.drainReadies();
    return nn;
  }

  get(id: NodeId): NetNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raw(id: NodeId): RawNode {
    return this.get(id).node;
  }

  /** Crash: the node stops; its MemoryStorage (what was persisted) survives. */
  crash(id: NodeId): void {
    this.down.add(id);
  }

  /** Restart from persisted state; the state machine is rebuilt from the snapshot. */
  restart(id: NodeId, config: Partial<RaftConfig> = {}): NetNode {
    const old = this.get(id);
    const nn = this.addNode(id, old.storage, { ...old.config, ...config });
    return nn;
  }

  isDown(id: NodeId): boolean {
    return this.down.has(id);
  }

  cut(a: NodeId, b: NodeId): void {
    this.cutLinks.add(`${a}-${b}`);
    this.cutLinks.add(`${b}-${a}`);
  }

  /** One-way: messages from `from` to `to` are lost. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cutLinks.add(`${from}-${to}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  drop(from: NodeId, to: NodeId, rate: number): void {
    this.dropRates.set(`${from}-${to}`, rate);
  }

  ignore(t: MessageType): void {
    this.ignored.add(t);
  }

  recover(): void {
    this.cutLinks.clear();
    this.dropRates.clear();
    this.ignored.clear();
    this.intercept = undefined;
  }

  /** Delivers messages (and everything they cause) until the network is quiet. */
  send(...msgs: Message[]): void {
    for (const m of msgs) this.queue.push(m);
    this.deliverAll();
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      if (this.down.has(id)) return;
      this.get(id).node.tick();
      this.drainReadies();
      this.deliverAll();
    }
  }

  /** Ticks every live node once, n times. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const [id, nn] of this.nodes) if (!this.down.has(id)) nn.node.tick();
      this.drainReadies();
      this.deliverAll();
    }
  }

  campaign(id: NodeId): void {
    this.get(id).node.campaign();
    this.drainReadies();
    this.deliverAll();
  }

  propose(id: NodeId, data: string | Uint8Array): void {
    this.get(id).node.propose(typeof data === "string" ? enc(data) : data);
    this.drainReadies();
    this.deliverAll();
  }

  /** Runs f against a node, then handles everything it caused. */
  act(id: NodeId, f: (n: RawNode) => void): void {
    f(this.get(id).node);
    this.drainReadies();
    this.deliverAll();
  }

  leaders(): NodeId[] {
    const out: NodeId[] = [];
    for (const [id, nn] of this.nodes)
      if (!this.down.has(id) && nn.node.status().role === "leader") out.push(id);
    return out;
  }

  role(id: NodeId): string {
    return this.get(id).node.status().role;
  }

  term(id: NodeId): number {
    return this.get(id).node.status().term;
  }

  commit(id: NodeId): number {
    return this.get(id).node.status().commit;
  }

  /** The data of applied normal entries, decoded. */
  appliedData(id: NodeId): string[] {
    return this.get(id).applied.map((e) => dec(e.data));
  }

  private filtered(m: Message): boolean {
    if (this.down.has(m.to) || this.down.has(m.from)) return true;
    if (this.intercept && this.intercept(m) === "drop") return true;
    if (this.ignored.has(m.type)) return true;
    if (this.cutLinks.has(`${m.from}-${m.to}`)) return true;
    const rate = this.dropRates.get(`${m.from}-${m.to}`);
    if (rate !== undefined && this.rand() < rate) return true;
    return false;
  }

  private deliverAll(): void {
    let guard = 0;
    while (this.queue.length > 0) {
      if (++guard > 1_000_000) throw new Error("network did not quiesce");
      const m = this.queue.shift() as Message;
      if (this.filtered(m)) continue;
      const target = this.nodes.get(m.to);
      if (!target) continue;
      // Messages cross a wire: never share objects between nodes.
      const copy = structuredClone(m);
      this.delivered.push(copy);
      target.node.step(copy);
      this.drainReadies();
    }
  }

  drainReadies(): void {
    for (const [id, nn] of this.nodes) {
      if (this.down.has(id)) continue;
      while (nn.node.hasReady()) this.handleReady(nn);
    }
  }

  private handleReady(nn: NetNode): void {
    const rd = nn.node.ready();
    // 1. persist
    if (rd.snapshot) nn.storage.applySnapshot(rd.snapshot);
    nn.storage.append(rd.entries);
    if (rd.hardState) nn.storage.setHardState(rd.hardState);
    // 2. send
    for (const m of rd.messages) this.queue.push(m);
    // 3. apply
    if (rd.snapshot) {
      nn.snapshots.push(rd.snapshot);
      nn.confState = rd.snapshot.metadata.confState;
      // The state machine is replaced by the snapshot's.
      nn.applied = nn.applied.filter((e) => e.index <= rd.snapshot!.metadata.index);
    }
    for (const e of rd.committedEntries) {
      nn.appliedAll.push(e);
      if (e.type === "conf_change") {
        nn.confState = nn.node.applyConfChange(decodeConfChange(e.data));
      } else if (e.data.byteLength > 0) {
        nn.applied.push(e);
      }
    }
    for (const rs of rd.readStates) nn.readStates.push(rs);
    // 4. advance
    nn.node.advance();
  }
}

// ---- helpers for tests that drive a bare Raft (etcd raft_test.go style) ----

/** Entries with the given terms at indexes from, from+1, ... */
export function ents(terms: number[], from = 1): Entry[] {
  return terms.map((term, i) => ({
    term,
    index: from + i,
    type: "normal" as const,
    data: new Uint8Array(0),
  }));
}

/** A MemoryStorage holding a log with the given terms (indexes 1..n) and membership. */
export function storageWith(voters: NodeId[], terms: number[] = [], learners: NodeId[] = []): MemoryStorage {
  const s = new MemoryStorage({ voters, learners });
  s.append(ents(terms));
  return s;
}

export type TestRaftOptions = Partial<Omit<RaftConfig, "id" | "storage">> & {
  storage?: MemoryStorage;
  learners?: NodeId[];
};

/** A bare Raft with etcd's test defaults: election 10, heartbeat 1, no CheckQuorum, no PreVote. */
export function newTestRaft(id: NodeId, voters: NodeId[], opts: TestRaftOptions = {}): Raft {
  const { storage, learners, ...config } = opts;
  return new Raft({
    electionTick: 10,
    heartbeatTick: 1,
    checkQuorum: false,
    preVote: false,
    rand: seededRand(id * 31 + 7),
    ...config,
    id,
    storage: storage ?? new MemoryStorage({ voters, learners: learners ?? [] }),
  });
}

/** etcd's nextEnts: persist the unstable log to storage, apply everything committed. */
export function persistAndApply(r: Raft, s: MemoryStorage): Entry[] {
  const unstable = r.raftLog.unstableEntries();
  s.append(unstable);
  if (unstable.length > 0) {
    const last = unstable[unstable.length - 1];
    r.raftLog.stableTo(last.index, last.term);
  }
  const committed = r.raftLog.nextCommittedEnts();
  if (committed.length > 0) r.raftLog.appliedTo(committed[committed.length - 1].index);
  return committed;
}

/** Makes r the leader of its configuration by a (non-pre) election won with the given voters' replies. */
export function electLeader(r: Raft): void {
  r.becomeCandidate();
  r.becomeLeader();
}

export { newMessage as msg } from "../../../manager/raft/core/util.js";
