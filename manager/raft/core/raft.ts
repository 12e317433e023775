import { decodeConfChange } from "./conf-change.js";
import { ProposalDroppedError } from "./errors.js";
import type { Progress } from "./progress.js";
import { RaftLog } from "./raft-log.js";
import type { VoteResult } from "./quorum.js";
import { ReadOnly } from "./read-only.js";
import { CompactedError, type RaftStorage } from "./storage.js";
import { ProgressTracker } from "./tracker.js";
import type {
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Snapshot,
  SoftState,
  StateRole,
} from "./types.js";
import { NO_LIMIT, bytesEqual, newMessage, payloadsSize, type MessageInit } from "./util.js";

export const NONE: NodeId = 0;

export interface RaftConfig {
  /** This node's id, never 0. */
  id: NodeId;
  /** Ticks without hearing from a leader before campaigning; randomized in [e, 2e). Default 10. */
  electionTick?: number;
  /** Ticks between leader heartbeats. Default 1. Must be < electionTick. */
  heartbeatTick?: number;
  storage: RaftStorage;
  /** The last index applied by the state machine before this start (skip re-delivering them). */
  applied?: number;
  /** Byte budget of the entries in one MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Byte budget of committedEntries in one Ready. Default 16 MiB. */
  maxCommittedSizePerReady?: number;
  /** MsgApps in flight to one follower in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Payload bytes in flight to one follower; 0 = unlimited. Default 32 MiB. */
  maxInflightBytes?: number;
  /** Payload bytes of the leader's uncommitted tail before proposals are dropped; 0 = unlimited. Default 64 MiB. */
  maxUncommittedEntriesSize?: number;
  /** Leader steps down without a live quorum; followers in lease ignore votes. Default true. */
  checkQuorum?: boolean;
  /** Raft thesis §9.6 pre-election. Default true. */
  preVote?: boolean;
  /** Followers drop proposals instead of forwarding them to the leader. Default false. */
  disableProposalForwarding?: boolean;
  /** Uniform in [0, 1): the only source of randomness (election timeout jitter). */
  rand: () => number;
}

type CampaignType = "pre_election" | "election" | "transfer";

/** Marks the MsgVote of a leader-transfer campaign: it overrides leader stickiness. */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode("CampaignTransfer");

function voteRespType(t: MessageType): MessageType {
  switch (t) {
    case "vote":
      return "vote_resp";
    case "pre_vote":
      return "pre_vote_resp";
    default:
      throw new Error(`not a vote message: ${t}`);
  }
}

/** Messages a node generates for itself; they must never arrive from the network. */
export function isLocalMsgType(t: MessageType): boolean {
  return t === "hup" || t === "beat" || t === "unreachable" || t === "snap_status" || t === "check_quorum";
}

