// A deterministic simulation of a Raft cluster: the real core, driver (RaftNode), WAL,
// snapshotter and key-value state machine, on a FakeDisk and a seeded fake network, in one
// process. Every random choice comes from one seed, so a failing run is replayed by its seed.
import { createHash } from "node:crypto";
import { FakeDisk } from "../helpers/fake-disk.js";
import { RaftNode } from "../../../manager/raft/driver/node.js";
import { KvStateMachine } from "../kv/state-machine.js";
import { encodeKvCommand, type KvOp, type KvResult } from "../kv/commands.js";
import { ProposalDroppedError } from "../../../manager/raft/core/errors.js";
import type { Message, NodeId } from "../../../manager/raft/core/types.js";
import type { KvOp as HistoryOp } from "../lin/checker.js";
import { Rand } from "./rand.js";
import { SimNetwork, type NetworkFaults } from "./network.js";

export interface SimOptions {
  seed: number;
  nodes: number;
  steps: number;
  clients: number;
  keys: string[];
  /** Per step: chance to crash a member (never more than a minority down at once). */
  crashRate: number;
  /** Per step: chance to start a partition (healed later). */
  partitionRate: number;
  /** Per step: chance to start a membership change (remove a member, add a fresh one). */
  membershipRate: number;
  network: NetworkFaults;
  snapshotEntries: number;
  /** Members seal their WAL and snapshots (RaftNodeOptions.encryptAtRest). */
  encryptAtRest?: boolean;
}

export class InvariantError extends Error {
  constructor(
    readonly seed: number,
    readonly step: number,
    message: string,
  ) {
    super(`seed ${seed}, step ${step}: ${message}`);
    this.name = "InvariantError";
  }
}

/** The state machine as the simulator sees it: the KV store plus a record of what it applied. */
class TracedStateMachine extends KvStateMachine {
  constructor(private readonly onApply: (index: number, digest: string) => void) {
    super();
  }
  override apply(index: number, data: Uint8Array): KvResult | undefined {
    if (index > this.applied) this.onApply(index, createHash("sha1").update(data).digest("hex").slice(0, 16));
    return super.apply(index, data);
  }
}

interface Member {
  id: NodeId;
  disk: FakeDisk;
  node?: RaftNode;
  sm?: TracedStateMachine;
  /** Step at which a crashed member comes back. */
  restartAt?: number;
  removed: boolean;
}

interface ClientState {
  id: string;
  seq: number;
  pending?: { op: HistoryOp; settled: boolean; timeoutAt: number };
}

