// `docker diff` (GET /containers/{id}/changes): what a container changed against its image, read
// from its overlay upper folder as dockerd's overlay2 driver does. A whiteout (a 0:0 character
// device) is a deletion (Kind 2); an entry its image already has is a modification (Kind 0),
// anything else an addition (Kind 1). The engine's mount points (/etc/hosts, /etc/hostname,
// /etc/resolv.conf), empty files of dockerd's init layer, are not changes. The walk goes
// through held descriptors: a running container can change the folder while it is read.
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { DirFd } from "./dir-fd.js";

export interface Change {
  Path: string;
  Kind: 0 | 1 | 2;
}

/** Engine files: empty files in the upper folder that are mount points, not changes. */
const ENGINE_MOUNT_POINTS = new Set(["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]);

/** Whether the image has the path: the top layer that has it decides (a whiteout there hides it). */
async function inImage(lowers: string[], path: string): Promise<boolean> {
  for (const lower of lowers) {
    const st = await lstat(join(lower, path)).catch(() => undefined);
    if (!st) continue;
    return !(st.isCharacterDevice() && st.rdev === 0);
  }
  return false;
}

export async function containerChanges(upper: string, lowers: string[]): Promise<Change[]> {
  const out: Change[] = [];
  async function walk(dir: DirFd, prefix: string): Promise<boolean> {
    let any = false;
    for (const name of await dir.list()) {
      const path = `${prefix}/${name}`;
      const st = await dir.lstat(name);
      if (!st) continue;
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ Path: path, Kind: 2 });
        any = true;
        continue;
      }
      if (ENGINE_MOUNT_POINTS.has(path) && st.isFile() && st.size === 0) continue;
      const kind = (await inImage(lowers, path)) ? 0 : 1;
      if (st.isDirectory()) {
        const at = out.length;
        out.push({ Path: path, Kind: kind });
        let inner: DirFd;
        try {
          inner = await dir.openDir(name);
        } catch {
          continue;
        }
        let below: boolean;
        try {
          below = await walk(inner, path);
        } finally {
          await inner.close();
        }
        // A folder the image has, in the upper folder only for the engine's mount points, is no change.
        if (!below && kind === 0 && (await onlyEngineFiles(upper, path))) out.splice(at, 1);
        else any = true;
        continue;
      }
      out.push({ Path: path, Kind: kind });
      any = true;
    }
    return any;
  }
  const root = await DirFd.openHost(upper);
  try {
    await walk(root, "");
  } finally {
    await root.close();
  }
  return out;
}

async function onlyEngineFiles(upper: string, path: string): Promise<boolean> {
  return (
    [...ENGINE_MOUNT_POINTS].some((p) => p.startsWith(`${path}/`)) &&
    (await lstat(join(upper, path)).then(
      () => true,
      () => false,
    ))
  );
}
