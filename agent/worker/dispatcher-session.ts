// The agent's session with the leader's dispatcher over gRPC: the remote counterpart of the in-process
// dispatcher, behind the same AssignmentChannel so the worker does not know which it has.
// The session is with the leader (followers redirect), kept alive by heartbeats; assignments
// arrive whole, then as diffs. The node's set is also kept on disk, so after a daemon restart
// with no manager reachable the worker keeps running what it ran. Task states are the agent's
// to tell: they are queued while disconnected and told again to every new session, so a
// leader elected after a failover (or one that missed reports) learns them.
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  AssignmentsType,
  DispatcherClient,
  type Assignment,
  type AssignmentsMessage,
  type NodeDescription,
  type SessionMessage,
  type TaskStatus,
} from "../../proto/gen/cluster.js";
import type { AssignmentChannel, TaskAssignment, TaskState, TaskStatusReport } from "../../shared/cluster.js";
import { TASK_STATES } from "../../shared/cluster.js";
import { messageOf } from "../../shared/errors.js";
import { ensureDir, readJsonIfExists, writeJsonAtomic } from "../../shared/fsutil.js";
import {
  channelOptions,
  clientCredentials,
  LEADER_METADATA,
  MANAGER_TLS_NAME,
  type TlsIdentity,
} from "../../shared/grpc-tls.js";
import type { Logger } from "../../shared/logging.js";
import { checkNetworkState, type NetworkState } from "../../shared/network-state.js";

export interface DispatcherSessionOptions {
  nodeId: string;
  /** host:port of the managers known at start; replaced by what the managers tell. */
  managers: string[];
  /** The node's current certificate; a renewed one is used from the next connection on. */
  identity(): TlsIdentity;
  description: NodeDescription;
  /** host:port of this node's gRPC server. */
  listenAddr: string;
  /** Where assignments.json is kept. */
  stateDir: string;
  log: Logger;
  onRole?(role: string): void;
  onManagers?(managers: Array<{ nodeId: string; addr: string }>): void;
  /** The cluster's network state, whenever a newer one arrives (and the stored one at start). */
  onNetworkState?(state: NetworkState): void;
}

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 2000;
/** A manager must open the session within this time or the next one is tried. */
const CONNECT_TIMEOUT_MS = 5000;
const REPORT_TIMEOUT_MS = 10_000;
/** Redirects followed in a row before backing off (two followers each naming the other). */
const MAX_REDIRECTS = 3;

interface Stored {
  nodeId: string;
  tasks: TaskAssignment[];
  network?: NetworkState;
}

/** How one connection ended, and what to try next. */
interface LinkEnd {
  established: boolean;
  reason: string;
  redirect?: string;
  /** Reconnect at once (a renewed certificate), not after a backoff. */
  now?: boolean;
}

function fromProto(a: Assignment): TaskAssignment {
  if (!TASK_STATES.has(a.state) || !TASK_STATES.has(a.desiredState))
    throw new Error(`task ${a.id}: unknown state "${a.state}" or desired state "${a.desiredState}"`);
  return {
    id: a.id,
    serviceId: a.serviceId,
    serviceName: a.serviceName,
    slot: a.slot,
    spec: JSON.parse(Buffer.from(a.specJson).toString("utf8")) as TaskAssignment["spec"],
    desiredState: a.desiredState as TaskState,
    state: a.state as TaskState,
    ...(a.networks.length > 0
      ? {
          networks: a.networks.map((n) => ({
            networkId: n.networkId,
            networkName: n.networkName,
            address: n.address,
            aliases: n.aliases,
          })),
        }
      : {}),
  };
}

function toProto(r: TaskStatusReport): TaskStatus {
  return {
    taskId: r.taskId,
    state: r.state,
    message: r.message,
    err: r.err ?? "",
    containerId: r.containerId ?? "",
    exitCode: r.exitCode,
  };
}

