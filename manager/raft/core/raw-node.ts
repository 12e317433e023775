import { encodeConfChange } from "./conf-change.js";
import type { ProgressState } from "./progress.js";
import { NONE, Raft, isLocalMsgType, type RaftConfig } from "./raft.js";
import type {
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  NodeId,
  Ready,
  SoftState,
  StateRole,
} from "./types.js";
import { newMessage } from "./util.js";

interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  paused: boolean;
  inflight: number;
  isLearner: boolean;
  pendingSnapshot: number;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  lead: NodeId;
  role: StateRole;
  /** Leader only: its view of every member, including itself. */
  progress?: Record<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function isEmptyHardState(h: HardState): boolean {
  return h.term === 0 && h.vote === 0 && h.commit === 0;
}

/**
 * The driver's interface to raft (etcd RawNode), synchronous storage mode. Loop:
 *   tick()/step()/propose()... ; while (hasReady()) { rd = ready(); persist; send; apply; advance() }
 * ready() may not be called again before advance(). Other calls are allowed between them.
 */
export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private pendingReady: Ready | undefined = undefined;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (pre-election first when PreVote is on). */
  campaign(): void {
    this.raft.step(newMessage({ type: "hup", from: this.raft.id }));
  }

  /** Proposes a command. Throws ProposalDroppedError when it cannot be accepted now. */
  propose(data: Uint8Array): void {
    this.proposeEntry("normal", data);
  }

  /**
   * Proposes several commands as one message, so a leader sends one append per follower for all
   * of them (not one per command). All or none are accepted; throws like propose().
   */
  proposeBatch(data: Uint8Array[]): void {
    if (data.length === 0) return;
    const entries: Entry[] = data.map((d) => ({ term: 0, index: 0, type: "normal", data: d }));
    this.raft.step(newMessage({ type: "prop", entries }));
  }

  /**
   * Proposes a membership change. Once its entry is committed and applied, the driver calls
   * applyConfChange(decodeConfChange(entry.data)). Only one change may be pending at a time.
   */
  proposeConfChange(cc: ConfChange): void {
    this.proposeEntry("conf_change", encodeConfChange(cc));
  }

  private proposeEntry(type: EntryType, data: Uint8Array): void {
    const e: Entry = { term: 0, index: 0, type, data };
    this.raft.step(newMessage({ type: "prop", entries: [e] }));
  }

  /** Steps a message received from the network. Local-only message types are refused. */
  step(m: Message): void {
    if (isLocalMsgType(m.type))
      throw new Error(`cannot step local message ${m.type} received from the network`);
    // A response from a node we do not track (e.g. removed) is ignored, as in etcd.
    if (
      (m.type === "app_resp" ||
        m.type === "heartbeat_resp" ||
        m.type === "vote_resp" ||
        m.type === "pre_vote_resp") &&
      !this.raft.trk.progress.has(m.from)
    ) {
      return;
    }
    this.raft.step(m);
  }

  /**
   * Requests a linearizable read. When it is safe, a ReadState with this context and the index
   * to wait for appears in a Ready. ctx must be non-empty and unique among pending reads.
   * Throws ProposalDroppedError when no leader is known; otherwise an unanswered request is
   * lost on leader change, so the caller needs a timeout.
   */
  readIndex(ctx: Uint8Array): void {
    if (ctx.byteLength === 0) throw new Error("readIndex context must not be empty");
    this.raft.step(newMessage({ type: "read_index", context: ctx }));
  }

  /** Asks the leader (directly, or forwarded by a follower) to hand leadership to `to`. */
  transferLeader(to: NodeId): void {
    this.raft.step(newMessage({ type: "transfer_leader", from: to }));
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** The transport could not deliver to `id`: stop pipelining to it. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage({ type: "unreachable", from: id }));
  }

  /** Outcome of sending a snapshot message to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(newMessage({ type: "snap_status", from: id, reject: !ok }));
  }

  hasReady(): boolean {
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !sameHardState(hs, this.prevHardState)) return true;
    if (r.raftLog.unstable.snapshot !== undefined) return true;
    if (r.msgs.length > 0 || r.raftLog.unstable.entries.length > 0 || r.raftLog.hasNextCommittedEnts())
      return true;
    return r.readStates.length > 0;
  }

  ready(): Ready {
    if (this.pendingReady) throw new Error("ready() called again before advance()");
    const r = this.raft;
    const rd: Ready = {
      entries: r.raftLog.unstableEntries(),
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages: r.readMessages(),
      readStates: r.readStates,
    };
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    const hs = r.hardState();
    if (!sameHardState(hs, this.prevHardState)) {
      rd.hardState = hs;
      this.prevHardState = hs;
    }
    if (r.raftLog.unstable.snapshot) rd.snapshot = r.raftLog.unstable.snapshot;
    r.readStates = [];
    this.pendingReady = rd;
    return rd;
  }

  /** The last Ready was persisted, sent and applied. */
  advance(): void {
    const rd = this.pendingReady;
    if (!rd) throw new Error("advance() without a pending ready()");
    this.pendingReady = undefined;
    const r = this.raft;
    r.reduceUncommittedSize(rd.committedEntries);
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    const newApplied = lastCommitted ? lastCommitted.index : (rd.snapshot?.metadata.index ?? 0);
    if (newApplied > r.raftLog.applied) r.raftLog.appliedTo(newApplied);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry) r.raftLog.stableTo(lastEntry.index, lastEntry.term);
    if (rd.snapshot) r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
  }

  status(): RaftStatus {
    const r = this.raft;
    const st: RaftStatus = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
      lead: r.lead,
      role: r.state,
      leadTransferee: r.leadTransferee,
    };
    if (r.state === "leader") {
      const progress: Record<NodeId, ProgressStatus> = {};
      r.trk.visit((id, pr) => {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          paused: pr.isPaused(),
          inflight: pr.inflights.count(),
          isLearner: pr.isLearner,
          pendingSnapshot: pr.pendingSnapshot,
        };
      });
      st.progress = progress;
    }
    return st;
  }

  /** True when no leader is known (convenience for drivers). */
  hasLeader(): boolean {
    return this.raft.lead !== NONE;
  }
}
