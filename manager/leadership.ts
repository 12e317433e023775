// One term of this manager's leadership, as the leader's loops hold it: its term stamps every
// batch they write (the store refuses a stamped batch once a newer leader took office), and it is
// checked before each batch, so a loop that was deposed in the middle of a pass stops there
// instead of proposing the rest of its plan. See docs/architecture.md, "Leadership".
import type { ClusterStore, WriteTx } from "./store/store.js";
import { DeposedLeaderError } from "./store/store.js";

/** How a loop writes: the store itself (tests, one manager) or a leader term's fenced writer. */
export interface StoreWriter {
  update(fn: (tx: WriteTx) => void | Promise<void>): Promise<number>;
}

export class LeaderTerm {
  constructor(
    readonly term: number,
    /** True while this manager still leads in `term`. */
    private readonly holds: () => boolean,
  ) {}

  get current(): boolean {
    return this.holds();
  }

  /** Between batches: throws DeposedLeaderError once this term's leadership is over. */
  check(): void {
    if (!this.holds())
      throw new DeposedLeaderError(`this manager no longer leads in term ${this.term}: the pass stops here`);
  }

  /** Writes of this term: checked before each batch, and stamped with the term. */
  writer(store: ClusterStore): StoreWriter {
    return {
      update: (fn) => {
        this.check();
        return store.update(fn, { term: this.term });
      },
    };
  }
}