function leaderOf(e: grpc.ServiceError): string | undefined {
  const v = e.metadata?.get(LEADER_METADATA)[0];
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** One connection to one manager: its session, heartbeats and assignment stream. */
class Link {
  readonly client: DispatcherClient;
  readonly certPem: string;
  sessionId = "";
  periodMs = 1000;
  private readonly calls: grpc.ClientReadableStream<unknown>[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private finished = false;
  private resolveEnd!: (end: LinkEnd) => void;
  readonly ended = new Promise<LinkEnd>((r) => (this.resolveEnd = r));

  constructor(
    readonly addr: string,
    identity: TlsIdentity,
  ) {
    this.certPem = identity.certPem;
    this.client = new DispatcherClient(addr, clientCredentials(identity), channelOptions(MANAGER_TLS_NAME));
  }

  get open(): boolean {
    return !this.finished;
  }

  get established(): boolean {
    return this.sessionId !== "";
  }

  track<T>(call: grpc.ClientReadableStream<T>): grpc.ClientReadableStream<T> {
    this.calls.push(call as grpc.ClientReadableStream<unknown>);
    return call;
  }

  later(ms: number, fn: () => void): void {
    if (this.finished) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.finished) fn();
    }, ms);
    this.timers.add(t);
  }

  finish(end: Omit<LinkEnd, "established">): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    // Cancelling makes each call emit a CANCELLED error, which its listener ignores now.
    for (const c of this.calls) c.cancel();
    this.client.close();
    this.resolveEnd({ ...end, established: this.established });
  }

  fail(what: string, e: grpc.ServiceError): void {
    this.finish({ reason: `${what}: ${e.details || e.message}`, redirect: leaderOf(e) });
  }
}

export class DispatcherSession implements AssignmentChannel {
  private managers: string[];
  private cursor = 0;
  private leaderHint: string | undefined;
  private link: Link | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private sleepTimer: NodeJS.Timeout | undefined;

  /** The node's set, or undefined until one was loaded from disk or received. */
  private tasks: Map<string, TaskAssignment> | undefined;
  private network: NetworkState | undefined;
  private applied = 0;

  /** The network state version this node has applied; heartbeats tell it. */
  get networkApplied(): number {
    return this.applied;
  }

  /**
   * Set by the agent after applying a state. Told at once, not at the next heartbeat: a task
   * being stopped waits for every host to have dropped it from DNS and load balancing.
   */
  set networkApplied(version: number) {
    if (version === this.applied) return;
    this.applied = version;
    const link = this.link;
    if (!link?.established || !link.open) return;
    link.client.heartbeat(
      { sessionId: link.sessionId, networkVersion: version },
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      () => undefined,
    );
  }
  private readonly watchers = new Set<(tasks: TaskAssignment[]) => void>();
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  /** Reports not yet accepted by a manager: the newest per task. */
  private readonly pending = new Map<string, TaskStatusReport>();
  /** The newest state reported per assigned task, told again to each new session. */
  private readonly told = new Map<string, TaskStatusReport>();
  private flushing = false;
  private role: string | undefined;
  private managerList = "";

  constructor(private readonly o: DispatcherSessionOptions) {
    this.managers = [...o.managers];
  }

  /** A session that has loaded the stored assignments and started connecting. */
  static async open(o: DispatcherSessionOptions): Promise<DispatcherSession> {
    const s = new DispatcherSession(o);
    await s.start();
    return s;
  }

  /** Load the stored set (watchers get it at once), then connect in the background. */
  async start(): Promise<void> {
    if (this.loop) return;
    await this.load();
    if (this.closed) return;
    this.loop = this.run();
  }

  /** The manager this node has a session with now, if any. */
  get manager(): string | undefined {
    return this.link?.established && this.link.open ? this.link.addr : undefined;
  }

  watch(nodeId: string, onChange: (tasks: TaskAssignment[]) => void): () => void {
    this.checkNode(nodeId);
    this.watchers.add(onChange);
    if (this.tasks) onChange([...this.tasks.values()].map((t) => structuredClone(t)));
    return () => this.watchers.delete(onChange);
  }

  /** Queues the reports; they reach a manager as soon as one is reachable. */
  report(nodeId: string, reports: TaskStatusReport[]): Promise<void> {
    try {
      this.checkNode(nodeId);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.closed) return Promise.resolve();
    for (const r of reports) {
      this.pending.set(r.taskId, r);
      this.told.set(r.taskId, r);
    }
    this.kickFlush();
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.link?.finish({ reason: "closed" });
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.wake?.();
    this.watchers.clear();
    await this.loop;
    await this.writing;
  }

  private checkNode(nodeId: string): void {
    if (nodeId !== this.o.nodeId)
      throw new Error(`this session is node ${this.o.nodeId}'s, not node ${nodeId}'s`);
  }

  // ---- connecting ---------------------------------------------------------------------------

