import { watch, type FSWatcher } from "node:fs";
import { readdir } from "node:fs/promises";
import type { Logger } from "../../../shared/logging.js";

const containerId = /^[0-9a-f]{64}$/;

/**
 * Tells the engine when conmon writes an exit file (`<exitsDir>/<container id>`). inotify through
 * fs.watch gives the event at once; a slow poll of the folder covers missed events and runs
 * `onTick` so the engine can also notice a conmon that died without writing one.
 */
export class ExitWatcher {
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly onExit: (id: string) => void,
    private readonly onTick: () => void,
    private readonly log: Logger,
    private readonly pollMs = 2000,
  ) {}

  start(): void {
    try {
      this.watcher = watch(this.dir, (_event, name) => {
        const file = typeof name === "string" ? name : undefined;
        if (file && containerId.test(file)) this.onExit(file);
      });
      this.watcher.on("error", (e) => this.log.warn({ err: e }, "exit folder watch failed; polling only"));
    } catch (e) {
      this.log.warn({ err: e }, "cannot watch the exit folder; polling only");
    }
    const tick = (): void => {
      if (this.closed) return;
      void this.scan().finally(() => {
        if (!this.closed) this.timer = setTimeout(tick, this.pollMs);
      });
    };
    this.timer = setTimeout(tick, this.pollMs);
  }

  /** Report every exit file present now. */
  async scan(): Promise<void> {
    try {
      for (const name of await readdir(this.dir)) if (containerId.test(name)) this.onExit(name);
    } catch (e) {
      this.log.warn({ err: e }, "cannot read the exit folder");
    }
    this.onTick();
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }
}
