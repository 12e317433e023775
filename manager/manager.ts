// A manager: the Raft member whose state machine is the cluster store, its services on the
// node's gRPC server (services.ts) and, while it leads, the orchestrator, the scheduler and the
// allocator (becomeLeader / becomeFollower). Members talk over the node's gRPC server (mutual
// TLS); who the members are and where they listen is itself in the Raft log (the context of each
// membership change), kept beside the WAL in members.json so a restarted member can reach its
// peers before it has replayed anything.
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import {
  GrpcTransport,
  NodeClosedError,
  NodeDisk,
  NotLeaderError,
  ProposalDroppedError,
  ProposalOutcomeUnknownError,
  RaftNode,
  type ConfChange,
  type SenderCheck,
  type ConfState,
  type Disk,
} from "./raft/index.js";
import type { Logger } from "../shared/logging.js";
import { readJsonIfExists, writeJsonAtomic } from "../shared/fsutil.js";
import { messageOf, OutcomeUnknownError, unavailable } from "../shared/errors.js";
import { LeaderTerm } from "./leadership.js";
import { ClusterStore } from "./store/store.js";
import { PeerContact } from "./reachability.js";
import { Orchestrator } from "./orchestrator/loop.js";
import { Scheduler } from "./scheduler/loop.js";
import { startAllocator } from "./allocator/loop.js";
import { Dispatcher } from "./dispatcher/dispatcher.js";
import { networkState } from "./allocator/state.js";
import type { NetworkState } from "../shared/network-state.js";
import { ManagerServices, raftNetwork, type ManagerNode } from "./services.js";
import type { ControlApi } from "./controlapi/control.js";
import type { ClusterNetworksApi } from "./controlapi/networks.js";
import { inspectSwarm, swarmInfo } from "./controlapi/swarm.js";

export interface ManagerNetwork {
  /** The node's gRPC server; the Raft service is added to it. */
  server: grpc.Server;
  credentials: { server: grpc.ServerCredentials; client: grpc.ChannelCredentials };
  channelOptions: grpc.ChannelOptions;
  /** The node id of a Raft stream's sender, from a manager's certificate of this cluster; or why not. */
  sender: (call: grpc.ServerReadableStream<unknown, unknown>) => { nodeId: string } | { refuse: string };
}

export interface ManagerOptions {
  /** Folder of the Raft WAL, snapshots and members.json. */
  dir: string;
  raftId: number;
  nodeId: string;
  /** host:port of this node's gRPC server, as the other managers reach it. */
  addr: string;
  /** A brand-new cluster: this member is its first voter. */
  bootstrap: boolean;
  /**
   * The node this member runs on: Raft and the manager's services are served on its gRPC server.
   * Without it (tests), a member with no transport and no services.
   */
  node?: ManagerNode;
  log: Logger;
  tickMs?: number;
  /** Where the WAL and snapshots are written; the real file system unless a test injects faults. */
  disk?: Disk;
  /** Called when a membership change removed this member (it was demoted or removed). */
  onRemoved?: () => void;
}

export interface Member {
  raftId: number;
  addr: string;
  nodeId: string;
}

interface MemberContext {
  addr: string;
  nodeId: string;
}

const encodeContext = (c: MemberContext): Uint8Array => Buffer.from(JSON.stringify(c));

