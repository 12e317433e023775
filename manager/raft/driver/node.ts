// The driver around the pure core: it owns the WAL, the snapshot files, the in-memory log and
// the state machine, and runs the Ready loop in the order Raft's safety needs (persist, then
// send, then apply). Time and the network are injected: production gives it a timer and the
// gRPC transport, the simulator gives it its own clock, network and FakeDisk, so both run
// exactly this code.
import { posix } from "node:path";
import type { Disk, PersistLogger } from "../disk.js";
import { warningLogger } from "../disk.js";
import { Wal } from "../wal/wal.js";
import { Snapshotter } from "../snap/snapshotter.js";
import { openDataKey } from "../data-key.js";
import { MemoryStorage } from "../core/memory-storage.js";
import { RawNode, type RaftStatus } from "../core/raw-node.js";
import { encodeConfChange, decodeConfChange } from "../core/conf-change.js";
import { ProposalDroppedError } from "../core/errors.js";
import { unwrapCommand, wrapCommand } from "./envelope.js";
import { Waiters } from "./waiters.js";
import type { ConfChange, ConfState, Entry, Message, NodeId, Ready, Snapshot } from "../core/types.js";

/** The replicated state machine. apply() must be deterministic. */
export interface StateMachine {
  /**
   * Apply a committed command (empty for a leader's no-op); the result goes to the proposer.
   * `term` is the term of the leader that appended the entry (a state machine may refuse a
   * command stamped by the leader of an older term: see docs/architecture.md, Leadership).
   */
  apply(index: number, command: Uint8Array, term: number): unknown;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export interface MessageSender {
  send(messages: Message[]): void;
}

export interface RaftNodeOptions {
  id: NodeId;
  /** Voters of a brand-new cluster, written as the first log entries. Omit when joining one. */
  bootstrapPeers?: NodeId[];
  /** Folder of this member's WAL (`wal/`) and snapshots (`snap/`). */
  dir: string;
  disk: Disk;
  transport: MessageSender;
  stateMachine: StateMachine;
  /** The only randomness: election timeout jitter. */
  rand: () => number;
  electionTick?: number;
  heartbeatTick?: number;
  /** Take a snapshot every this many applied entries. */
  snapshotEntries?: number;
  /** Entries kept in memory behind a snapshot for slow followers, before they need the snapshot. */
  catchUpEntries?: number;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  segmentBytes?: number;
  /**
   * Encrypt the WAL and the snapshots with the member's data key (`raft-dek.json` in `dir`, made
   * at the first open). A plain WAL and plain snapshots from before are rewritten encrypted.
   */
  encryptAtRest?: boolean;
  /** Called after a membership change is applied (the transport adds or drops the peer). */
  onConfChange?: (cc: ConfChange, confState: ConfState) => void;
  logger?: PersistLogger;
}

export class NodeClosedError extends Error {
  constructor() {
    super("raft node is closed");
    this.name = "NodeClosedError";
  }
}

/**
 * A proposal that may or may not commit: it timed out after raft took it, leadership changed
 * while it waited, or the node stopped meanwhile. A retry may apply it twice: check first.
 * (ProposalDroppedError, raised before raft took the proposal, means it certainly did not.)
 */
export class ProposalOutcomeUnknownError extends Error {
  constructor(reason: string) {
    super(`raft proposal outcome unknown: ${reason}`);
    this.name = "ProposalOutcomeUnknownError";
  }
}

export class NotLeaderError extends Error {
  constructor(readonly lead: NodeId) {
    super(`this member is not the raft leader${lead ? ` (member ${lead} is)` : " (no leader known)"}`);
    this.name = "NotLeaderError";
  }
}

interface CatchUpWaiter {
  id: NodeId;
  target: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface AppliedWaiter {
  index: number;
  resolve: () => void;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export class RaftNode {
  private readonly raw: RawNode;
  private readonly proposals = new Waiters<bigint, unknown>();
  /** Who led (term and leader) when each waiting proposal was made: a change makes its outcome unknown. */
  private readonly proposedUnder = new Map<bigint, string>();
  private leadershipKey = "";
  private readonly reads = new Waiters<string, number>();
  private appliedWaiters: AppliedWaiter[] = [];
  private catchUps: CatchUpWaiter[] = [];
  /**
   * Proposals made while the Ready loop is busy (persisting): stepped into raft together when it
   * comes round, as one message. One proposal per step would make the leader send one append
   * per follower per proposal; under load that floods the transport and caps throughput.
   */
  private pendingProposals: Array<{ id: bigint; data: Uint8Array }> = [];
  private nextRequest = 0n;
  private readonly epoch: bigint;
  private running: Promise<void> | undefined;
  private closed = false;
  private failure: Error | undefined;
  private applied: number;
  private snapshotIndex: number;
  private confState: ConfState;

  private constructor(
    private readonly o: RaftNodeOptions,
    private readonly wal: Wal,
    private readonly snapshotter: Snapshotter,
    private readonly storage: MemoryStorage,
    applied: number,
  ) {
    this.applied = applied;
    this.snapshotIndex = applied;
    this.epoch = BigInt(Math.floor(o.rand() * 0x1000000));
    this.confState = storage.initialState().confState;
    this.raw = new RawNode({
      id: o.id,
      storage,
      applied,
      rand: o.rand,
      electionTick: o.electionTick,
      heartbeatTick: o.heartbeatTick,
      maxSizePerMsg: o.maxSizePerMsg,
      maxInflightMsgs: o.maxInflightMsgs,
    });
  }

  /**
   * Open a member: load the newest usable snapshot, replay the WAL after it, restore the state
   * machine, and (for a brand-new cluster) write the bootstrap membership entries.
   */
  static async open(o: RaftNodeOptions): Promise<RaftNode> {
    const logger = o.logger ?? warningLogger;
    const walDir = posix.join(o.dir, "wal");
    const existed = await Wal.exists(o.disk, walDir);
    const cipher = o.encryptAtRest ? await openDataKey(o.disk, o.dir) : undefined;
    const wal = await Wal.open(o.disk, walDir, { segmentBytes: o.segmentBytes, logger, cipher });
    const snapshotter = new Snapshotter(o.disk, posix.join(o.dir, "snap"), { logger, cipher });
    const snap = existed ? await snapshotter.loadNewestAvailable(wal.snapshotMarkers()) : undefined;
    const state = wal.readAll(
      snap ? { index: snap.metadata.index, term: snap.metadata.term } : { index: 0, term: 0 },
    );
    const storage = new MemoryStorage();
    let applied = 0;
    if (snap) {
      storage.applySnapshot(snap);
      if (snap.data.byteLength > 0) o.stateMachine.restore(snap.data);
      applied = snap.metadata.index;
    }
    storage.setHardState(state.hardState);
    storage.append(state.entries);
    if (!existed && o.bootstrapPeers && o.bootstrapPeers.length > 0) {
      // etcd's Bootstrap: the initial members are ordinary committed conf-change entries, so a
      // member that joins later learns them from the log like any other change.
      const entries: Entry[] = o.bootstrapPeers.map((nodeId, i) => ({
        term: 1,
        index: i + 1,
        type: "conf_change",
        data: encodeConfChange({ type: "add_node", nodeId }),
      }));
      const hardState = { term: 1, vote: 0, commit: entries.length };
      await wal.save(hardState, entries);
      storage.append(entries);
      storage.setHardState(hardState);
    }
    const node = new RaftNode(o, wal, snapshotter, storage, applied);
    node.kick();
    return node;
  }

  // ---- inputs ---------------------------------------------------------------------------

  tick(): void {
    if (this.closed) return;
    this.raw.tick();
    this.kick();
    this.checkCatchUps();
    this.checkLeadership();
  }

  /** A message from a peer. Messages for terms or members raft does not know are dropped by it. */
  step(m: Message): void {
    if (this.closed) return;
    try {
      this.raw.step(m);
    } catch (e) {
      this.log("dropped a message raft refused", { type: m.type, from: m.from, err: String(e) });
    }
    this.kick();
    this.checkLeadership();
  }

  campaign(): void {
    if (this.closed) return;
    this.raw.campaign();
    this.kick();
  }

  reportUnreachable(id: NodeId): void {
    if (!this.closed) this.raw.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.closed) return;
    this.raw.reportSnapshot(id, ok);
    this.kick();
  }

  /**
   * Propose a command; resolves with the state machine's result once it is applied here.
   * Rejects at once with ProposalDroppedError when raft drops it (no leader, leader transfer):
   * it was certainly not appended. Rejects with ProposalOutcomeUnknownError when it may still
   * commit: the timeout passed, the term or leader changed while it waited, or the node stopped.
   */
  propose(command: Uint8Array, timeoutMs?: number): Promise<unknown> {
    if (this.closed) return Promise.reject(this.failure ?? new NodeClosedError());
    const id = this.newRequestId();
    if (this.running) {
      // The loop flushes these before its next Ready; nothing could be sent for them sooner.
      const done = this.awaitApplied(id, timeoutMs);
      this.pendingProposals.push({ id, data: wrapCommand(id, command) });
      return done;
    }
    return this.submit(id, timeoutMs, () => this.raw.propose(wrapCommand(id, command)));
  }

  /** Wait for request `id` to be applied; `step` hands it to raft, and its refusal rejects at once. */
  private submit(id: bigint, timeoutMs: number | undefined, step: () => void): Promise<unknown> {
    const done = this.awaitApplied(id, timeoutMs);
    try {
      step();
    } catch (e) {
      this.proposals.reject(id, e instanceof Error ? e : new Error(String(e)));
    }
    this.kick();
    return done;
  }

  private awaitApplied(id: bigint, timeoutMs: number | undefined): Promise<unknown> {
    this.proposedUnder.set(id, this.currentLeadership());
    const done = this.proposals.wait(
      id,
      timeoutMs,
      () => new ProposalOutcomeUnknownError(`not applied within ${timeoutMs} ms`),
    );
    const forget = (): void => void this.proposedUnder.delete(id);
    done.then(forget, forget);
    return done;
  }

  private currentLeadership(): string {
    const s = this.raw.raft.softState();
    return `${this.raw.raft.term}/${s.lead}`;
  }

  /**
   * The term or the leader changed: proposals made before may have been lost with the old
   * leader's log or may still commit under the new one. Their callers learn it now, not at
   * their timeout; ones still queued here (never given to raft) are certainly not appended.
   */
  private checkLeadership(): void {
    const now = this.currentLeadership();
    if (now === this.leadershipKey) return;
    this.leadershipKey = now;
    // A read index asked of the old leader is never answered: ask again now.
    this.reads.rejectAll(new ProposalDroppedError("leadership changed; ask again"));
    const queued = new Set(this.pendingProposals.map((p) => p.id));
    this.pendingProposals = [];
    for (const [id, under] of [...this.proposedUnder]) {
      if (under === now) continue;
      if (queued.has(id))
        this.proposals.reject(id, new ProposalDroppedError("leadership changed before it was proposed"));
      else
        this.proposals.reject(
          id,
          new ProposalOutcomeUnknownError("the term or leader changed while it waited to commit"),
        );
    }
  }

  /** A linearizable read barrier (ReadIndex): resolves once this member has applied everything committed when it was asked. */
  async readBarrier(timeoutMs?: number): Promise<void> {
    if (this.closed) throw this.failure ?? new NodeClosedError();
    const ctx = wrapCommand(this.newRequestId(), new Uint8Array(0));
    const key = hex(ctx);
    const index = this.reads.wait(key, timeoutMs, () => new ProposalDroppedError("read index timed out"));
    try {
      this.raw.readIndex(ctx);
    } catch (e) {
      this.reads.reject(key, e instanceof Error ? e : new Error(String(e)));
    }
    this.kick();
    await this.waitApplied(await index);
  }

  /** Propose a membership change; resolves with the new membership once applied here. */
  changeMembership(cc: ConfChange, timeoutMs?: number): Promise<unknown> {
    if (this.closed) return Promise.reject(this.failure ?? new NodeClosedError());
    const id = this.newRequestId();
    return this.submit(id, timeoutMs, () =>
      this.raw.proposeConfChange({ ...cc, context: wrapCommand(id, cc.context ?? new Uint8Array(0)) }),
    );
  }

  /**
   * Add a member the safe way: as a learner first (it counts for nothing while it copies the
   * log or a snapshot), promoted to voter only once it has caught up with the commit index of
   * the moment it was added — so a new, empty member never weakens the quorum. Leader only.
   */
  async addMember(id: NodeId, context?: Uint8Array, timeoutMs?: number): Promise<ConfState> {
    this.requireLeader();
    await this.changeMembership({ type: "add_learner", nodeId: id, context }, timeoutMs);
    this.requireLeader();
    const target = this.raw.status().commit;
    await new Promise<void>((resolve, reject) => {
      this.catchUps.push({ id, target, resolve, reject });
      this.checkCatchUps();
    });
    return (await this.changeMembership({ type: "add_node", nodeId: id, context }, timeoutMs)) as ConfState;
  }

  private requireLeader(): void {
    const s = this.raw.status();
    if (s.role !== "leader") throw new NotLeaderError(s.lead);
  }

  /** Learners being added: promoted once caught up; given up when this member stops leading. */
  private checkCatchUps(): void {
    if (this.catchUps.length === 0) return;
    const s = this.raw.status();
    const still: CatchUpWaiter[] = [];
    for (const w of this.catchUps) {
      if (s.role !== "leader") w.reject(new NotLeaderError(s.lead));
      else if ((s.progress?.[w.id]?.match ?? 0) >= w.target) w.resolve();
      else still.push(w);
    }
    this.catchUps = still;
  }

  transferLeadership(to: NodeId): void {
    if (this.closed) return;
    this.raw.transferLeader(to);
    this.kick();
  }

  status(): RaftStatus & { applied: number; snapshotIndex: number; confState: ConfState } {
    return {
      ...this.raw.status(),
      applied: this.applied,
      snapshotIndex: this.snapshotIndex,
      confState: this.confState,
    };
  }

  /**
   * Who leads, in which term, and whether it is this member, without building the whole status
   * (per-request use). A stopped node leads nothing and knows no leader.
   */
  leadership(): { lead: NodeId; role: RaftStatus["role"]; term: number } {
    if (this.closed) return { lead: 0, role: "follower", term: this.raw.raft.term };
    return { ...this.raw.raft.softState(), term: this.raw.raft.term };
  }

  /** Terms of the stable log entries in [lo, hi] still held in memory (tests check Log Matching with it). */
  logTerms(lo: number, hi: number): Map<number, number> {
    const out = new Map<number, number>();
    const first = Math.max(lo, this.storage.firstIndex());
    const last = Math.min(hi, this.storage.lastIndex());
    for (let i = first; i <= last; i++) out.set(i, this.storage.term(i));
    return out;
  }

  get id(): NodeId {
    return this.o.id;
  }

  /** Stop: no more input is taken; the Ready being processed finishes; waiters are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.running?.catch(() => undefined);
    this.failAll(this.failure ?? new NodeClosedError());
    await this.wal.close().catch(() => undefined);
  }

  /** Why the node stopped on its own (a storage failure), if it did. */
  get stoppedBy(): Error | undefined {
    return this.failure;
  }

  /** For the simulator's crashes: stop at once, leaving the disk as it is. */
  kill(): void {
    this.closed = true;
    this.failAll(new NodeClosedError());
  }

  // ---- the Ready loop ---------------------------------------------------------------------

  private kick(): void {
    if (this.running || this.closed) return;
    this.flushProposals();
    if (!this.raw.hasReady()) return;
    this.running = this.loop()
      .catch((e: unknown) => {
        // A failed fsync leaves the log's durability unknown: the only safe move is to stop.
        this.failure = e instanceof Error ? e : new Error(String(e));
        this.log("raft node stopped after a storage failure", { err: String(e) });
        this.closed = true;
        this.failAll(this.failure);
      })
      .finally(() => {
        this.running = undefined;
        this.kick();
      });
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      this.flushProposals();
      if (!this.raw.hasReady()) break;
      const rd = this.raw.ready();
      await this.persist(rd);
      if (this.closed) return;
      if (rd.messages.length > 0) this.o.transport.send(rd.messages.map((m) => this.withUsableSnapshot(m)));
      if (rd.snapshot) this.applySnapshot(rd.snapshot);
      for (const rs of rd.readStates) this.reads.resolve(hex(rs.requestCtx), rs.index);
      this.applyEntries(rd.committedEntries);
      this.raw.advance();
      this.checkCatchUps();
      await this.maybeSnapshot();
    }
  }

