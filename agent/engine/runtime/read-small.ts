// Reading kernel files (cgroup, /proc) in request paths: asynchronous, and never more than a
// bound, so a strange file cannot make a stats or top request read without end.
import { open } from "node:fs/promises";

export const SMALL_FILE_LIMIT = 256 * 1024;

/** The file's text (at most `limit` bytes), or undefined when it cannot be read. */
export async function readSmall(path: string, limit = SMALL_FILE_LIMIT): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, "r");
    const buf = Buffer.alloc(limit);
    let used = 0;
    // Kernel files may answer in several reads; stop at EOF or the bound.
    while (used < limit) {
      const { bytesRead } = await fh.read(buf, used, limit - used, null);
      if (bytesRead === 0) break;
      used += bytesRead;
    }
    return buf.subarray(0, used).toString("utf8");
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
