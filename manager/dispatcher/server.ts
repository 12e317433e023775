// The dispatcher's gRPC face for every agent (this manager's own too), wrapping its core
// (dispatcher.ts).
// Only the leader serves: followers refuse with the leader's address so the agent moves there,
// since the leader is the one whose store writes (node state, task status) need no forwarding.
// The caller is whoever its client certificate says: ids in requests are never trusted.
// Liveness follows swarmkit: a session per node, heartbeats with a deadline, and a node whose
// deadline passes is marked down so the orchestrator replaces its tasks elsewhere.
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import {
  AssignmentsType,
  type Assignment,
  type AssignmentsMessage,
  type AssignmentsRequest,
  type DispatcherServer as DispatcherServerImpl,
  type NodeDescription,
  type SessionMessage,
  type SessionRequest,
  type TaskStatus,
} from "../../proto/gen/cluster.js";
import type { TaskAssignment, TaskState, TaskStatusReport } from "../../shared/cluster.js";
import { TASK_STATES } from "../../shared/cluster.js";
import type { NetworkState } from "../../shared/network-state.js";
import { isShoalError, messageOf, type ErrorKind } from "../../shared/errors.js";
import { LEADER_METADATA } from "../../shared/grpc-tls.js";
import type { Logger } from "../../shared/logging.js";
import { certifiedCaller, storeCaller, type PeerCall } from "../auth/caller.js";
import type { ClusterStore } from "../store/store.js";
import type { NodeObject } from "../store/types.js";
import { diffAssignments, nodesTouched, type Dispatcher } from "./dispatcher.js";
import { NodeLiveness } from "./liveness.js";
import { nodeAddress } from "./node-address.js";
import { retryConflicts } from "./retry-conflicts.js";

export interface DispatcherServerOptions {
  store: ClusterStore;
  core: Dispatcher;
  isLeader(): boolean;
  leaderAddr(): string | undefined;
  managers(): Array<{ nodeId: string; addr: string }>;
  caPem(): string;
  /**
   * Fixed for tests; otherwise the cluster's `Dispatcher.HeartbeatPeriod` (`swarm update
   * --dispatcher-heartbeat`), 1000 when unset.
   */
  heartbeatPeriodMs?: number;
  /** A node is down after period × missed without a heartbeat. Default 3. */
  missedHeartbeats?: number;
  /** The cluster's network state now (cached by the caller); sent to every agent when it changes. */
  networkState?: () => NetworkState;
  log: Logger;
}

/** Bursts of commits (a scale to 100) become one incremental message. */
/** How long a stopping overlay task waits at most for every host to drop it from its rules. */
const DRAIN_MAX_MS = 2000;
const DRAIN_POLL_MS = 50;
const COALESCE_MS = 10;

type Status = Partial<grpc.StatusObject>;
type SurfaceCall = PeerCall;
type StreamCall<Req, Res> = grpc.ServerWritableStream<Req, Res>;

class CallError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
    readonly metadata?: grpc.Metadata,
  ) {
    super(message);
  }
}

const CODES: Record<ErrorKind, grpc.status> = {
  invalid: grpc.status.INVALID_ARGUMENT,
  unauthorized: grpc.status.UNAUTHENTICATED,
  forbidden: grpc.status.PERMISSION_DENIED,
  not_found: grpc.status.NOT_FOUND,
  conflict: grpc.status.ABORTED,
  not_modified: grpc.status.FAILED_PRECONDITION,
  internal: grpc.status.INTERNAL,
  not_implemented: grpc.status.UNIMPLEMENTED,
  unavailable: grpc.status.UNAVAILABLE,
};

function statusOf(e: unknown): Status {
  if (e instanceof CallError) return { code: e.code, details: e.message, metadata: e.metadata };
  if (isShoalError(e)) return { code: CODES[e.kind], details: e.message };
  return { code: grpc.status.INTERNAL, details: messageOf(e) };
}

function toProto(t: TaskAssignment): Assignment {
  return {
    id: t.id,
    serviceId: t.serviceId,
    serviceName: t.serviceName,
    slot: t.slot,
    specJson: Buffer.from(JSON.stringify(t.spec)),
    desiredState: t.desiredState,
    state: t.state,
    networks: t.networks ?? [],
  };
}