function decodeContext(b: Uint8Array | undefined): MemberContext | undefined {
  if (!b || b.byteLength === 0) return undefined;
  try {
    const v = JSON.parse(Buffer.from(b).toString()) as MemberContext;
    return typeof v.addr === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Entries between Raft snapshots: SHOAL_RAFT_SNAPSHOT_ENTRIES (like etcd's --snapshot-count),
 * else the Raft node's default. The cluster spec's Raft.SnapshotInterval is not applied yet.
 */
function snapshotEntriesSetting(): number | undefined {
  const v = Number(process.env.SHOAL_RAFT_SNAPSHOT_ENTRIES);
  return Number.isInteger(v) && v > 0 ? v : undefined;
}
/** How long a proposed write may wait to commit before its caller is told the outcome is unknown. */
const PROPOSAL_DEADLINE_MS = 10_000;

export class Manager {
  readonly store = new ClusterStore();
  readonly dispatcher: Dispatcher;
  private raft!: RaftNode;
  private transport: GrpcTransport | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private loops: { orchestrator: Orchestrator; scheduler: Scheduler; term: number } | undefined;
  /** The term whose leadership marker is being written (loops start once it is applied). */
  private marking: number | undefined;
  private storageFailure: Error | undefined;
  private services: ManagerServices | undefined;
  private readonly members = new Map<number, Member>();
  private promoting = false;
  private network: { index: number; key: string; state: NetworkState } | undefined;
  private lastStatusSync = 0;
  private readonly contact = new PeerContact();
  private closed = false;

  private constructor(private readonly o: ManagerOptions) {
    this.dispatcher = new Dispatcher(this.store);
  }

  static async open(o: ManagerOptions): Promise<Manager> {
    const m = new Manager(o);
    const saved = await readJsonIfExists<Member[]>(m.membersFile);
    for (const member of saved ?? []) m.members.set(member.raftId, member);
    m.members.set(o.raftId, { raftId: o.raftId, addr: o.addr, nodeId: o.nodeId });
    const network = o.node ? raftNetwork(o.node) : undefined;
    if (network) {
      m.transport = new GrpcTransport({
        id: o.raftId,
        listen: o.addr,
        sharedServer: network.server,
        authorize: (call) => m.raftSender(network.sender(call)),
        credentials: network.credentials,
        channelOptions: network.channelOptions,
        // A cut peer is noticed quickly and its stream made again once the link is back.
        keepalive: { timeMs: 2_000, timeoutMs: 2_000 },
        peers: new Map(
          [...m.members.values()].filter((x) => x.raftId !== o.raftId).map((x) => [x.raftId, x.addr]),
        ),
        onMessage: (msg) => {
          m.contact.heard(msg.from);
          m.raft?.step(msg);
        },
        onUnreachable: (id) => m.raft?.reportUnreachable(id),
        onSnapshotStatus: (id, ok) => m.raft?.reportSnapshot(id, ok),
        log: o.log.child({ module: "raft-transport" }),
      });
      await m.transport.start();
    }
    m.raft = await RaftNode.open({
      id: o.raftId,
      bootstrapPeers: o.bootstrap ? [o.raftId] : undefined,
      dir: o.dir,
      disk: o.disk ?? new NodeDisk(),
      // The store holds the CA key, join tokens, secrets and registry credentials.
      encryptAtRest: true,
      snapshotEntries: snapshotEntriesSetting(),
      transport: m.transport ?? { send: () => undefined },
      stateMachine: m.store,
      rand: Math.random,
      logger: o.log,
      onConfChange: (cc, cs) => m.onConfChange(cc, cs),
    });
    await m.saveMembers();
    m.store.setProposer((command) =>
      m.raft.propose(command, PROPOSAL_DEADLINE_MS).catch((e: unknown) => {
        // Raft took it and it may still commit: a blind retry could apply it twice.
        if (e instanceof ProposalOutcomeUnknownError) throw new OutcomeUnknownError(e.message);
        // Refused before it entered the log: nothing happened, a retry is safe.
        if (e instanceof ProposalDroppedError || e instanceof NotLeaderError || e instanceof NodeClosedError)
          throw unavailable(
            `not applied: the cluster could not take the change (${e.message}): a leader election may be under way, or a majority of managers is down; retry`,
          );
        if (e instanceof Error && m.raft.stoppedBy === e)
          throw unavailable(
            `not applied: this manager's raft node stopped after a storage failure (${e.message}); retry through another manager`,
          );
        throw e;
      }),
    );
    m.store.setFencedListener((f) =>
      o.log.warn(
        {
          index: f.index,
          stampedTerm: f.stampedTerm,
          entryTerm: f.entryTerm,
          leaderTerm: f.leaderTerm,
          actions: f.actions,
        },
        "refused a deposed leader's batch at apply (a newer leader took office)",
      ),
    );
    // A lone member need not wait out an election timeout.
    if (o.bootstrap || (saved?.length === 1 && saved[0].raftId === o.raftId)) m.raft.campaign();
    m.ticker = setInterval(() => m.tick(), o.tickMs ?? 100);
    if (o.bootstrap) await m.waitLeader(10_000);
    if (o.node) {
      m.services = new ManagerServices(m, o.node, o.log);
      m.services.register();
    }
    return m;
  }

  /**
   * A Raft stream's messages are taken only from the member whose certificate sent them: every
   * message's `from` must be the Raft id of that node's membership. A node that left the group
   * (demoted, removed) or a manager speaking for another member is refused.
   */
  private raftSender(who: { nodeId: string } | { refuse: string }): SenderCheck {
    if ("refuse" in who) return who;
    const { nodeId } = who;
    return {
      sender: (from) => {
        const member = this.members.get(from);
        if (member?.nodeId === nodeId) return undefined;
        const own = [...this.members.values()].find((x) => x.nodeId === nodeId);
        return own
          ? `node ${nodeId} is raft member ${own.raftId} but sent a message as member ${from}: refused`
          : `node ${nodeId} is not a member of the raft group (demoted or removed): refused`;
      },
    };
  }

  private get membersFile(): string {
    return join(this.o.dir, "members.json");
  }

  private saveMembers(): Promise<void> {
    return writeJsonAtomic(this.membersFile, [...this.members.values()]);
  }

  private onConfChange(cc: ConfChange, _cs: ConfState): void {
    if (cc.type === "remove_node") {
      this.members.delete(cc.nodeId);
      this.transport?.removePeer(cc.nodeId);
      this.contact.forget(cc.nodeId);
      if (cc.nodeId === this.o.raftId) {
        this.o.log.info("this member was removed from the raft group");
        queueMicrotask(() => this.o.onRemoved?.());
      }
    } else {
      const ctx = decodeContext(cc.context);
      if (ctx) {
        this.members.set(cc.nodeId, { raftId: cc.nodeId, addr: ctx.addr, nodeId: ctx.nodeId });
        if (cc.nodeId !== this.o.raftId) this.transport?.addPeer(cc.nodeId, ctx.addr);
      }
    }
    void this.saveMembers().catch((e: unknown) =>
      this.o.log.warn({ err: String(e) }, "saving members.json failed"),
    );
  }

  private tick(): void {
    if (this.closed) return;
    this.raft.tick();
    if (this.raft.stoppedBy && !this.storageFailure) this.stepDownOnStorageFailure(this.raft.stoppedBy);
    const { role, term } = this.raft.leadership();
    const leading = !this.closed && role === "leader";
    if (this.loops && (!leading || this.loops.term !== term)) this.becomeFollower();
    if (leading && !this.loops && this.marking !== term) this.becomeLeader(term);
    if (leading) {
      this.promoteCaughtUpLearners();
      if (Date.now() - this.lastStatusSync > 1000) {
        this.lastStatusSync = Date.now();
        void this.syncManagerStatus();
      }
    }
  }

  /**
   * This member now leads in `term`. Its loops start only once the leadership marker of its term
   * is applied here: by then its store holds everything earlier leaders committed (a loop started
   * sooner could plan from a store missing their last writes, and write a slot twice), and any
   * batch of an earlier term's loops is refused at apply. The dispatcher takes sessions at once.
   */
  private becomeLeader(term: number): void {
    this.marking = term;
    this.services?.dispatcher.leadershipChanged(true);
    const stillLeading = () =>
      !this.closed && this.raft.leadership().role === "leader" && this.raft.leadership().term === term;
    this.store.markLeadership(term, this.o.raftId).then(
      () => {
        if (!stillLeading() || this.loops) return;
        const leader = new LeaderTerm(term, stillLeading);
        const writer = leader.writer(this.store);
        this.o.log.info({ term }, "this manager leads: orchestrator, allocator and scheduler started");
        this.loops = {
          orchestrator: new Orchestrator(this.store, this.o.log.child({ module: "orchestrator" }), {
            writer,
          }),
          scheduler: new Scheduler(this.store, this.o.log.child({ module: "scheduler" }), writer),
          term,
        };
        startAllocator(this.store, leader, this.o.log.child({ module: "allocator" }));
        // The first status sync waits a second: the followers answer the new leader's heartbeats first.
        this.lastStatusSync = Date.now();
      },
      (e: unknown) => {
        // Lost the term meanwhile, or no quorum yet: the next tick tries again while it leads.
        this.o.log.warn(
          { term, err: messageOf(e) },
          "the leadership marker was not applied; loops not started",
        );
        if (this.marking === term) this.marking = undefined;
      },
    );
  }

  /** This member no longer leads: the loops stop; the dispatcher sends agents to the new leader. */
  private becomeFollower(): void {
    this.o.log.info("this manager no longer leads: orchestrator, allocator and scheduler stopped");
    this.stopLoops();
    this.services?.dispatcher.leadershipChanged(false);
  }

  /**
   * The Raft node stopped itself after a failed write to its WAL or snapshots: this member can
   * no longer tell what it persisted. It steps down where everyone can see it and stays up (so
   * its state folder and logs can be inspected): no loops, no agent sessions, no leader claim
   * (isLeader() is false), and the cluster API answers 503 (reads cannot be confirmed, writes
   * are refused). Restarting shoald once the disk is fixed makes it a member again.
   */
  private stepDownOnStorageFailure(e: Error): void {
    this.storageFailure = e;
    this.o.log.error(
      { err: e.message },
      "the raft node stopped after a storage failure: this manager stepped down (no loops, no agent sessions, cluster API answers 503); fix the disk under the state folder and restart shoald",
    );
    this.stopLoops();
    this.services?.dispatcher.leadershipChanged(false);
  }

  /** A learner that has the log is made a voter: one change at a time, as Raft asks. */
  private promoteCaughtUpLearners(): void {
    if (this.promoting) return;
    const s = this.raft.status();
    const learner = s.confState.learners.find((id) => (s.progress?.[id]?.match ?? 0) + 5 >= s.commit);
    if (learner === undefined) return;
    const member = this.members.get(learner);
    this.promoting = true;
    this.raft
      .changeMembership(
        {
          type: "add_node",
          nodeId: learner,
          context: member ? encodeContext({ addr: member.addr, nodeId: member.nodeId }) : undefined,
        },
        10_000,
      )
      .then(() => this.o.log.info({ raftId: learner, node: member?.nodeId }, "a new manager is now a voter"))
      .catch((e: unknown) =>
        this.o.log.warn({ raftId: learner, err: String(e) }, "promoting a learner failed"),
      )
      .finally(() => {
        this.promoting = false;
      });
  }

  /** The nodes' ManagerStatus (leader, reachable) as the leader sees it, written when it changes. */
  private async syncManagerStatus(): Promise<void> {
    const byNode = new Map([...this.members.values()].map((m) => [m.nodeId, m]));
    const changes = this.store.view((tx) =>
      tx
        .list("nodes", (n) => n.Spec.Role === "manager" || n.ManagerStatus !== undefined)
        .flatMap((n) => {
          const member = byNode.get(n.ID);
          const leader = member?.raftId === this.o.raftId;
          const reachable = leader || (member ? this.contact.reachable(member.raftId) : false);
          const next = member
            ? {
                Leader: leader || undefined,
                Reachability: reachable ? ("reachable" as const) : ("unreachable" as const),
                Addr: member.addr,
              }
            : undefined;
          const cur = n.ManagerStatus;
          if (JSON.stringify(cur ?? null) === JSON.stringify(next ?? null)) return [];
          if (!next && n.Spec.Role === "manager" && cur?.Reachability === "unknown") return [];
          return [{ ...n, ManagerStatus: next }];
        }),
    );
    if (changes.length === 0) return;
    const written = await this.store
      .update((tx) => {
        for (const n of changes) {
          const cur = tx.get("nodes", n.ID);
          if (cur) tx.update("nodes", { ...cur, ManagerStatus: n.ManagerStatus });
        }
      })
      .then(
        () => true,
        () => false,
      );
    if (written)
      for (const n of changes)
        this.o.log.info(
          {
            node: n.ID,
            hostname: n.Description.Hostname,
            reachability: n.ManagerStatus?.Reachability ?? "none",
          },
          "manager status changed",
        );
  }

  private stopLoops(): void {
    this.loops?.orchestrator.stop();
    this.loops?.scheduler.stop();
    this.loops = undefined;
  }

  isLeader(): boolean {
    return !this.closed && this.raft.leadership().role === "leader";
  }

  /** Why this manager's Raft node stopped on its own (a storage failure), if it did. */
  get stoppedBy(): Error | undefined {
    return this.raft.stoppedBy;
  }

  get raftId(): number {
    return this.o.raftId;
  }

  /** The node this member runs on. */
  get nodeId(): string {
    return this.o.nodeId;
  }

  /** The control API (services, tasks, nodes, the cluster), when this member runs on a node. */
  get control(): ControlApi | undefined {
    return this.services?.control;
  }

  /** The cluster's overlay networks, when this member runs on a node. */
  get clusterNetworks(): ClusterNetworksApi | undefined {
    return this.services?.clusterNetworks;
  }

  /** GET /swarm's body: the cluster object, without its CA key. */
  inspectSwarm(clusterId: string): Record<string, unknown> | undefined {
    return inspectSwarm(this.store, clusterId);
  }

  /** What a manager adds to /info's Swarm section: the managers, the node counts, the cluster. */
  swarmInfo(clusterId: string): Record<string, unknown> {
    return swarmInfo(this.store, this.memberList(), clusterId);
  }

  /** host:port of the leader's gRPC server, if a leader is known. */
  leaderAddr(): string | undefined {
    const lead = this.raft.leadership().lead;
    return lead ? this.members.get(lead)?.addr : undefined;
  }

  /** A joining member learns the others from the leader's answer (the log only has their ids). */
  async learnMembers(list: Member[]): Promise<void> {
    for (const member of list) {
      if (member.raftId === this.o.raftId) continue;
      this.members.set(member.raftId, member);
      this.transport?.addPeer(member.raftId, member.addr);
    }
    await this.saveMembers();
  }

  /**
   * The cluster's network state for agents, recomputed when the store moved; its version moves
   * only when the content changed (to the store index of that moment, so it grows across
   * leaders too, and an agent can ignore anything not newer than what it has).
   */
  networkState(): NetworkState {
    const index = this.store.index;
    if (this.network && this.network.index === index) return this.network.state;
    const fresh = this.store.view((tx) => networkState(tx, 0));
    const key = JSON.stringify({ ...fresh, version: 0 });
    if (this.network && this.network.key === key) {
      this.network.index = index;
      return this.network.state;
    }
    const state = { ...fresh, version: index };
    this.network = { index, key, state };
    return state;
  }

  /** The leader's node id, if a leader is known. */
  leaderNodeId(): string | undefined {
    const lead = this.raft.leadership().lead;
    return lead ? this.members.get(lead)?.nodeId : undefined;
  }

  memberList(): Member[] {
    return [...this.members.values()];
  }

  /**
   * Leader: add a manager as a learner; it is made a voter once it has caught up (tick). The
   * answer is the member list, which the new member needs to answer the leader at all.
   */
  async addMember(raftId: number, addr: string, nodeId: string): Promise<Member[]> {
    if (!this.isLeader()) throw new NotLeaderError(this.raft.leadership().lead);
    const known = this.members.get(raftId);
    if (!known || known.addr !== addr) {
      await this.raft.changeMembership(
        { type: "add_learner", nodeId: raftId, context: encodeContext({ addr, nodeId }) },
        10_000,
      );
    }
    return this.memberList();
  }

  /** Leader: remove a member. The leader itself hands leadership over first, then the caller retries. */
  async removeMember(raftId: number): Promise<void> {
    if (!this.isLeader()) throw new NotLeaderError(this.raft.leadership().lead);
    if (!this.members.has(raftId)) return;
    if (raftId === this.o.raftId) {
      const other = this.raft.status().confState.voters.find((v) => v !== raftId);
      if (other === undefined) throw unavailable("the last manager cannot leave the raft group");
      this.raft.transferLeadership(other);
      throw unavailable("this manager is handing leadership over before it leaves: try again");
    }
    await this.raft.changeMembership({ type: "remove_node", nodeId: raftId }, 10_000);
  }

  async waitLeader(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.isLeader()) {
      if (Date.now() > until) throw new Error("this manager did not become leader in time");
      await new Promise((r) => setTimeout(r, 20));
    }
    this.tick();
  }

  /** Wait until this member knows a leader (a joining or restarted member). */
  async waitForLeader(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.raft.leadership().lead) {
      if (Date.now() > until)
        throw unavailable("no raft leader could be found in time: are a majority of managers up?");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Wait until the store has applied everything the leader had committed when asked. */
  async readBarrier(timeoutMs: number): Promise<void> {
    await this.raft.readBarrier(timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.services?.close();
    this.services = undefined;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.stopLoops();
    await this.raft.close();
    await this.transport?.stop();
  }
}