  private async run(): Promise<void> {
    let backoff = BACKOFF_START_MS;
    let redirects = 0;
    let wasUp = false;
    while (!this.closed) {
      const addr = this.nextAddr();
      if (addr) {
        const end = await this.connect(addr);
        if (this.closed) break;
        if (end.established) {
          backoff = BACKOFF_START_MS;
          redirects = 0;
        }
        if (end.established || wasUp)
          this.o.log.info(
            { manager: addr, reason: end.reason, leader: end.redirect },
            "manager session ended",
          );
        else
          this.o.log.debug(
            { manager: addr, reason: end.reason, leader: end.redirect },
            "no session with manager",
          );
        wasUp = end.established;
        if (end.redirect && end.redirect !== addr && redirects < MAX_REDIRECTS) {
          redirects++;
          this.leaderHint = end.redirect;
          continue;
        }
        if (end.now) continue;
      }
      redirects = 0;
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    }
  }

  private nextAddr(): string | undefined {
    const hint = this.leaderHint;
    this.leaderHint = undefined;
    if (hint) return hint;
    if (this.managers.length === 0) return undefined;
    return this.managers[this.cursor++ % this.managers.length];
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(resolve, ms);
    });
  }

  private connect(addr: string): Promise<LinkEnd> {
    let link: Link;
    try {
      link = new Link(addr, this.o.identity());
    } catch (e) {
      return Promise.resolve({ established: false, reason: `cannot connect: ${messageOf(e)}` });
    }
    this.link = link;
    link.later(CONNECT_TIMEOUT_MS, () => {
      if (!link.established) link.finish({ reason: "the manager did not open a session in time" });
    });
    const call = link.track(
      link.client.session({ description: this.o.description, listenAddr: this.o.listenAddr }),
    );
    call.on("data", (msg: SessionMessage) => this.onSessionMessage(link, msg));
    call.on("error", (e: grpc.ServiceError) => link.fail("session", e));
    call.on("end", () => link.finish({ reason: "the manager ended the session" }));
    return link.ended;
  }

  private onSessionMessage(link: Link, msg: SessionMessage): void {
    if (!link.open) return;
    const first = !link.established;
    link.sessionId = msg.sessionId;
    link.periodMs = msg.heartbeatPeriodMs || link.periodMs;
    if (msg.managers.length > 0) {
      const list = JSON.stringify(msg.managers);
      this.managers = msg.managers.map((m) => m.addr);
      if (list !== this.managerList) {
        this.managerList = list;
        this.callback("onManagers", () => this.o.onManagers?.(msg.managers));
      }
    }
    if (msg.role && msg.role !== this.role) {
      this.role = msg.role;
      this.callback("onRole", () => this.o.onRole?.(msg.role));
    }
    if (!first) return;
    this.o.log.info({ manager: link.addr, session: msg.sessionId }, "manager session opened");
    this.heartbeat(link);
    const assignments = link.track(link.client.assignments({ sessionId: msg.sessionId }));
    assignments.on("data", (m: AssignmentsMessage) => {
      if (link.open) this.onAssignments(m);
    });
    assignments.on("error", (e: grpc.ServiceError) => link.fail("assignments", e));
    assignments.on("end", () => link.finish({ reason: "the manager ended the assignments stream" }));
    // A new session may be a new leader: it hears every task's newest state again.
    for (const [id, r] of this.told) if (!this.pending.has(id)) this.pending.set(id, r);
    this.kickFlush();
  }

  private heartbeat(link: Link): void {
    link.later(link.periodMs, () => {
      if (this.o.identity().certPem !== link.certPem) {
        link.finish({ reason: "the node's certificate was renewed", now: true });
        return;
      }
      const deadline = Date.now() + Math.max(1000, 2 * link.periodMs);
      const request = { sessionId: link.sessionId, networkVersion: this.networkApplied };
      link.client.heartbeat(request, new grpc.Metadata(), { deadline }, (e, res) => {
        if (!link.open) return;
        if (e) return link.fail("heartbeat", e);
        if (res.periodMs > 0) link.periodMs = res.periodMs;
        this.heartbeat(link);
      });
    });
  }

  private callback(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.o.log.warn({ err: messageOf(e) }, `manager session: ${what} failed`);
    }
  }

  // ---- assignments --------------------------------------------------------------------------

  private onAssignments(m: AssignmentsMessage): void {
    const next = new Map(m.type === AssignmentsType.ASSIGNMENTS_TYPE_COMPLETE ? [] : (this.tasks ?? []));
    for (const a of m.update) {
      try {
        next.set(a.id, fromProto(a));
      } catch (e) {
        this.o.log.warn({ task: a.id, err: messageOf(e) }, "ignoring an assignment the agent cannot read");
      }
    }
    for (const id of m.remove) next.delete(id);
    if (m.networkState.length > 0) this.onNetworkMessage(m.networkState);
    const same = this.tasks !== undefined && JSON.stringify([...this.tasks]) === JSON.stringify([...next]);
    if (same) return;
    this.tasks = next;
    // States of tasks this node no longer holds need not be told to later sessions.
    for (const id of this.told.keys()) if (!next.has(id) && !this.pending.has(id)) this.told.delete(id);
    this.persist();
    this.notify();
  }

  private onNetworkMessage(raw: Uint8Array): void {
    let state: NetworkState;
    try {
      const checked = checkNetworkState(JSON.parse(Buffer.from(raw).toString()));
      state = checked.state;
      for (const reason of checked.refused)
        this.o.log.warn({ version: state.version, reason }, "left out of the network state: not valid");
    } catch (e) {
      this.o.log.warn({ err: messageOf(e) }, "ignoring a network state the agent cannot read");
      return;
    }
    if (this.network && state.version <= this.network.version) return;
    this.network = state;
    this.persist();
    this.callback("network state", () => this.o.onNetworkState?.(structuredClone(state)));
  }

  private notify(): void {
    const list = [...(this.tasks?.values() ?? [])];
    for (const fn of [...this.watchers])
      this.callback("watch", () => fn(list.map((t) => structuredClone(t))));
  }

  private get file(): string {
    return join(this.o.stateDir, "assignments.json");
  }

  private async load(): Promise<void> {
    try {
      const stored = await readJsonIfExists<Stored>(this.file);
      if (!stored || stored.nodeId !== this.o.nodeId || !Array.isArray(stored.tasks)) return;
      if (this.tasks) return;
      this.tasks = new Map(stored.tasks.map((t) => [t.id, t]));
      if (stored.network && !this.network) {
        const network = stored.network;
        this.network = network;
        this.callback("network state", () => this.o.onNetworkState?.(structuredClone(network)));
      }
      this.o.log.info(
        { tasks: stored.tasks.length },
        "assignments loaded from disk until a manager is reached",
      );
      // Watchers that came before start() get the stored set now.
      this.notify();
    } catch (e) {
      this.o.log.warn(
        { file: this.file, err: messageOf(e) },
        "stored assignments unreadable; waiting for a manager",
      );
    }
  }

  /** Write the newest set; writes never overlap and a burst of changes ends with the last set. */
  private persist(): void {
    if (this.dirty) return;
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      const tasks = [...(this.tasks?.values() ?? [])];
      try {
        await ensureDir(this.o.stateDir);
        await writeJsonAtomic(this.file, {
          nodeId: this.o.nodeId,
          tasks,
          ...(this.network ? { network: this.network } : {}),
        } satisfies Stored);
      } catch (e) {
        this.o.log.warn({ file: this.file, err: messageOf(e) }, "could not store assignments");
      }
    });
  }

  // ---- status reports -----------------------------------------------------------------------

  private kickFlush(): void {
    const link = this.link;
    if (this.flushing || this.pending.size === 0 || !link?.established || !link.open) return;
    this.flushing = true;
    // Reports made in the same turn (a batch of task changes) go as one request.
    setImmediate(() => this.flush(link));
  }

  private flush(link: Link): void {
    if (!link.open || this.closed) {
      this.flushing = false;
      this.kickFlush();
      return;
    }
    const batch = [...this.pending.values()];
    this.pending.clear();
    const deadline = Date.now() + REPORT_TIMEOUT_MS;
    link.client.updateTaskStatus(
      { sessionId: link.sessionId, updates: batch.map(toProto) },
      new grpc.Metadata(),
      { deadline },
      (e) => {
        this.flushing = false;
        if (e) {
          const code = e.code;
          if (code === grpc.status.INVALID_ARGUMENT || code === grpc.status.PERMISSION_DENIED) {
            this.o.log.warn(
              { err: e.details, tasks: batch.length },
              "the manager refused task states; dropped",
            );
          } else {
            // Kept for the next session, unless a newer state of the task was reported since.
            for (const r of batch) if (!this.pending.has(r.taskId)) this.pending.set(r.taskId, r);
            link.fail("task status", e);
            return;
          }
        }
        this.kickFlush();
      },
    );
  }
}
