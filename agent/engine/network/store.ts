// All networks of a daemon in one file, written atomically on every change (networks change
// rarely; address allocations ride along so they survive a crash).
import { join } from "node:path";
import { readJsonIfExists, writeJsonAtomic, ensureDir } from "../../../shared/fsutil.js";
import type { NetworkRecord } from "./types.js";

interface NetworksFile {
  networks: NetworkRecord[];
}

export class NetworkFile {
  private readonly path: string;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly dir: string) {
    this.path = join(dir, "networks.json");
  }

  async load(): Promise<NetworkRecord[]> {
    await ensureDir(this.dir);
    const file = await readJsonIfExists<NetworksFile>(this.path);
    return file?.networks ?? [];
  }

  /** Writes are queued so the file always ends with the newest state. */
  save(networks: readonly NetworkRecord[]): Promise<void> {
    const snapshot: NetworksFile = { networks: structuredClone([...networks]) };
    const next = this.writing.then(() => writeJsonAtomic(this.path, snapshot));
    this.writing = next.catch(() => undefined);
    return next;
  }
}
