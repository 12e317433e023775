// One pass of work at a time, asked for by events: a request while a pass runs makes one more
// pass after it, never two at once and never a lost request. The leader's loops use it.
import type { Logger } from "../shared/logging.js";
import { messageOf } from "../shared/errors.js";
import { DeposedLeaderError } from "./store/store.js";

export class CoalescedPass {
  private running = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    setImmediate(() => void this.run());
  }

  private async run(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped);
    } catch (e) {
      if (e instanceof DeposedLeaderError) {
        // The leader's term ended in the middle of the pass: the rest of it is not written.
        this.log.info({ err: e.message }, `${this.what} stopped: this manager no longer leads`);
        this.stop();
        return;
      }
      this.log.warn({ err: messageOf(e) }, `${this.what} pass failed; retrying at the next change`);
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    this.stopped = true;
  }
}
