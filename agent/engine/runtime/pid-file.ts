// The pid conmon and runc write into a file (container, conmon, exec session, health probe).
import { readFile } from "node:fs/promises";

/** A pid file's pid; 0 when it is missing or unreadable. */
export async function readPidFile(path: string): Promise<number> {
  try {
    return Number((await readFile(path, "utf8")).trim()) || 0;
  } catch {
    return 0;
  }
}
