import { connect } from "node:net";
import { rm } from "node:fs/promises";

/**
 * A socket file left by a daemon that died is removed; one that a live daemon answers on is
 * not, so two daemons never fight over one path.
 */
export async function claimSocketPath(path: string): Promise<void> {
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
  if (live) {
    throw new Error(
      `another daemon is already listening on ${path}: stop it, or start this one with -H unix:///other.sock`,
    );
  }
  await rm(path, { force: true });
}
