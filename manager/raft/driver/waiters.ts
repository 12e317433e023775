// Callers waiting for something the Raft loop will learn later: a proposal's result, a read
// index, a membership change. Each waiter can be failed (leadership lost, node closed, timeout).

export class Waiters<K, V> {
  private readonly pending = new Map<
    K,
    { resolve: (v: V) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }
  >();

  wait(key: K, timeoutMs?: number, onTimeout?: () => Error): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const entry: { resolve: (v: V) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } = {
        resolve,
        reject,
      };
      if (timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          this.pending.delete(key);
          reject(onTimeout ? onTimeout() : new Error("timed out"));
        }, timeoutMs);
        entry.timer.unref?.();
      }
      this.pending.set(key, entry);
    });
  }

  has(key: K): boolean {
    return this.pending.has(key);
  }

  resolve(key: K, value: V): boolean {
    const w = this.pending.get(key);
    if (!w) return false;
    this.pending.delete(key);
    if (w.timer) clearTimeout(w.timer);
    w.resolve(value);
    return true;
  }

  reject(key: K, error: Error): void {
    const w = this.pending.get(key);
    if (!w) return;
    this.pending.delete(key);
    if (w.timer) clearTimeout(w.timer);
    w.reject(error);
  }

  rejectAll(error: Error): void {
    for (const key of [...this.pending.keys()]) this.reject(key, error);
  }

  get size(): number {
    return this.pending.size;
  }
}
