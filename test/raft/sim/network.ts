// The simulated network: messages are delayed, lost, duplicated and reordered at random, and
// links can be cut in one direction (partitions, including one-way and partial ones).
import type { Message, NodeId } from "../../../manager/raft/core/types.js";
import type { Rand } from "./rand.js";

export interface NetworkFaults {
  lossRate: number;
  duplicateRate: number;
  /** Delivery delay in simulated ticks of the network clock: [minDelay, maxDelay]. */
  minDelay: number;
  maxDelay: number;
}

interface InFlight {
  at: number;
  seq: number;
  message: Message;
}

export class SimNetwork {
  private queue: InFlight[] = [];
  private cut = new Set<string>();
  private seq = 0;
  now = 0;
  sent = 0;
  dropped = 0;

  constructor(
    private readonly rand: Rand,
    public faults: NetworkFaults,
  ) {}

  private key(from: NodeId, to: NodeId): string {
    return `${from}>${to}`;
  }

  /** Cut the link from → to (one way). */
  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(this.key(from, to));
  }

  /** Cut every link between the two groups, both ways. */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a)
      for (const y of b) {
        this.cutLink(x, y);
        this.cutLink(y, x);
      }
  }

  /** Cut every link into and out of a node. */
  isolate(id: NodeId, all: NodeId[]): void {
    this.partition(
      [id],
      all.filter((x) => x !== id),
    );
  }

  heal(): void {
    this.cut.clear();
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(this.key(from, to));
  }

  /** Queue a message; false when it was lost at once (cut link or random loss). */
  send(m: Message): boolean {
    this.sent++;
    if (this.isCut(m.from, m.to) || this.rand.chance(this.faults.lossRate)) {
      this.dropped++;
      return false;
    }
    const copies = this.rand.chance(this.faults.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const at = this.now + this.rand.int(this.faults.minDelay, this.faults.maxDelay);
      this.queue.push({ at, seq: this.seq++, message: structuredClone(m) });
    }
    return true;
  }

  /**
   * Messages due by now, in delivery-time order (ties by send order). Those on links cut since
   * they were sent are lost; they are returned too, because a lost snapshot must be reported.
   */
  due(): { deliver: Message[]; lost: Message[] } {
    const ready: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const f of this.queue) (f.at <= this.now ? ready : rest).push(f);
    this.queue = rest;
    ready.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const deliver: Message[] = [];
    const lost: Message[] = [];
    for (const f of ready) (this.isCut(f.message.from, f.message.to) ? lost : deliver).push(f.message);
    this.dropped += lost.length;
    return { deliver, lost };
  }

  /** Drop everything addressed to a node (it crashed: its sockets are gone); returns what was dropped. */
  dropTo(id: NodeId): Message[] {
    const dropped = this.queue.filter((f) => f.message.to === id).map((f) => f.message);
    this.queue = this.queue.filter((f) => f.message.to !== id);
    return dropped;
  }

  get inFlight(): number {
    return this.queue.length;
  }
}