  /** Everything in a Ready that must be durable before its messages go out. */
  private async persist(rd: Ready): Promise<void> {
    if (rd.snapshot) {
      // The snapshot file first, then its marker: a marker never points at a missing file.
      await this.snapshotter.save(rd.snapshot);
      await this.wal.saveSnapshotMarker({
        index: rd.snapshot.metadata.index,
        term: rd.snapshot.metadata.term,
      });
      this.storage.applySnapshot(rd.snapshot);
    }
    if (rd.hardState || rd.entries.length > 0) await this.wal.save(rd.hardState, rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
  }

  /**
   * A member added after the newest stored snapshot is not in that snapshot's membership and
   * would refuse it (raft ignores a snapshot that leaves it out). Like etcd's server, send such
   * a member a fresh snapshot of the state applied now instead.
   */
  private withUsableSnapshot(m: Message): Message {
    if (m.type !== "snap" || !m.snapshot) return m;
    const cs = m.snapshot.metadata.confState;
    if (cs.voters.includes(m.to) || cs.learners.includes(m.to)) return m;
    const index = this.applied;
    const snapshot: Snapshot = {
      metadata: { index, term: this.storage.term(index), confState: this.confState },
      data: this.o.stateMachine.snapshot(),
    };
    return { ...m, snapshot };
  }

  private applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.applied) return;
    this.o.stateMachine.restore(snap.data);
    this.applied = snap.metadata.index;
    this.snapshotIndex = snap.metadata.index;
    this.confState = snap.metadata.confState;
    this.releaseApplied();
  }