/**
 * The Raft state machine, a port of etcd-raft's raft struct (synchronous storage mode: the
 * driver persists a Ready before sending its messages, so the leader may count its own
 * appended entries at once, as etcd v3.5 does).
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  trk: ProgressTracker;
  state: StateRole = "follower";
  isLearner = false;
  msgs: Message[] = [];
  lead: NodeId = NONE;
  /** Non-zero while a leader transfer to that node is in progress. */
  leadTransferee: NodeId = NONE;
  /** Log index of the latest conf change proposed (or the last index at election); see stepLeader. */
  pendingConfIndex = 0;
  /** Payload bytes of the leader's uncommitted tail (an estimate that never overshoots). */
  uncommittedSize = 0;
  readOnly = new ReadOnly();
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  /** ReadIndex requests that arrived before this leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];
  private readonly rand: () => number;

  constructor(c: RaftConfig) {
    const electionTick = c.electionTick ?? 10;
    const heartbeatTick = c.heartbeatTick ?? 1;
    if (!Number.isSafeInteger(c.id) || c.id <= 0) throw new Error("cannot use 0 (or a non-integer) as id");
    if (!(heartbeatTick > 0)) throw new Error("heartbeat tick must be greater than 0");
    if (!(electionTick > heartbeatTick)) throw new Error("election tick must be greater than heartbeat tick");
    const maxInflight = c.maxInflightMsgs ?? 256;
    if (!(maxInflight > 0)) throw new Error("max inflight messages must be greater than 0");
    const maxInflightBytes = c.maxInflightBytes ?? 32 * 1024 * 1024;
    const maxSizePerMsg = c.maxSizePerMsg ?? 1024 * 1024;
    if (maxInflightBytes > 0 && maxInflightBytes < maxSizePerMsg) {
      throw new Error("max inflight bytes must be >= max message size");
    }
    this.id = c.id;
    this.rand = c.rand;
    this.electionTimeout = electionTick;
    this.heartbeatTimeout = heartbeatTick;
    this.checkQuorum = c.checkQuorum ?? true;
    this.preVote = c.preVote ?? true;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.maxMsgSize = maxSizePerMsg;
    const maxUncommitted = c.maxUncommittedEntriesSize ?? 64 * 1024 * 1024;
    this.maxUncommittedSize = maxUncommitted > 0 ? maxUncommitted : NO_LIMIT;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady ?? 16 * 1024 * 1024);

    const { hardState, confState } = c.storage.initialState();
    this.trk = ProgressTracker.restore(confState, this.raftLog.lastIndex(), maxInflight, maxInflightBytes);
    this.switchToConfig();
    if (hardState.term !== 0 || hardState.vote !== 0 || hardState.commit !== 0) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
  }

  hasLeader(): boolean {
    return this.lead !== NONE;
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** Takes the outgoing messages (tests and RawNode.ready). */
  readMessages(): Message[] {
    const m = this.msgs;
    this.msgs = [];
    return m;
  }

  // ---- sending ----

  private send(init: MessageInit): void {
    const m = newMessage(init);
    if (m.from === NONE) m.from = this.id;
    if (m.type === "vote" || m.type === "vote_resp" || m.type === "pre_vote" || m.type === "pre_vote_resp") {
      // Campaign messages carry the term explicitly: pre-votes are for a term we are not in yet.
      if (m.term === 0) throw new Error(`term should be set when sending ${m.type}`);
    } else {
      if (m.term !== 0) throw new Error(`term should not be set when sending ${m.type} (was ${m.term})`);
      // Proposals and ReadIndex requests forwarded to the leader are local messages there:
      // without a term they pass the term checks of step().
      if (m.type !== "prop" && m.type !== "read_index") m.term = this.term;
    }
    if (m.to === this.id) throw new Error(`message should not be self-addressed when sending ${m.type}`);
    this.msgs.push(m);
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends a MsgApp with the entries from pr.next (or a snapshot when they are compacted). With
   * sendIfEmpty=false an append without entries is not sent. Returns whether a message was sent.
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[] = [];
    try {
      prevTerm = this.raftLog.term(prevIndex);
      // Throttled replicate state: only empty MsgApps, so a window of lost messages is recovered
      // by the ack or rejection of the empty one.
      if (pr.state !== "replicate" || !pr.inflights.full()) {
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      }
    } catch (e) {
      // The follower needs entries we compacted away: only a snapshot can catch it up.
      if (e instanceof CompactedError) return this.maybeSendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({
      to,
      type: "app",
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.raftLog.committed,
    });
    pr.sentEntries(ents.length, payloadsSize(ents));
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // A snapshot is expensive; do not send it to a peer that may well be down.
    if (!pr.recentActive) return false;
    const snapshot = this.raftLog.snapshot();
    if (snapshot.metadata.index === 0) throw new Error("need non-empty snapshot");
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send({ to, type: "snap", snapshot });
    return true;
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to);
    if (!pr) return;
    // Never advance a follower's commit past what it is known to hold: it may not have the
    // entries yet, or have different ones (they would not be committed).
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send({ to, type: "heartbeat", commit, ...(ctx ? { context: ctx } : {}) });
  }

  bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  // ---- state transitions ----

  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    this.trk.visit((id, pr) => {
      pr.match = id === this.id ? last : 0;
      pr.next = last + 1;
      pr.resetState("probe");
      pr.recentActive = false;
    });
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
    // Unanswered reads of a former leadership are dropped; their callers time out and retry.
    this.pendingReadIndexMessages = [];
  }

  /** Appends proposals at the leader's term; false if the uncommitted budget refuses them. */
  private appendEntry(props: readonly { type: EntryType; data: Uint8Array }[]): boolean {
    const li = this.raftLog.lastIndex();
    const es: Entry[] = props.map((p, i) => ({
      term: this.term,
      index: li + 1 + i,
      type: p.type,
      data: p.data,
    }));
    if (!this.increaseUncommittedSize(es)) return false;
    const last = this.raftLog.append(es);
    this.trk.progress.get(this.id)?.maybeUpdate(last);
    // Callers broadcast regardless of the result.
    this.maybeCommit();
    return true;
  }

  tick(): void {
    if (this.state === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage({ type: "hup", from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage({ type: "check_quorum", from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned: the leader
      // accepts proposals again.
      if (this.state === "leader" && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== "leader") return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ type: "beat", from: this.id }));
    }
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = "follower";
  }

  becomeCandidate(): void {
    if (this.state === "leader") throw new Error("invalid transition [leader -> candidate]");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = "candidate";
  }

  becomePreCandidate(): void {
    if (this.state === "leader") throw new Error("invalid transition [leader -> pre-candidate]");
    // Neither the term nor the vote change: a pre-election disrupts nobody (thesis §9.6).
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = "pre_candidate";
  }

  becomeLeader(): void {
    if (this.state === "follower") throw new Error("invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.state = "leader";
    const self = this.trk.progress.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // There may be an unapplied conf change in the log we inherited; refusing new ones until
    // everything up to here is applied keeps "one change at a time" without scanning the log.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // §5.4.2 / §8: an entry of the new term, so earlier-term entries can be committed (and
    // ReadIndex can be served) as soon as it is replicated. Empty payloads are never refused.
    if (!this.appendEntry([{ type: "normal", data: new Uint8Array(0) }])) {
      throw new Error("empty entry was dropped");
    }
  }

  private hup(t: CampaignType): void {
    if (this.state === "leader") return;
    if (!this.promotable()) return;
    // A committed but unapplied conf change could change whether we may campaign at all.
    if (this.hasUnappliedConfChanges()) return;
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
    if (lo > this.raftLog.committed) return false;
    const ents = this.raftLog.slice(lo, this.raftLog.committed + 1, NO_LIMIT);
    return ents.some((e) => e.type === "conf_change");
  }

  campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === "pre_election") {
      this.becomePreCandidate();
      voteMsg = "pre_vote";
      // Pre-votes ask for the term we would campaign in, without entering it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = "vote";
      term = this.term;
    }
    if (this.poll(this.id, true).result === "won") {
      // Only possible in a single-voter configuration.
      if (t === "pre_election") this.campaign("election");
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voterNodes()) {
      if (id === this.id) continue;
      this.send({
        to: id,
        term,
        type: voteMsg,
        index: lastIndex,
        logTerm: lastTerm,
        ...(t === "transfer" ? { context: CAMPAIGN_TRANSFER } : {}),
      });
    }
  }

  private poll(id: NodeId, v: boolean): { granted: number; rejected: number; result: VoteResult } {
    this.trk.recordVote(id, v);
    return this.trk.tallyVotes();
  }

  // ---- step ----

  /**
   * Processes one message. Throws ProposalDroppedError for a refused local proposal or read; a
   * refused proposal forwarded by another node is dropped silently (its proposer times out), so
   * stepping network messages never throws for it.
   */
  step(m: Message): void {
    try {
      this.stepInner(m);
    } catch (e) {
      if (e instanceof ProposalDroppedError && !this.isLocalRequest(m)) return;
      throw e;
    }
  }

  private stepInner(m: Message): void {
    if (m.term === 0) {
      // Local message (or a proposal / ReadIndex forwarded by a follower).
    } else if (m.term > this.term) {
      if (m.type === "vote" || m.type === "pre_vote") {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Leader stickiness (thesis §4.2.3): having heard from a live leader within the
          // minimum election timeout, neither update the term nor grant the vote. This keeps a
          // partitioned node that rejoins with a higher term from deposing a healthy leader.
          return;
        }
      }
      if (m.type === "pre_vote") {
        // Never change our term in response to a PreVote.
      } else if (m.type === "pre_vote_resp" && !m.reject) {
        // A granted pre-vote carries the term we would campaign for; we enter it only once a
        // quorum granted. A rejection carries the rejecter's real term: adopt it below.
      } else if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === "heartbeat" || m.type === "app")) {
        // A leader of an older term. With CheckQuorum this node may have raised its term while
        // partitioned and then been ignored (stickiness); tell that leader our term so it steps
        // down and a new election can include us. Without PreVote this is the unavoidable
        // disruption; with PreVote it cannot arise from mere isolation.
        this.send({ to: m.from, type: "app_resp" });
      } else if (m.type === "pre_vote") {
        // A pre-candidate of a lower term: reject explicitly, else a cluster mixing old
        // candidates with higher terms could wait forever.
        this.send({ to: m.from, term: this.term, type: "pre_vote_resp", reject: true });
      }
      // Everything else from an older term is stale: ignore it.
      return;
    }

    switch (m.type) {
      case "hup":
        this.hup(this.preVote ? "pre_election" : "election");
        return;
      case "vote":
      case "pre_vote": {
        // We can vote if this is a repeat of a vote we already cast, or we have not voted and
        // know no leader in this term, or this is a PreVote for a future term...
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === "pre_vote" && m.term > this.term);
        // ...and the candidate's log is at least as up to date as ours (§5.4.1).
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          // The response carries the term of the request: for a pre-vote our term may be lower,
          // and the pre-candidate would drop a response of an older term.
          this.send({ to: m.from, term: m.term, type: voteRespType(m.type) });
          if (m.type === "vote") {
            // Only real votes are recorded (and restart the election timer).
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send({ to: m.from, term: this.term, type: voteRespType(m.type), reject: true });
        }
        return;
      }
      default:
        switch (this.state) {
          case "leader":
            this.stepLeader(m);
            return;
          case "candidate":
          case "pre_candidate":
            this.stepCandidate(m);
            return;
          case "follower":
            this.stepFollower(m);
            return;
        }
    }
  }

  private isLocalRequest(m: Message): boolean {
    return m.from === NONE || m.from === this.id;
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "beat":
        this.bcastHeartbeat();
        return;
      case "check_quorum":
        if (!this.trk.quorumActive()) {
          // Cannot reach a majority: stop serving (reads especially) and let the majority elect.
          this.becomeFollower(this.term, NONE);
        }
        this.trk.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      case "prop":
        this.leaderPropose(m);
        return;
      case "read_index":
        this.leaderReadIndex(m);
        return;
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case "app_resp":
        this.handleAppendResponse(m, pr);
        return;
      case "heartbeat_resp": {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // Resends to a follower that lags, or is in probe state, recovering lost MsgApps.
        if (pr.match < this.raftLog.lastIndex() || pr.state === "probe") this.sendAppend(m.from);
        if (m.context.byteLength === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks) return;
        if (!majorityAcked(this.trk.voters, acks)) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case "snap_status":
        if (pr.state !== "snapshot") return;
        if (m.reject) {
          // Failed: forget the snapshot first, else we would probe from its index.
          pr.pendingSnapshot = 0;
        }
        pr.becomeProbe();
        // After success, wait for the follower's ack before the next MsgApp; after a failure,
        // wait a heartbeat before trying again.
        pr.msgAppFlowPaused = true;
        return;
      case "unreachable":
        // Pipelined MsgApps were likely lost: fall back to probing.
        if (pr.state === "replicate") pr.becomeProbe();
        return;
      case "transfer_leader":
        this.leaderTransfer(m, pr);
        return;
    }
  }

  private leaderPropose(m: Message): void {
    if (m.entries.length === 0) throw new Error("stepped empty proposal");
    if (!this.trk.progress.has(this.id)) {
      // Removed from the configuration while leading: we are about to step down.
      throw new ProposalDroppedError("this leader was removed from the configuration");
    }
    if (this.leadTransferee !== NONE) {
      throw new ProposalDroppedError(`leader transfer to ${this.leadTransferee} in progress`);
    }
    const props = m.entries.map((e) => ({ type: e.type, data: e.data }));
    for (let i = 0; i < props.length; i++) {
      if (props[i].type !== "conf_change") continue;
      let failed: string | undefined;
      if (this.pendingConfIndex > this.raftLog.applied) {
        failed = `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`;
      } else {
        try {
          const cc: ConfChange = decodeConfChange(props[i].data);
          // One change at a time means the configuration at apply time is the current one, so
          // this dry run is exact.
          this.trk.checkChange(cc);
        } catch (e) {
          failed = (e as Error).message;
        }
      }
      // The whole proposal is refused (etcd turns the change into an empty entry instead; an
      // error tells the proposer at once, and a forwarded one is dropped by step()).
      if (failed !== undefined) throw new ProposalDroppedError(failed);
      this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
    }
    if (!this.appendEntry(props)) {
      throw new ProposalDroppedError("uncommitted log exceeds maxUncommittedEntriesSize");
    }
    this.bcastAppend();
  }

  private leaderReadIndex(m: Message): void {
    if (this.trk.isSingleton()) {
      this.respondToReadIndex(m, this.raftLog.committed);
      return;
    }
    // Thesis §6.4: until an entry of its term is committed, a new leader does not know the
    // latest commit index; the request waits for that (see handleAppendResponse).
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendReadIndexResponse(m);
  }

  private sendReadIndexResponse(m: Message): void {
    this.readOnly.addRequest(this.raftLog.committed, m);
    // The leader acks its own heartbeat.
    const acks = this.readOnly.recvAck(this.id, m.context);
    if (acks && majorityAcked(this.trk.voters, acks)) {
      for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
      return;
    }
    this.bcastHeartbeatWithCtx(m.context);
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  private respondToReadIndex(req: Message, index: number): void {
    if (this.isLocalRequest(req)) {
      this.readStates.push({ index, requestCtx: req.context });
      return;
    }
    this.send({ to: req.from, type: "read_index_resp", index, context: req.context });
  }

  committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // rejectHint is the follower's guess of the last index where the logs may agree and
      // logTerm its term there; skip every index where our term is above it (one probe per
      // term, etcd's findConflictByTerm).
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === "probe"))) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot" && pr.match + 1 >= this.raftLog.firstIndex()) {
      // The follower can be caught up from the log now (whichever snapshot it applied).
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      // Committed an entry of this term: reads waiting for that can proceed.
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
    // Flow control may now allow several messages (probe → replicate, or freed inflights).
    while (this.maybeSendAppend(m.from, false)) {
      /* keep sending */
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private leaderTransfer(m: Message, pr: Progress): void {
    if (pr.isLearner) return;
    const transferee = m.from;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return;
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    // The transfer must finish within an election timeout (§3.10 of the thesis).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private stepCandidate(m: Message): void {
    // Stale responses of the pre-election may arrive while we are candidate in the same term.
    const myVoteRespType: MessageType = this.state === "pre_candidate" ? "pre_vote_resp" : "vote_resp";
    switch (m.type) {
      case "prop":
        throw new ProposalDroppedError(`no leader at term ${this.term}`);
      case "read_index":
        if (this.isLocalRequest(m)) throw new ProposalDroppedError(`no leader at term ${this.term}`);
        return;
      case "app":
        this.becomeFollower(m.term, m.from); // m.term === this.term here
        this.handleAppendEntries(m);
        return;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case "snap":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case "timeout_now":
        return;
      default:
        if (m.type !== myVoteRespType) return;
    }
    const res = this.poll(m.from, !m.reject);
    if (res.result === "won") {
      if (this.state === "pre_candidate") {
        this.campaign("election");
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (res.result === "lost") {
      // A pre-vote response's term is our term + 1; stay in ours.
      this.becomeFollower(this.term, NONE);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "prop":
        if (this.lead === NONE) throw new ProposalDroppedError(`no leader at term ${this.term}`);
        if (this.disableProposalForwarding) throw new ProposalDroppedError("proposal forwarding disabled");
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case "app":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case "heartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case "snap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case "transfer_leader":
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case "timeout_now":
        // Transfers skip the pre-vote: we know the leader is alive and wants us to take over.
        this.hup("transfer");
        return;
      case "read_index":
        if (this.lead === NONE) {
          if (this.isLocalRequest(m)) throw new ProposalDroppedError(`no leader at term ${this.term}`);
          return;
        }
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case "read_index_resp":
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
    }
  }

  handleAppendEntries(m: Message): void {
    // Entries up to our commit index are already known to match the leader's (Log Matching);
    // only tell the leader where we are.
    if (m.index < this.raftLog.committed) {
      this.send({ to: m.from, type: "app_resp", index: this.raftLog.committed });
      return;
    }
    const last = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last !== undefined) {
      this.send({ to: m.from, type: "app_resp", index: last });
      return;
    }
    // Mismatch at m.index: hint the largest (index, term) with term <= m.logTerm, which lets
    // the leader skip our whole divergent tail in one step.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const hint = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send({
      to: m.from,
      type: "app_resp",
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send({ to: m.from, type: "heartbeat_resp", context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s && this.restore(s)) {
      this.send({ to: m.from, type: "app_resp", index: this.raftLog.lastIndex() });
    } else {
      // Stale or duplicate snapshot: just tell the leader how far we are.
      this.send({ to: m.from, type: "app_resp", index: this.raftLog.committed });
    }
  }

  /**
   * Installs a snapshot from the leader; false if it was ignored. A snapshot at or below our
   * commit index is old news (a duplicate or reordered delivery) and must not rewind anything.
   */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== "follower") {
      // Defense in depth (etcd): never restore as leader or candidate.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.metadata.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) return false;
    // We already have the snapshot's last entry: our log matches up to there (Log Matching),
    // so keep it and only fast-forward the commit index.
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    this.trk = ProgressTracker.restore(
      cs,
      this.raftLog.lastIndex(),
      this.trk.maxInflight,
      this.trk.maxInflightBytes,
    );
    this.switchToConfig();
    return true;
  }

  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.raftLog.unstable.snapshot === undefined;
  }

  /** Applies a committed conf_change entry's change (the driver calls this after applying it). */
  applyConfChange(cc: ConfChange): ConfState {
    this.trk.applyChange(cc, this.raftLog.lastIndex());
    return this.switchToConfig();
  }

  private switchToConfig(): ConfState {
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr !== undefined && pr.isLearner;
    if ((pr === undefined || this.isLearner) && this.state === "leader") {
      // A leader removed (or demoted) by a committed change steps down (thesis §4.2.2); the
      // remaining voters elect a new one after their election timeout.
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.state !== "leader" || cs.voters.length === 0) return cs;
    if (this.maybeCommit()) {
      // A smaller quorum may commit more right away.
      this.bcastAppend();
    } else {
      // Probe new members at once rather than at the next heartbeat.
      this.trk.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== NONE && !this.trk.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  private loadState(hs: HardState): void {
    if (hs.commit > this.raftLog.lastIndex()) {
      throw new Error(
        `hard state commit ${hs.commit} is out of range [lastIndex(${this.raftLog.lastIndex()})]`,
      );
    }
    // A commit index behind the snapshot (a WAL whose hard state predates the snapshot) is
    // harmless: the snapshot is committed by definition. etcd panics here; we keep the larger.
    this.raftLog.committed = Math.max(hs.commit, this.raftLog.committed);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  resetRandomizedElectionTimeout(): void {
    const r = Math.floor(this.rand() * this.electionTimeout);
    this.randomizedElectionTimeout =
      this.electionTimeout + Math.min(Math.max(r, 0), this.electionTimeout - 1);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ to, type: "timeout_now" });
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  private increaseUncommittedSize(ents: readonly Entry[]): boolean {
    const s = payloadsSize(ents);
    // An empty tail accepts any proposal (else one large entry could never be proposed), and
    // empty payloads (the new leader's entry) are never refused.
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.state !== "leader") return;
    const s = payloadsSize(ents);
    // The estimate may undershoot (entries of earlier terms) but must not go negative.
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }
}

function majorityAcked(voters: ReadonlySet<NodeId>, acks: ReadonlyMap<NodeId, boolean>): boolean {
  let n = 0;
  for (const id of voters) if (acks.get(id)) n++;
  return n >= Math.floor(voters.size / 2) + 1;
}