function toReport(s: TaskStatus): TaskStatusReport {
  if (!TASK_STATES.has(s.state))
    throw new CallError(grpc.status.INVALID_ARGUMENT, `task ${s.taskId}: unknown state "${s.state}"`);
  return {
    taskId: s.taskId,
    state: s.state as TaskState,
    message: s.message,
    ...(s.err ? { err: s.err } : {}),
    ...(s.containerId ? { containerId: s.containerId } : {}),
    ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
  };
}

/**
 * The node as its session request describes it; unchanged fields stay as stored. `addr` is the
 * address to record (from the connection, or the checked reported one), if any.
 */
function described(n: NodeObject, d: NodeDescription | undefined, addr: string | undefined): NodeObject {
  if (!d) return { ...structuredClone(n), Status: { ...n.Status, Addr: addr ?? n.Status.Addr } };
  return {
    ...n,
    Description: {
      Hostname: d.hostname || n.Description.Hostname,
      Platform: {
        Architecture: d.architecture || n.Description.Platform.Architecture,
        OS: d.os || n.Description.Platform.OS,
      },
      Resources: {
        NanoCPUs: d.nanoCpus || n.Description.Resources.NanoCPUs,
        MemoryBytes: d.memoryBytes || n.Description.Resources.MemoryBytes,
      },
    },
    Status: { ...n.Status, Addr: addr ?? n.Status.Addr },
  };
}

/** One open server stream; ending it twice, or after the client went away, does nothing. */
class Stream<Req, Res> {
  private ended = false;
  private readonly cleanups: Array<() => void> = [];

  constructor(readonly call: StreamCall<Req, Res>) {
    call.on("cancelled", () => this.end());
    call.on("error", () => this.end());
  }

  get open(): boolean {
    return !this.ended && !this.call.cancelled;
  }

  onEnd(fn: () => void): void {
    if (this.ended) fn();
    else this.cleanups.push(fn);
  }

  send(msg: Res): void {
    if (this.open) this.call.write(msg);
  }

  end(status?: Status): void {
    if (this.ended) return;
    this.ended = true;
    for (const fn of this.cleanups.splice(0)) fn();
    if (this.call.cancelled) return;
    if (status) this.call.emit("error", status);
    else this.call.end();
  }
}

interface Session {
  id: string;
  nodeId: string;
  stream: Stream<SessionRequest, SessionMessage>;
  /** What the last SessionMessage said (managers, role), to send again only on a change. */
  said: string;
}

/** The least `--dispatcher-heartbeat` may set (the control API refuses less). */
const MIN_PERIOD_MS = 100;

export class DispatcherServer {
  private readonly missed: number;
  private readonly sessions = new Map<string, Session>();
  /** Nodes watched for heartbeats while leading, and their ready/down writes. */
  private readonly liveness: NodeLiveness;
  /** The network state version each node said in its last heartbeat it has applied. */
  private readonly networkApplied = new Map<string, number>();
  /**
   * Tasks on overlay networks being shut down: the network state version that first left them
   * out of DNS and load balancing, and when. Their node hears of the shutdown only once every
   * connected node has applied that version (or after DRAIN_MAX_MS), so no host still sends
   * connections to a container that is stopping.
   */
  private readonly draining = new Map<string, { version: number; since: number }>();
  private leading = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private refreshQueued = false;
  /** Open assignment streams per node: what to run when the node's tasks may have changed. */
  private readonly assignmentStreams = new Map<string, Set<() => void>>();
  /** What managers() said at the last look, to tell sessions only of a change. */
  private managersSaid = "";