  private applyEntries(entries: Entry[]): void {
    for (const e of entries) {
      if (e.index <= this.applied) continue;
      if (e.type === "conf_change") this.applyConfChange(e);
      else {
        const env = unwrapCommand(e.data);
        const result = this.o.stateMachine.apply(e.index, env ? env.command : e.data, e.term);
        if (env) this.proposals.resolve(env.requestId, result);
      }
      this.applied = e.index;
    }
    this.releaseApplied();
  }

  private applyConfChange(e: Entry): void {
    const cc = decodeConfChange(e.data);
    const env = cc.context ? unwrapCommand(cc.context) : undefined;
    const plain: ConfChange = { ...cc, context: env ? env.command : cc.context };
    this.confState = this.raw.applyConfChange(plain);
    // The state machine still sees the index, so its applied count stays in step with the log.
    this.o.stateMachine.apply(e.index, new Uint8Array(0), e.term);
    this.o.onConfChange?.(plain, this.confState);
    if (env) this.proposals.resolve(env.requestId, this.confState);
  }

  private async maybeSnapshot(): Promise<void> {
    const every = this.o.snapshotEntries ?? 10_000;
    if (this.applied - this.snapshotIndex < every) return;
    const index = this.applied;
    const snap = this.storage.createSnapshot(index, this.confState, this.o.stateMachine.snapshot());
    await this.snapshotter.save(snap);
    await this.wal.saveSnapshotMarker({ index, term: snap.metadata.term });
    this.snapshotIndex = index;
    const compactTo = index - (this.o.catchUpEntries ?? 5_000);
    if (compactTo > this.storage.firstIndex()) this.storage.compact(compactTo);
    await this.wal.releaseTo(index);
  }

