/**
 * etcd's Inflights: the sliding window of MsgApps sent to one follower in replicate state and
 * not yet acknowledged, bounded both by count and by payload bytes. Each element is the last
 * index of one message; indexes are added in increasing order.
 */
export class Inflights {
  private readonly buf: { index: number; bytes: number }[] = [];
  private totalBytes = 0;

  constructor(
    readonly size: number,
    /** 0 = no byte limit, as in etcd. */
    readonly maxBytes: number,
  ) {}

  add(index: number, bytes: number): void {
    if (this.full()) throw new Error("cannot add into a full inflights");
    const last = this.buf[this.buf.length - 1];
    if (last !== undefined && index <= last.index) {
      throw new Error(`inflights must grow: ${index} after ${last.index}`);
    }
    this.buf.push({ index, bytes });
    this.totalBytes += bytes;
  }

  /** Frees every message whose last index is <= to (they were acknowledged). */
  freeLE(to: number): void {
    let i = 0;
    while (i < this.buf.length && this.buf[i].index <= to) {
      this.totalBytes -= this.buf[i].bytes;
      i++;
    }
    if (i > 0) this.buf.splice(0, i);
  }

  /**
   * Full when the count limit is reached or the bytes reach the budget. A single message may
   * overshoot the byte budget (etcd does the same): refusing it would stall a follower forever
   * on one large entry.
   */
  full(): boolean {
    return this.buf.length >= this.size || (this.maxBytes > 0 && this.totalBytes >= this.maxBytes);
  }

  count(): number {
    return this.buf.length;
  }

  bytes(): number {
    return this.totalBytes;
  }

  reset(): void {
    this.buf.length = 0;
    this.totalBytes = 0;
  }
}