  constructor(private readonly o: DispatcherServerOptions) {
    this.missed = o.missedHeartbeats ?? 3;
    // Deadlines are checked a few times per period (the shortest a cluster may set, at worst).
    const checkEveryMs = Math.max(20, Math.floor(Math.min(this.periodMs, 1000) / 4));
    this.liveness = new NodeLiveness({
      store: o.store,
      leading: () => this.leading && !this.closed,
      timeoutMs: () => this.timeoutMs,
      retryMs: () => this.periodMs,
      checkEveryMs,
      log: o.log,
    });
    this.timer = setInterval(() => this.tick(), checkEveryMs);
    // One subscription for every stream: a commit costs a look at its events, not one per node.
    this.unsubscribe = o.store.subscribe((events) => {
      if (events.length === 0 || events.some((e) => e.table === "nodes")) this.queueRefresh();
      // The network state is everyone's: with it, any commit may concern every stream (each
      // stream sends it only when its version moved).
      const touched = this.o.networkState ? "all" : nodesTouched(events);
      for (const [nodeId, kicks] of this.assignmentStreams)
        if (touched === "all" || touched.has(nodeId)) for (const kick of kicks) kick();
    });
  }

  /** The heartbeat period agents are told now: a cluster update applies at their next heartbeat. */
  private get periodMs(): number {
    if (this.o.heartbeatPeriodMs !== undefined) return this.o.heartbeatPeriodMs;
    const ns = this.o.store.view((tx) => tx.list("clusters")[0]?.Spec.Dispatcher);
    const period = (ns as { HeartbeatPeriod?: unknown } | undefined)?.HeartbeatPeriod;
    if (typeof period !== "number" || !(period > 0)) return 1000;
    return Math.max(MIN_PERIOD_MS, Math.round(period / 1e6));
  }

  /** A node is down after this long without a heartbeat. */
  private get timeoutMs(): number {
    return this.periodMs * this.missed;
  }

  /**
   * The node's assignments with each overlay task whose shutdown is not yet drained from every
   * host's rules shown as it was last sent (still running); `holding` says to look again soon.
   */
  private holdUntilDrained(
    now: TaskAssignment[],
    sent: Map<string, string>,
  ): { now: TaskAssignment[]; holding: boolean } {
    const state = this.o.networkState?.();
    if (!state) return { now, holding: false };
    let holding = false;
    const out = now.map((t) => {
      const before = sent.get(t.id);
      if (t.desiredState === "running" || !t.networks || !before) return t;
      const previous = JSON.parse(before) as TaskAssignment;
      if (previous.desiredState !== "running") return t;
      let d = this.draining.get(t.id);
      if (!d) {
        d = { version: state.version, since: Date.now() };
        this.draining.set(t.id, d);
      }
      const version = d.version;
      const applied = [...this.sessions.values()].every(
        (s) => (this.networkApplied.get(s.nodeId) ?? 0) >= version,
      );
      if (applied || Date.now() - d.since > DRAIN_MAX_MS) {
        this.draining.delete(t.id);
        return t;
      }
      holding = true;
      return previous;
    });
    return { now: out, holding };
  }

  /** Node id → the network state version it has applied (from heartbeats; this leader's view). */
  networkConvergence(): ReadonlyMap<string, number> {
    return this.networkApplied;
  }

  /** The lead's hook on a Raft role change; also noticed by polling isLeader(). */
  leadershipChanged(leading: boolean): void {
    if (this.closed || leading === this.leading) return;
    this.leading = leading;
    this.liveness.clear();
    if (leading) {
      // A failover must not mark down nodes that were heartbeating to the old leader: every
      // node gets a whole timeout to find this manager.
      for (const n of this.o.store.view((tx) => tx.list("nodes")))
        if (n.Status.State !== "down") this.liveness.alive(n.ID);
      this.o.log.info({ nodes: this.liveness.size }, "dispatcher: leading; waiting for agents' heartbeats");
      return;
    }
    this.o.log.info({ sessions: this.sessions.size }, "dispatcher: no longer leading; ending agent sessions");
    for (const s of [...this.sessions.values()]) this.endSession(s, this.notLeader());
  }

  implementation(): DispatcherServerImpl {
    return {
      session: (call) => void this.serveSession(call),
      heartbeat: (call, callback) => {
        try {
          const session = this.sessionOf(call, call.request.sessionId);
          this.liveness.heartbeat(session.nodeId);
          this.networkApplied.set(session.nodeId, call.request.networkVersion);
          callback(null, { periodMs: this.periodMs });
        } catch (e) {
          callback(statusOf(e));
        }
      },
      assignments: (call) => this.serveAssignments(call),
      updateTaskStatus: (call, callback) => {
        void (async () => {
          const session = this.sessionOf(call, call.request.sessionId);
          const reports = call.request.updates.map(toReport);
          await retryConflicts(() => this.o.core.report(session.nodeId, reports));
        })().then(
          () => callback(null, {}),
          (e: unknown) => callback(statusOf(e)),
        );
      },
    };
  }

