import type { Message, NodeId } from "./types.js";
import { bytesKey } from "./util.js";

interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Map<NodeId, boolean>;
}

/**
 * etcd's readOnly (ReadOnlySafe): each ReadIndex request records the commit index at arrival
 * and is answered once a quorum has acknowledged a heartbeat carrying its context, proving the
 * leader was still the leader when the request arrived (Raft thesis §6.4).
 */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** A request whose context is already pending is ignored: contexts must be unique. */
  addRequest(index: number, m: Message): void {
    const key = bytesKey(m.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req: m, index, acks: new Map() });
    this.queue.push(key);
  }

  /** Records an ack of the heartbeat carrying `context`; returns the acks so far, if pending. */
  recvAck(id: NodeId, context: Uint8Array): Map<NodeId, boolean> | undefined {
    const rs = this.pending.get(bytesKey(context));
    if (!rs) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * The quorum acknowledged the request with this context: it and every request queued before
   * it are confirmed (an ack for a later heartbeat proves leadership at all earlier points).
   */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = bytesKey(context);
    const i = this.queue.indexOf(key);
    if (i < 0) return [];
    const done = this.queue.slice(0, i + 1);
    this.queue = this.queue.slice(i + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      if (rs) out.push(rs);
      this.pending.delete(k);
    }
    return out;
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)?.req.context;
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
