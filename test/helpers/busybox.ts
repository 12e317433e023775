import { execFile } from "node:child_process";
import { readFile, rm, mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { api, repoRoot } from "./daemon.js";

const run = promisify(execFile);

/** Build the busybox fixture image (from Debian's busybox-static) as a docker-save archive. */
export async function buildBusyboxArchive(ref = "busybox:latest"): Promise<Buffer> {
  const dir = await mkdtemp("/tmp/shoal-fixture-");
  try {
    const out = join(dir, "busybox.tar");
    await run(process.execPath, [join(repoRoot, "test/fixtures/busybox-image.mjs"), out, ref]);
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Load the busybox fixture into a test daemon through the Engine API. */
export async function loadBusybox(socket: string): Promise<void> {
  const r = await api(socket, "POST", "/images/load", await buildBusyboxArchive());
  if (r.status !== 200) throw new Error(`loading busybox failed: ${r.status} ${r.body.toString()}`);
}
