// A manager: the Raft member whose state machine is the cluster store, and, while it leads,
// the orchestrator and the scheduler. Today a cluster has one manager (the Raft group has one
// member, so no transport is needed); joining managers over mutual TLS comes next, and the
// pieces here (store, proposer, leader-only loops) do not change for it.
import { NodeDisk } from "./raft/disk.js";
import { RaftNode } from "./raft/node.js";
import type { Logger } from "../shared/logging.js";
import { ClusterStore } from "./store/store.js";
import { Orchestrator } from "./orchestrator/loop.js";
import { Scheduler } from "./scheduler/loop.js";
import { Dispatcher } from "./dispatcher/local.js";

export interface ManagerOptions {
  /** Folder of the Raft WAL and snapshots. */
  dir: string;
  raftId: number;
  /** A brand-new cluster: this member is its first voter. */
  bootstrap: boolean;
  log: Logger;
  tickMs?: number;
}

export class Manager {
  readonly store = new ClusterStore();
  readonly dispatcher: Dispatcher;
  private raft!: RaftNode;
  private ticker: NodeJS.Timeout | undefined;
  private loops: { orchestrator: Orchestrator; scheduler: Scheduler } | undefined;
  private closed = false;

  private constructor(private readonly o: ManagerOptions) {
    this.dispatcher = new Dispatcher(this.store);
  }

  static async open(o: ManagerOptions): Promise<Manager> {
    const m = new Manager(o);
    m.raft = await RaftNode.open({
      id: o.raftId,
      bootstrapPeers: o.bootstrap ? [o.raftId] : undefined,
      dir: o.dir,
      disk: new NodeDisk(),
      // One member: nothing to send. Peers come with manager joins.
      transport: { send: () => undefined },
      stateMachine: m.store,
      rand: Math.random,
      logger: o.log,
    });
    m.store.setProposer((command) => m.raft.propose(command, 10_000));
    // A single member need not wait out an election timeout.
    m.raft.campaign();
    m.ticker = setInterval(() => m.tick(), o.tickMs ?? 100);
    await m.waitLeader(10_000);
    return m;
  }

  private tick(): void {
    if (this.closed) return;
    this.raft.tick();
    const leading = this.raft.leadership().role === "leader";
    if (leading && !this.loops) {
      this.o.log.info("this manager leads: orchestrator and scheduler started");
      this.loops = {
        orchestrator: new Orchestrator(this.store, this.o.log.child({ module: "orchestrator" })),
        scheduler: new Scheduler(this.store, this.o.log.child({ module: "scheduler" })),
      };
    } else if (!leading && this.loops) {
      this.o.log.info("this manager no longer leads: orchestrator and scheduler stopped");
      this.stopLoops();
    }
  }

  private stopLoops(): void {
    this.loops?.orchestrator.stop();
    this.loops?.scheduler.stop();
    this.loops = undefined;
  }

  isLeader(): boolean {
    return this.raft.leadership().role === "leader";
  }

  async waitLeader(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.isLeader()) {
      if (Date.now() > until) throw new Error("this manager did not become leader in time");
      await new Promise((r) => setTimeout(r, 20));
    }
    this.tick();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.stopLoops();
    await this.raft.close();
  }
}
