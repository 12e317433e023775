// A read view of an image's root filesystem for the builder: COPY follows its destination in it
// and reads `--from` sources from it. It is an overlayfs mount of the image's layers with a throwaway
// upper folder, under the builder's own temp folder; release() unmounts and deletes it, and the
// builder removes leftovers of a crashed daemon at start-up.
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ImageStoreApi } from "../image/api.js";
import type { ImageRecord } from "../image/types.js";
import { mountRootfs, mountPoints, unmountRootfs } from "../snapshot/rootfs.js";

export interface RootfsView {
  /** The root of the image's file tree. */
  dir: string;
  release(): Promise<void>;
}

export async function mountView(
  images: ImageStoreApi,
  image: ImageRecord | undefined,
  tmpRoot: string,
): Promise<RootfsView> {
  const base = join(tmpRoot, `view-${randomBytes(6).toString("hex")}`);
  const lowers = image ? images.lowerDirs(image) : [];
  if (lowers.length === 0) {
    // scratch: nothing to mount, an empty folder is the whole file tree
    await mkdir(base, { recursive: true, mode: 0o700 });
    return { dir: base, release: () => rm(base, { recursive: true, force: true }) };
  }
  const merged = join(base, "merged");
  const upper = join(base, "upper");
  const work = join(base, "work");
  await mkdir(base, { recursive: true, mode: 0o700 });
  await Promise.all([mkdir(merged), mkdir(upper), mkdir(work)]);
  try {
    await mountRootfs(lowers, upper, work, merged);
  } catch (e) {
    await rm(base, { recursive: true, force: true });
    throw e;
  }
  let released = false;
  return {
    dir: merged,
    release: async () => {
      if (released) return;
      released = true;
      await unmountRootfs(merged);
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** Unmount whatever is still mounted below dir (a daemon that died mid-build), deepest first. */
export async function unmountBelow(dir: string): Promise<void> {
  const targets = (await mountPoints())
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const t of targets) await unmountRootfs(t);
}
