// The daemon's folders on the host. The data root holds what containers wrote (volumes, upper
// layers) with their owners and modes kept: a setuid binary or a device node a container
// planted there must not be reachable by a local user, so the root is 0700 (CVE-2021-41091
// class; Docker's fix made its folders 0710). shoal has no user-namespace remapping, so no
// other uid needs to traverse it; a remap would need 0710 with the remapped root's group.
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { narrowDirMode } from "../shared/fsutil.js";
import type { Logger } from "../shared/logging.js";

export const DATA_ROOT_MODE = 0o700;
/** The exec root and the socket's folder: 0711 so a user the socket's group admits can reach it. */
const RUN_DIR_MODE = 0o711;

export async function prepareDaemonDirs(
  o: { dataRoot: string; execRoot: string; socketPath: string },
  log: Logger,
): Promise<void> {
  await mkdir(o.dataRoot, { recursive: true, mode: DATA_ROOT_MODE });
  const was = await narrowDirMode(o.dataRoot, DATA_ROOT_MODE);
  if (was !== undefined) {
    log.warn(
      { dir: o.dataRoot, was: was.toString(8), now: DATA_ROOT_MODE.toString(8) },
      "narrowed the data root's mode: local users could reach what containers wrote there",
    );
  }
  for (const dir of [o.execRoot, dirname(o.socketPath)]) {
    await mkdir(dir, { recursive: true, mode: RUN_DIR_MODE });
  }
}