  /** Stop the timers and end every stream (the daemon is stopping, or the server goes). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.unsubscribe();
    for (const s of [...this.sessions.values()])
      this.endSession(s, { code: grpc.status.UNAVAILABLE, details: "the manager is stopping" });
    this.liveness.clear();
  }

  // ---- calls --------------------------------------------------------------------------------

  private notLeader(): CallError {
    const md = new grpc.Metadata();
    const leader = this.o.leaderAddr();
    if (leader) md.set(LEADER_METADATA, leader);
    return new CallError(grpc.status.UNAVAILABLE, "not the leader", md);
  }

  /** Who calls, from its certificate; refuses callers that are not (or no longer) cluster nodes. */
  private admit(call: SurfaceCall): string {
    if (this.closed) throw new CallError(grpc.status.UNAVAILABLE, "the manager is stopping");
    const who = certifiedCaller(call, this.o.caPem());
    if (!this.syncLeadership()) throw this.notLeader();
    return storeCaller(this.o.store, who, "node").nodeId;
  }

  private sessionOf(call: SurfaceCall, sessionId: string): Session {
    const nodeId = this.admit(call);
    const s = this.sessions.get(nodeId);
    if (!s || s.id !== sessionId)
      throw new CallError(
        grpc.status.NOT_FOUND,
        `session ${sessionId || "(none)"} of node ${nodeId} is not open on this manager: open a new session`,
      );
    return s;
  }

  private async serveSession(call: StreamCall<SessionRequest, SessionMessage>): Promise<void> {
    const stream = new Stream(call);
    let nodeId: string;
    try {
      nodeId = this.admit(call);
      const addr = this.addressOf(call, nodeId, call.request);
      await this.liveness.arrive(nodeId, (n) => described(n, call.request.description, addr));
      if (!this.syncLeadership()) throw this.notLeader();
    } catch (e) {
      stream.end(statusOf(e));
      return;
    }
    if (!stream.open) return;
    const old = this.sessions.get(nodeId);
    if (old)
      this.endSession(old, {
        code: grpc.status.ABORTED,
        details: "replaced by a newer session of this node",
      });
    const session: Session = { id: randomBytes(12).toString("hex"), nodeId, stream, said: "" };
    this.sessions.set(nodeId, session);
    // The node is not down because its stream closed: only a missed deadline says that.
    stream.onEnd(() => {
      if (this.sessions.get(nodeId) === session) this.sessions.delete(nodeId);
    });
    this.o.log.info({ node: nodeId, session: session.id }, "dispatcher: agent session opened");
    this.tell(session);
  }

  /**
   * The address to record for the node: its connection's, or the one it reports once checked
   * (node-address.ts). A reported address that is not an IPv4 address refuses the session.
   */
  private addressOf(
    call: SurfaceCall & { getPeer(): string },
    nodeId: string,
    req: SessionRequest,
  ): string | undefined {
    const reported = req.description?.addr;
    let addr: string | undefined;
    try {
      addr = nodeAddress(nodeId, call.getPeer(), reported);
    } catch (e) {
      this.o.log.warn(
        { node: nodeId, peer: call.getPeer(), reported, err: messageOf(e) },
        "dispatcher: refused a session: the node reported an address that is not an IPv4 address",
      );
      throw e;
    }
    // The connection's address wins; the other nodes' VXLAN entries will point there.
    if (reported && addr && addr !== reported)
      this.o.log.warn(
        { node: nodeId, reported, recorded: addr },
        "dispatcher: a node connects from another address than it advertises; recording the connection's (set its --advertise-addr to it)",
      );
    return addr;
  }

