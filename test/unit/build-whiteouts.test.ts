// A RUN step's changes leave the container's overlay upper dir as a layer tar in the form every
// engine reads: overlayfs whiteouts (0:0 character devices, the opaque xattr) become AUFS
// ".wh." entries, hard links stay links, the engine's own mount points stay out. Unpacking the
// tar again (as the layer store does) gives back the overlayfs form.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { link, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { packLayer, upperDirEntries } from "../../agent/engine/builder/layer-tar.js";
import { extractLayer } from "../../agent/engine/image/extract.js";
import { TarReader } from "../../agent/engine/image/tar-reader.js";

const run = promisify(execFile);
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "shoal-wh-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(src: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of src) chunks.push(c);
  return Buffer.concat(chunks);
}

async function entries(tar: Buffer): Promise<string[]> {
  const reader = new TarReader(Readable.from([tar]));
  const out: string[] = [];
  for (;;) {
    const e = await reader.next();
    if (!e) return out;
    const h = e.header;
    out.push(
      `${h.name} ${h.type}${h.linkname ? ` -> ${h.linkname}` : ""} ${h.mode.toString(8)} ${h.uid}:${h.gid}`,
    );
  }
}

describe("upper dir to layer tar", () => {
  it("converts whiteouts and opaque folders to AUFS form", async () => {
    const upper = join(dir, "upper");
    await mkdir(join(upper, "keep"), { recursive: true });
    await writeFile(join(upper, "keep/file"), "data\n");
    await run("mknod", [join(upper, "keep/gone"), "c", "0", "0"]);
    await mkdir(join(upper, "opaque"));
    await writeFile(join(upper, "opaque/new"), "n\n");
    await run("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", join(upper, "opaque")]);
    await writeFile(join(upper, "hard1"), "same\n");
    await link(join(upper, "hard1"), join(upper, "hard2"));
    await symlink("keep/file", join(upper, "sym"));
    // The engine's mount points: an /etc that holds only them is not part of the change.
    await mkdir(join(upper, "etc"));
    await writeFile(join(upper, "etc/hosts"), "");
    await writeFile(join(upper, "etc/resolv.conf"), "");
    await mkdir(join(upper, "etc2"));
    await writeFile(join(upper, "etc2/hostname"), "");

    const skip = new Set(["etc/hosts", "etc/hostname", "etc/resolv.conf"]);
    const tar = await collect(packLayer(upperDirEntries(upper, { skipEmptyFiles: skip })));
    expect(await entries(tar)).toEqual([
      "etc2/ dir 755 0:0",
      "etc2/hostname file 644 0:0",
      "hard1 file 644 0:0",
      "hard2 link -> hard1 644 0:0",
      "keep/ dir 755 0:0",
      "keep/file file 644 0:0",
      "keep/.wh.gone file 644 0:0",
      "opaque/ dir 755 0:0",
      "opaque/.wh..wh..opq file 755 0:0",
      "opaque/new file 644 0:0",
      "sym symlink -> keep/file 777 0:0",
    ]);

    // Unpacked by the layer store's extractor, the whiteouts are overlayfs whiteouts again.
    const layer = join(dir, "layer");
    await mkdir(join(layer, "diff"), { recursive: true });
    const out = await extractLayer(Readable.from([tar]), layer, "test layer");
    expect(out.diffId).toMatch(/^sha256:[0-9a-f]{64}$/);
    const gone = await lstat(join(layer, "diff/keep/gone"));
    expect(gone.isCharacterDevice() && gone.rdev === 0).toBe(true);
    const { stdout } = await run("getfattr", [
      "-n",
      "trusted.overlay.opaque",
      "--only-values",
      join(layer, "diff/opaque"),
    ]);
    expect(stdout).toBe("y");
    const [h1, h2] = await Promise.all([lstat(join(layer, "diff/hard1")), lstat(join(layer, "diff/hard2"))]);
    expect(h1.ino).toBe(h2.ino);
  });

  it("an empty change is an empty tar", async () => {
    const upper = join(dir, "empty");
    await mkdir(upper);
    const tar = await collect(packLayer(upperDirEntries(upper)));
    expect(tar.length).toBe(1024);
    expect(tar.every((b) => b === 0)).toBe(true);
  });

  it("refuses an upper dir with overlay redirects, which a layer cannot carry", async () => {
    const upper = join(dir, "redirect");
    await mkdir(join(upper, "moved"), { recursive: true });
    await run("setfattr", ["-n", "trusted.overlay.redirect", "-v", "/orig", join(upper, "moved")]);
    await expect(collect(packLayer(upperDirEntries(upper)))).rejects.toThrow(/redirect_dir/);
  });
});