export interface SimReport {
  seed: number;
  steps: number;
  committed: number;
  leaders: number;
  crashes: number;
  partitions: number;
  membershipChanges: number;
  history: HistoryOp[];
  messages: { sent: number; dropped: number };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export class SimCluster {
  readonly rand: Rand;
  private readonly netRand: Rand;
  private readonly diskRand: Rand;
  readonly net: SimNetwork;
  private readonly members = new Map<NodeId, Member>();
  private readonly clients: ClientState[] = [];
  /** index → digest of the entry applied there, by whichever member applied it first. */
  private readonly applied = new Map<number, string>();
  private readonly leaders = new Map<number, NodeId>();
  readonly history: HistoryOp[] = [];
  private clock = 0;
  private clientsActive = true;
  step = 0;
  private nextId: NodeId;
  private healAt = -1;
  private changing: Promise<void> | undefined;
  private stats = { crashes: 0, partitions: 0, membershipChanges: 0 };
  private deadlines: Array<{ step: number; reject: (e: Error) => void }> = [];

  constructor(readonly o: SimOptions) {
    this.rand = new Rand(o.seed);
    this.netRand = this.rand.fork();
    this.diskRand = this.rand.fork();
    this.net = new SimNetwork(this.netRand, o.network);
    this.nextId = o.nodes + 1;
    for (let i = 0; i < o.clients; i++) this.clients.push({ id: `c${i}`, seq: 0 });
  }

  private fail(message: string): never {
    throw new InvariantError(this.o.seed, this.step, message);
  }

  async start(): Promise<void> {
    const ids = Array.from({ length: this.o.nodes }, (_, i) => i + 1);
    for (const id of ids) {
      this.members.set(id, { id, disk: new FakeDisk(), removed: false });
      await this.boot(id, ids);
    }
  }

  private async boot(id: NodeId, bootstrapPeers?: NodeId[]): Promise<void> {
    const m = this.members.get(id)!;
    const nodeRand = this.rand.fork();
    m.sm = new TracedStateMachine((index, digest) => {
      const seen = this.applied.get(index);
      if (seen === undefined) this.applied.set(index, digest);
      else if (seen !== digest)
        this.fail(`member ${id} applied a different entry at index ${index} (state machine safety)`);
    });
    m.node = await RaftNode.open({
      id,
      bootstrapPeers,
      dir: `/raft/${id}`,
      disk: m.disk,
      transport: { send: (msgs) => this.send(msgs) },
      stateMachine: m.sm,
      rand: () => nodeRand.next(),
      electionTick: 10,
      heartbeatTick: 2,
      snapshotEntries: this.o.snapshotEntries,
      catchUpEntries: Math.max(2, Math.floor(this.o.snapshotEntries / 4)),
      segmentBytes: 4096,
      encryptAtRest: this.o.encryptAtRest,
      logger: { warn: () => undefined },
    });
  }

  private send(msgs: Message[]): void {
    for (const m of msgs) {
      if (m.type === "snap") {
        // The transport reports how a snapshot send went; raft waits for it before retrying.
        const delivered = this.net.send(m);
        const sender = this.members.get(m.from)?.node;
        if (!delivered) sender?.reportSnapshot(m.to, false);
        continue;
      }
      this.net.send(m);
    }
  }

  /** The real transport tells raft when a snapshot did not arrive; so does this one. */
  private snapshotLost(msg: Message): void {
    if (msg.type === "snap") this.members.get(msg.from)?.node?.reportSnapshot(msg.to, false);
  }

  private live(): Member[] {
    return [...this.members.values()].filter((m) => m.node && !m.removed);
  }

  private voters(): NodeId[] {
    for (const m of this.live()) return m.node!.status().confState.voters;
    return [];
  }

  // ---- one step of simulated time -------------------------------------------------------

  async runStep(): Promise<void> {
    this.step++;
    this.net.now = this.step;
    const { deliver, lost } = this.net.due();
    for (const msg of lost) this.snapshotLost(msg);
    for (const msg of deliver) {
      const to = this.members.get(msg.to);
      if (!to?.node || to.removed) {
        this.snapshotLost(msg);
        continue;
      }
      to.node.step(msg);
      if (msg.type === "snap") this.members.get(msg.from)?.node?.reportSnapshot(msg.to, true);
    }
    if (this.step % 2 === 0) for (const m of this.live()) m.node!.tick();
    for (const d of this.deadlines.filter((x) => x.step <= this.step)) d.reject(new Error("timed out"));
    this.faults();
    this.clientActions();
    await settle();
    await this.restarts();
    this.checkInvariants();
  }

  private faults(): void {
    const r = this.rand;
    const all = [...this.members.values()].filter((m) => !m.removed).map((m) => m.id);
    if (this.healAt === this.step) this.net.heal();
    if (this.healAt < this.step && r.chance(this.o.partitionRate)) {
      this.stats.partitions++;
      const victim = r.pick(all);
      const others = all.filter((x) => x !== victim);
      switch (r.int(0, 3)) {
        case 0:
          this.net.isolate(victim, all);
          break;
        case 1:
          // one-way: the victim hears everyone but nobody hears it
          for (const o of others) this.net.cutLink(victim, o);
          break;
        case 2:
          // partial: the victim loses one peer only
          if (others.length > 0) this.net.partition([victim], [r.pick(others)]);
          break;
        default: {
          const half = all.filter(() => r.chance(0.5));
          this.net.partition(
            half,
            all.filter((x) => !half.includes(x)),
          );
        }
      }
      this.healAt = this.step + r.int(20, 200);
    }
    const down = [...this.members.values()].filter((m) => !m.removed && !m.node).length;
    const maxDown = Math.floor((all.length - 1) / 2);
    if (down < maxDown && r.chance(this.o.crashRate)) {
      const m = this.members.get(r.pick(all))!;
      if (m.node) this.crash(m);
    }
    if (!this.changing && r.chance(this.o.membershipRate))
      this.changing = this.membershipChange().finally(() => (this.changing = undefined));
  }

  private crash(m: Member): void {
    this.stats.crashes++;
    m.node!.kill();
    m.node = undefined;
    m.sm = undefined;
    for (const msg of this.net.dropTo(m.id)) this.snapshotLost(msg);
    m.restartAt = this.step + this.rand.int(5, 100);
  }

  private async restarts(): Promise<void> {
    for (const m of this.members.values()) {
      if (m.removed || m.node || m.restartAt === undefined || m.restartAt > this.step) continue;
      m.restartAt = undefined;
      // Power loss at the moment of the crash: what was not synced may be gone or torn.
      m.disk = m.disk.crash(() => this.diskRand.next());
      await this.boot(m.id);
    }
  }

  /** A promise that fails once simulated time passes `steps` from now (raft waits may never settle). */
  private within<T>(p: Promise<T>, steps: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const d = { step: this.step + steps, reject };
      this.deadlines.push(d);
      p.then(resolve, reject).finally(() => (this.deadlines = this.deadlines.filter((x) => x !== d)));
    });
  }

  /** Remove a voter and add a fresh member (learner first, then promoted), one change at a time. */
  private async membershipChange(): Promise<void> {
    const leader = this.live().find((m) => m.node!.status().role === "leader");
    if (!leader) return;
    const voters = leader.node!.status().confState.voters;
    if (voters.length < this.o.nodes) return;
    this.stats.membershipChanges++;
    const victim = this.rand.pick(voters);
    const fresh = this.nextId++;
    try {
      // The fresh member starts empty and unconfigured; it waits until the leader adds it.
      this.members.set(fresh, { id: fresh, disk: new FakeDisk(), removed: false });
      await this.boot(fresh);
      await this.within(leader.node!.addMember(fresh), 600);
      await this.within(this.leaderNode().changeMembership({ type: "remove_node", nodeId: victim }), 300);
      const v = this.members.get(victim);
      if (v) {
        v.node?.kill();
        v.removed = true;
        v.node = undefined;
      }
    } catch {
      // leadership moved or the leader crashed: a later change will try again
    }
  }

  private leaderNode(): RaftNode {
    const l = this.live().find((m) => m.node!.status().role === "leader");
    if (!l) throw new Error("no leader");
    return l.node!;
  }

  private clientActions(): void {
    const r = this.rand;
    for (const c of this.clients) {
      if (c.pending && !c.pending.settled && this.step >= c.pending.timeoutAt) {
        // No answer: the outcome is unknown (the op may still take effect).
        c.pending.settled = true;
        c.pending = undefined;
      }
      if (!this.clientsActive || c.pending || !r.chance(0.3)) continue;
      const targets = this.live();
      if (targets.length === 0) continue;
      const node = r.pick(targets).node!;
      const key = r.pick(this.o.keys);
      const kind = r.int(0, 3);
      const value = `${c.id}.${c.seq + 1}`;
      const call = ++this.clock;
      c.seq++;
      let op: HistoryOp;
      let run: Promise<unknown>;
      if (kind === 0) {
        op = { kind: "put", key, value, call, return: Infinity, client: Number(c.id.slice(1)) };
        run = node.propose(encodeKvCommand({ client: c.id, seq: c.seq, cmd: { op: "put", key, value } }));
      } else if (kind === 1) {
        const expected = r.chance(0.5)
          ? undefined
          : `c${r.int(0, this.o.clients - 1)}.${r.int(1, Math.max(1, c.seq))}`;
        op = { kind: "cas", key, expected, value, call, return: Infinity, client: Number(c.id.slice(1)) };
        const cmd: KvOp = { op: "cas", key, expected: expected ?? null, value };
        run = node.propose(encodeKvCommand({ client: c.id, seq: c.seq, cmd }));
      } else if (kind === 2) {
        op = { kind: "get", key, call, return: Infinity, client: Number(c.id.slice(1)) };
        run = node.propose(encodeKvCommand({ client: c.id, seq: c.seq, cmd: { op: "get", key } }));
      } else {
        // A ReadIndex read: no log entry, served from this member's state machine once caught up.
        op = { kind: "get", key, call, return: Infinity, client: Number(c.id.slice(1)) };
        const sm = this.members.get(node.id)!.sm!;
        run = node.readBarrier().then(() => ({ ok: true, value: sm.read(key) }));
      }
      const pending = { op, settled: false, timeoutAt: this.step + r.int(50, 300) };
      c.pending = pending;
      this.history.push(op);
      run.then(
        (res) => {
          if (pending.settled) return;
          pending.settled = true;
          if (c.pending === pending) c.pending = undefined;
          const result = res as KvResult;
          op.return = ++this.clock;
          if (op.kind === "get") op.result = result.value ?? undefined;
          if (op.kind === "cas") op.ok = result.ok;
        },
        (e: unknown) => {
          if (pending.settled) return;
          pending.settled = true;
          if (c.pending === pending) c.pending = undefined;
          // Dropped before it entered the log: it never happened. Anything else: unknown.
          if (e instanceof ProposalDroppedError && !/timed out/.test(e.message)) {
            this.history.splice(this.history.indexOf(op), 1);
          }
        },
      );
    }
  }

  // ---- invariants -----------------------------------------------------------------------

  private checkInvariants(): void {
    const live = this.live();
    for (const m of live) {
      const s = m.node!.status();
      if (s.role === "leader") {
        const other = this.leaders.get(s.term);
        if (other !== undefined && other !== m.id)
          this.fail(`two leaders in term ${s.term}: ${other} and ${m.id}`);
        this.leaders.set(s.term, m.id);
      }
    }
    // Log Matching: up to the lower commit index of two members, their logs hold the same terms.
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) {
        const a = live[i].node!;
        const b = live[j].node!;
        const upTo = Math.min(a.status().commit, b.status().commit);
        const ta = a.logTerms(upTo - 20, upTo);
        const tb = b.logTerms(upTo - 20, upTo);
        for (const [index, term] of ta) {
          const other = tb.get(index);
          if (other !== undefined && other !== term) {
            this.fail(`log matching: index ${index} has term ${term} on ${a.id} but ${other} on ${b.id}`);
          }
        }
      }
    }
  }

  /** Heal everything, bring every member back, and let the cluster converge. */
  async quiesce(maxSteps = 3000): Promise<void> {
    this.o.crashRate = 0;
    this.o.partitionRate = 0;
    this.o.membershipRate = 0;
    this.net.faults = { ...this.net.faults, lossRate: 0, duplicateRate: 0 };
    this.net.heal();
    for (const m of this.members.values()) if (!m.removed && !m.node) m.restartAt = this.step + 1;
    this.clientsActive = false;
    for (let i = 0; i < maxSteps; i++) {
      await this.runStep();
      const leader = this.live().find((m) => m.node!.status().role === "leader");
      const config = leader?.node!.status().confState;
      // A member whose removal committed while it was down or cut off never hears of it (the
      // leader no longer talks to it); PreVote keeps it from disturbing anyone. It is out.
      const live = this.live().filter(
        (m) => !config || config.voters.includes(m.id) || config.learners.includes(m.id),
      );
      const voters = config?.voters ?? this.voters();
      const applied = live.map((m) => m.node!.status().applied);
      if (
        leader &&
        live.length >= voters.length &&
        new Set(applied).size === 1 &&
        applied[0] >= leader.node!.status().commit
      ) {
        const states = live.map((m) => JSON.stringify(this.o.keys.map((k) => m.sm!.read(k))));
        if (new Set(states).size !== 1) {
          this.fail(
            `members converged on index ${applied[0]} but hold different data: ${states.join(" | ")}`,
          );
        }
        return;
      }
    }
    this.fail(`the cluster did not converge within ${maxSteps} steps after healing:\n${this.describe()}`);
  }

  /** One line per member, for failure messages. */
  describe(): string {
    return [...this.members.values()]
      .map((m) => {
        if (m.removed) return `  ${m.id}: removed`;
        if (!m.node) return `  ${m.id}: down (restart at ${m.restartAt})`;
        const s = m.node.status();
        const prog = s.progress
          ? Object.entries(s.progress)
              .map(([id, p]) => `${id}:${p.state}/m${p.match}/n${p.next}${p.paused ? "P" : ""}`)
              .join(" ")
          : "";
        return `  ${m.id}: ${s.role} term ${s.term} lead ${s.lead} commit ${s.commit} applied ${s.applied} snap ${s.snapshotIndex} voters [${s.confState.voters}] learners [${s.confState.learners}] ${prog}`;
      })
      .join("\n");
  }

  report(): SimReport {
    return {
      seed: this.o.seed,
      steps: this.step,
      committed: this.applied.size,
      leaders: this.leaders.size,
      ...this.stats,
      history: this.history,
      messages: { sent: this.net.sent, dropped: this.net.dropped },
    };
  }

  async stop(): Promise<void> {
    for (const m of this.members.values()) m.node?.kill();
  }
}
