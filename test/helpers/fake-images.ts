// A stand-in for the image store: one busybox "image" whose single layer is a folder made from
// the host's busybox-static. It answers resolve and lowerDirs, which is all the container engine
// needs; the rest throws.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, copyFile, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ImageStoreApi } from "../../agent/engine/image/api.js";
import type { ImageRecord, ImageRuntimeConfig } from "../../agent/engine/image/types.js";
import { notFound } from "../../shared/errors.js";

const run = promisify(execFile);
export const BUSYBOX = "/usr/bin/busybox";

/** Fill `dir` with a minimal root filesystem: busybox, its applets, /etc files, empty system folders. */
export async function makeBusyboxRootfs(dir: string): Promise<void> {
  for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "var", "home"])
    await mkdir(join(dir, d), { recursive: true });
  await chmod(join(dir, "tmp"), 0o1777);
  await copyFile(BUSYBOX, join(dir, "bin/busybox"));
  await chmod(join(dir, "bin/busybox"), 0o755);
  const { stdout } = await run(BUSYBOX, ["--list"]);
  for (const applet of stdout.split("\n").filter((a) => a !== "" && a !== "busybox")) {
    await symlink("busybox", join(dir, "bin", applet)).catch(() => undefined);
  }
  await writeFile(
    join(dir, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
  );
  await writeFile(join(dir, "etc/group"), "root:x:0:\nnobody:x:65534:\n");
  await writeFile(join(dir, "etc/hostname"), "");
  await writeFile(join(dir, "etc/hosts"), "127.0.0.1 localhost\n");
  await writeFile(join(dir, "etc/resolv.conf"), "");
}

export interface FakeImage {
  ref: string;
  layerDir: string;
  config?: ImageRuntimeConfig;
}

/** Images backed by ready-made layer folders (top layer last in `layers`). */
export class FakeImageStore implements ImageStoreApi {
  private readonly images: Array<{ record: ImageRecord; layers: string[] }> = [];

  add(ref: string, layers: string[], config: ImageRuntimeConfig = {}): ImageRecord {
    const blob = {
      architecture: "amd64",
      os: "linux",
      config: {
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Cmd: ["sh"],
        ...config,
      },
      rootfs: {
        type: "layers" as const,
        diff_ids: layers.map((l) => `sha256:${createHash("sha256").update(l).digest("hex")}`),
      },
    };
    const id = `sha256:${createHash("sha256").update(JSON.stringify(blob)).digest("hex")}`;
    const record: ImageRecord = {
      id,
      repoTags: [ref.includes(":") ? ref : `${ref}:latest`],
      repoDigests: [],
      config: blob,
      size: 0,
      loadedAt: new Date().toISOString(),
    };
    this.images.push({ record, layers });
    return record;
  }

  list(): ImageRecord[] {
    return this.images.map((i) => i.record);
  }

  resolve(ref: string): ImageRecord {
    const tag = ref.includes(":") && !ref.startsWith("sha256:") ? ref : `${ref}:latest`;
    const hit = this.images.find(
      (i) =>
        i.record.id === ref ||
        i.record.id === `sha256:${ref}` ||
        i.record.repoTags.includes(tag) ||
        (/^[0-9a-f]{4,}$/.test(ref) && i.record.id.startsWith(`sha256:${ref}`)),
    );
    if (!hit) throw notFound(`No such image: ${ref}`);
    return hit.record;
  }

  lowerDirs(image: ImageRecord): string[] {
    const hit = this.images.find((i) => i.record.id === image.id);
    if (!hit) throw notFound(`No such image: ${image.id}`);
    return [...hit.layers].reverse();
  }

  load(): never {
    throw new Error("FakeImageStore: load is not implemented");
  }
  save(): never {
    throw new Error("FakeImageStore: save is not implemented");
  }
  importRootfs(): never {
    throw new Error("FakeImageStore: importRootfs is not implemented");
  }
  createImage(): never {
    throw new Error("FakeImageStore: createImage is not implemented");
  }
  tag(): never {
    throw new Error("FakeImageStore: tag is not implemented");
  }
  remove(): never {
    throw new Error("FakeImageStore: remove is not implemented");
  }
  prune(): never {
    throw new Error("FakeImageStore: prune is not implemented");
  }
}