  private waitApplied(index: number): Promise<void> {
    if (index <= this.applied) return Promise.resolve();
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }));
  }

  private releaseApplied(): void {
    if (this.appliedWaiters.length === 0) return;
    const still: AppliedWaiter[] = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= this.applied) w.resolve();
      else still.push(w);
    }
    this.appliedWaiters = still;
  }

  private flushProposals(): void {
    if (this.pendingProposals.length === 0) return;
    const batch = this.pendingProposals;
    this.pendingProposals = [];
    try {
      this.raw.proposeBatch(batch.map((p) => p.data));
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      for (const p of batch) this.proposals.reject(p.id, err);
    }
  }

  private failAll(e: Error): void {
    const queued = new Set(this.pendingProposals.map((p) => p.id));
    this.pendingProposals = [];
    for (const w of this.catchUps) w.reject(e);
    this.catchUps = [];
    // Queued ones never reached raft; the others were in its log, maybe on a majority already.
    for (const id of queued) this.proposals.reject(id, e);
    this.proposals.rejectAll(new ProposalOutcomeUnknownError(`the raft node stopped (${e.message})`));
    this.reads.rejectAll(e);
    this.appliedWaiters = [];
  }

  private newRequestId(): bigint {
    // Only this member's waiters match on it, but an entry proposed before a restart can still
    // commit after it: the random epoch of each open keeps old and new ids apart.
    this.nextRequest = (this.nextRequest + 1n) & 0xffffffffn;
    return (BigInt(this.o.id & 0xff) << 56n) | (this.epoch << 32n) | this.nextRequest;
  }

  private log(msg: string, fields: Record<string, unknown>): void {
    (this.o.logger ?? warningLogger).warn({ node: this.o.id, ...fields }, msg);
  }
}