  /** Send the session a SessionMessage if what it would say changed since the last one. */
  private tell(s: Session, managers = this.o.managers()): void {
    const node = this.o.store.view((tx) => tx.get("nodes", s.nodeId));
    if (!node) {
      this.endSession(s, {
        code: grpc.status.PERMISSION_DENIED,
        details: `node ${s.nodeId} was removed from the cluster`,
      });
      return;
    }
    const msg: SessionMessage = {
      sessionId: s.id,
      managers,
      heartbeatPeriodMs: this.periodMs,
      role: node.Spec.Role,
    };
    const said = JSON.stringify([msg.managers, msg.role]);
    if (said === s.said) return;
    s.said = said;
    s.stream.send(msg);
  }

  private endSession(s: Session, status: Status): void {
    if (this.sessions.get(s.nodeId) === s) this.sessions.delete(s.nodeId);
    s.stream.end(status);
  }

  private serveAssignments(call: StreamCall<AssignmentsRequest, AssignmentsMessage>): void {
    const stream = new Stream(call);
    let session: Session;
    try {
      session = this.sessionOf(call, call.request.sessionId);
    } catch (e) {
      stream.end(statusOf(e));
      return;
    }
    const { nodeId } = session;
    const sent = new Map<string, string>();
    let sentNetworkVersion = -1;
    /** The network state, if it changed since this stream last sent it. */
    const networkNews = (): Buffer => {
      const state = this.o.networkState?.();
      if (!state || state.version === sentNetworkVersion) return Buffer.alloc(0);
      sentNetworkVersion = state.version;
      return Buffer.from(JSON.stringify(state));
    };
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      timer = undefined;
      if (!stream.open) return;
      const { now, holding } = this.holdUntilDrained(this.o.core.assignments(nodeId), sent);
      if (holding) timer = setTimeout(flush, DRAIN_POLL_MS);
      const { update, remove } = diffAssignments(sent, now);
      const networkState = networkNews();
      if (update.length === 0 && remove.length === 0 && networkState.length === 0) return;
      stream.send({
        type: AssignmentsType.ASSIGNMENTS_TYPE_INCREMENTAL,
        update: update.map(toProto),
        remove,
        networkState,
      });
    };
    const kick = (): void => {
      timer ??= setTimeout(flush, COALESCE_MS);
    };
    const kicks = this.assignmentStreams.get(nodeId) ?? new Set();
    kicks.add(kick);
    this.assignmentStreams.set(nodeId, kicks);
    stream.onEnd(() => {
      kicks.delete(kick);
      if (kicks.size === 0 && this.assignmentStreams.get(nodeId) === kicks)
        this.assignmentStreams.delete(nodeId);
      if (timer) clearTimeout(timer);
    });
    // The assignments live and die with the session they were asked under.
    session.stream.onEnd(() =>
      stream.end(
        this.syncLeadership()
          ? { code: grpc.status.NOT_FOUND, details: "the session ended: open a new session" }
          : statusOf(this.notLeader()),
      ),
    );
    const all = this.o.core.assignments(nodeId);
    diffAssignments(sent, all);
    stream.send({
      type: AssignmentsType.ASSIGNMENTS_TYPE_COMPLETE,
      update: all.map(toProto),
      remove: [],
      networkState: networkNews(),
    });
  }

  // ---- liveness -----------------------------------------------------------------------------

  private syncLeadership(): boolean {
    const leading = !this.closed && this.o.isLeader();
    if (leading !== this.leading) this.leadershipChanged(leading);
    return leading;
  }

  private tick(): void {
    if (!this.syncLeadership()) return;
    for (const nodeId of this.liveness.check()) {
      const s = this.sessions.get(nodeId);
      if (s)
        this.endSession(s, {
          code: grpc.status.UNAVAILABLE,
          details: "heartbeat failure: open a new session",
        });
    }
    // managers() may change without a store event (a Raft membership change).
    const managers = this.o.managers();
    const said = JSON.stringify(managers);
    if (said === this.managersSaid) return;
    this.managersSaid = said;
    for (const s of [...this.sessions.values()]) this.tell(s, managers);
  }

  private queueRefresh(): void {
    if (this.refreshQueued || this.closed) return;
    this.refreshQueued = true;
    setImmediate(() => {
      this.refreshQueued = false;
      if (this.closed) return;
      const managers = this.o.managers();
      for (const s of [...this.sessions.values()]) this.tell(s, managers);
    });
  }
}
