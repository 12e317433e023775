import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, internal } from "../../../shared/errors.js";
import { CommandError, runCommand } from "../runtime/command.js";
import { isMounted } from "../snapshot/overlay.js";

// Each container gets a network namespace that the engine makes before the container starts,
// pinned by a bind mount at <execRoot>/netns/<id> (unshare --net=<file>), so it is ours to
// configure: loopback up now, veths into bridges later. runc joins it through the spec's
// namespace path. The pin lives under execRoot, not /run/netns, so daemons sharing a host never
// collide; it survives a daemon restart (same mount namespace) and goes with the machine.

export const netnsDir = (execRoot: string): string => join(execRoot, "netns");
export const netnsPath = (execRoot: string, id: string): string => join(netnsDir(execRoot), id);

function why(e: unknown): string {
  return e instanceof CommandError ? e.stderr.trim() || e.message : String(e);
}

/** Make (or keep) the container's namespace with `lo` up; returns its path. */
export async function ensureNetns(execRoot: string, id: string): Promise<string> {
  const path = netnsPath(execRoot, id);
  await mkdir(netnsDir(execRoot), { recursive: true, mode: 0o700 });
  if (!(await isMounted(path))) {
    const fh = await open(path, "a", 0o444);
    await fh.close();
    try {
      await runCommand("unshare", [`--net=${path}`, "true"]);
    } catch (e) {
      await rm(path, { force: true });
      throw internal(`cannot create the network namespace of container ${id}: ${why(e)}`, e);
    }
  }
  try {
    await runCommand("nsenter", [`--net=${path}`, "ip", "link", "set", "lo", "up"]);
  } catch (e) {
    await removeNetns(execRoot, id);
    throw internal(`cannot bring up loopback in the network namespace of container ${id}: ${why(e)}`, e);
  }
  return path;
}

/** Drop the namespace pin; the namespace itself dies with its last process. Missing is fine. */
export async function removeNetns(execRoot: string, id: string): Promise<void> {
  const path = netnsPath(execRoot, id);
  if (await isMounted(path)) {
    try {
      await runCommand("umount", [path]);
    } catch (e) {
      if (await isMounted(path)) {
        try {
          await runCommand("umount", ["-l", path]);
        } catch {
          throw internal(`cannot remove the network namespace of container ${id}: ${why(e)}`, e);
        }
      }
    }
  }
  try {
    await rm(path, { force: true });
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
  }
}
