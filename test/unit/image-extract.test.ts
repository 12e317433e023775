import { execFile } from "node:child_process";
import { lstat, mkdir, readFile, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hostileArchive, hostileLayers, hostileLayerTars } from "../fixtures/hostile-tars.mjs";
import { dockerArchive, imageConfig, makeTar } from "../fixtures/tarlib.mjs";
import { failure, ls, streamOf, tempStore, tree, type TestStore } from "./image-helpers.js";

const run = promisify(execFile);

let t: TestStore;
beforeEach(async () => {
  t = await tempStore();
});
afterEach(async () => {
  await t.cleanup();
});

async function loadLayers(layers: Buffer[], tag = "img:1"): Promise<string[]> {
  await t.store.load(
    streamOf(await dockerArchive([{ config: imageConfig(layers), layers, repoTags: [tag] }])),
  );
  return t.store.lowerDirs(t.store.resolve(tag));
}

describe("layer extraction", () => {
  it("turns whiteout files and opaque markers into overlayfs form", async () => {
    const lower = await makeTar([
      { name: "etc/", type: "directory" },
      { name: "etc/gone", data: "old" },
      { name: "var/", type: "directory" },
      { name: "var/cache/", type: "directory" },
      { name: "var/cache/a", data: "a" },
    ]);
    const upper = await makeTar([
      { name: "etc/", type: "directory" },
      { name: "etc/.wh.gone", data: "" },
      { name: "var/", type: "directory" },
      { name: "var/cache/", type: "directory" },
      { name: "var/cache/.wh..wh..opq", data: "" },
      { name: "var/cache/b", data: "b" },
    ]);
    const [top] = await loadLayers([lower, upper]);
    const wh = await lstat(join(top, "etc/gone"));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    await expect(lstat(join(top, "etc/.wh.gone"))).rejects.toThrow(/ENOENT/);
    const { stdout } = await run("getfattr", [
      "--only-values",
      "-n",
      "trusted.overlay.opaque",
      join(top, "var/cache"),
    ]);
    expect(stdout).toBe("y");
    expect(await readFile(join(top, "var/cache/b"), "utf8")).toBe("b");
    await expect(lstat(join(top, "var/cache/.wh..wh..opq"))).rejects.toThrow(/ENOENT/);
  });

  it("gives lowerdirs that overlayfs mounts with deletions and opaque folders applied", async () => {
    const lower = await makeTar([
      { name: "gone", data: "old" },
      { name: "kept", data: "kept" },
      { name: "cache/", type: "directory" },
      { name: "cache/old", data: "old" },
    ]);
    const upper = await makeTar([
      { name: ".wh.gone", data: "" },
      { name: "cache/", type: "directory" },
      { name: "cache/.wh..wh..opq", data: "" },
      { name: "cache/new", data: "new" },
    ]);
    const dirs = await loadLayers([lower, upper]);
    const target = join(t.base, "merged");
    await mkdir(target);
    await run("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${dirs.join(":")}`, target]);
    try {
      expect(await ls(target)).toEqual(["cache", "kept"]);
      expect(await ls(join(target, "cache"))).toEqual(["new"]);
    } finally {
      await run("umount", [target]);
    }
  });

  it("keeps hard links, fifos, devices, owners, set-id modes and times", async () => {
    const layer = await makeTar([
      { name: "bin/", type: "directory" },
      { name: "bin/tool", data: "#!/bin/sh\n", mode: 0o4755, uid: 1000, gid: 1000 },
      { name: "bin/tool-link", type: "link", linkname: "bin/tool" },
      { name: "run/", type: "directory", mode: 0o700, mtime: new Date("2020-05-05T05:05:05Z") },
      { name: "run/pipe", type: "fifo", mode: 0o600 },
      { name: "dev/", type: "directory" },
      { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "lib", type: "symlink", linkname: "/usr/lib" },
    ]);
    const [dir] = await loadLayers([layer]);
    const tool = await stat(join(dir, "bin/tool"));
    expect(tool.mode & 0o7777).toBe(0o4755);
    expect([tool.uid, tool.gid]).toEqual([1000, 1000]);
    expect(tool.nlink).toBe(2);
    expect((await stat(join(dir, "bin/tool-link"))).ino).toBe(tool.ino);
    expect((await lstat(join(dir, "run/pipe"))).isFIFO()).toBe(true);
    const run = await stat(join(dir, "run"));
    expect(run.mode & 0o7777).toBe(0o700);
    expect(run.mtime.toISOString()).toBe("2020-05-05T05:05:05.000Z");
    const dev = await lstat(join(dir, "dev/null"));
    expect(dev.isCharacterDevice()).toBe(true);
    expect(dev.rdev).toBe((1 << 8) | 3);
    expect(await readlink(join(dir, "lib"))).toBe("/usr/lib");
  });

  it("handles long names (PAX) and files replaced later in the same layer", async () => {
    const long = `${"d".repeat(120)}/${"f".repeat(130)}`;
    const layer = await makeTar([
      { name: long, data: "long" },
      { name: "x", data: "first" },
      { name: "x", data: "second" },
    ]);
    const [dir] = await loadLayers([layer]);
    expect(await readFile(join(dir, long), "utf8")).toBe("long");
    expect(await readFile(join(dir, "x"), "utf8")).toBe("second");
  });
});

describe("hostile layers", () => {
  const cases = Object.keys(hostileLayers("/s"));

  it.each(cases)("refuses %s with 400 and writes nothing anywhere", async (name) => {
    const before = await tree(t.base);
    const sentinelBefore = await tree(t.sentinel);
    const layer = (await hostileLayerTars(t.sentinel))[name];
    const f = await failure(t.store.load(streamOf(await hostileArchive(layer))));
    expect(f.status).toBe(400);
    expect(f.message).toMatch(/entry "[^"]+"/);
    expect(await tree(t.sentinel)).toEqual(sentinelBefore);
    expect(await readFile(join(t.sentinel, "victim"), "utf8")).toBe("victim\n");
    // No layer (not even the good first one), no image, no tag, no temp leftovers.
    expect(await ls(join(t.root, "layers"))).toEqual([]);
    expect(await ls(join(t.root, "images"))).toEqual([]);
    expect(await ls(join(t.root, "tmp"))).toEqual([]);
    expect(t.store.list()).toEqual([]);
    expect(await tree(t.base)).toEqual(before);
  });

  it("names the offending entry and what is wrong with it", async () => {
    const layers = await hostileLayerTars(t.sentinel);
    const sym = await failure(t.store.load(streamOf(await hostileArchive(layers["symlink-write"]))));
    expect(sym.message).toContain('entry "link/pwned" would be written through the symbolic link "link"');
    const dots = await failure(t.store.load(streamOf(await hostileArchive(layers["dotdot-inside"]))));
    expect(dots.message).toContain('entry "a/../../pwned" has a ".." component');
    const abs = await failure(t.store.load(streamOf(await hostileArchive(layers.absolute))));
    expect(abs.message).toContain("has an absolute path");
    const absent = await failure(t.store.load(streamOf(await hostileArchive(layers["hardlink-absent"]))));
    expect(absent.message).toContain('is a hard link to "no/such/file"');
  });

  it("leaves existing images and tags alone when a hostile archive reuses a tag", async () => {
    const good = await makeTar([{ name: "f", data: "f" }]);
    await loadLayers([good], "evil:latest");
    const id = t.store.resolve("evil:latest").id;
    const layers = await hostileLayerTars(t.sentinel);
    expect(
      (await failure(t.store.load(streamOf(await hostileArchive(layers.dotdot, "evil:latest"))))).status,
    ).toBe(400);
    expect(t.store.resolve("evil:latest").id).toBe(id);
    expect(await ls(join(t.root, "layers"))).toHaveLength(1);
    expect((await t.reopen()).resolve("evil:latest").id).toBe(id);
  });

  it("refuses a symlink to a dir in a lower layer being written through in an upper layer", async () => {
    const lower = await makeTar([{ name: "s", type: "symlink", linkname: t.sentinel }]);
    await loadLayers([lower], "lower:1");
    // The symlink lives in another layer; this layer creates "s/pwned" which in its own folder
    // makes a real directory "s" — harmless: overlayfs shows the upper dir, not the symlink target.
    const upper = await makeTar([{ name: "s/pwned", data: "x" }]);
    const [top] = await loadLayers([lower, upper], "upper:1");
    expect((await lstat(join(top, "s"))).isDirectory()).toBe(true);
    expect(await ls(t.sentinel)).toEqual(["victim"]);
  });
});
