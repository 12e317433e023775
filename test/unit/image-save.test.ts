import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildBusyboxArchive } from "../fixtures/busybox-image.mjs";
import { dockerArchive, imageConfig, makeTar, sha256 } from "../fixtures/tarlib.mjs";
import {
  failure,
  gatedSink,
  ls,
  noUsers,
  sink,
  streamOf,
  tempStore,
  type TestStore,
} from "./image-helpers.js";

const run = promisify(execFile);

let t: TestStore;
let u: TestStore;
beforeEach(async () => {
  t = await tempStore();
  u = await tempStore();
});
afterEach(async () => {
  await t.cleanup();
  await u.cleanup();
});

async function save(store: TestStore["store"], refs: string[]): Promise<Buffer> {
  const out = sink();
  await store.save(refs, out.stream);
  return out.data();
}

/** Unpack an archive with GNU tar, the way a user would look into it. */
async function untar(archive: Buffer, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "..", "a.tar"), archive);
  await run("tar", ["-xf", join(dir, "..", "a.tar"), "-C", dir]);
}

describe("save", () => {
  it("round-trips busybox through save and load into another store with the same id and tag", async () => {
    await t.store.load(streamOf(await buildBusyboxArchive()));
    const id = t.store.resolve("busybox").id;
    const archive = await save(t.store, ["busybox"]);
    expect(await u.store.load(streamOf(archive))).toEqual(["Loaded image: busybox:latest"]);
    expect(u.store.resolve("busybox:latest").id).toBe(id);
    // And again from the second store: still byte-identical layers.
    const again = await save(u.store, ["busybox:latest"]);
    expect(sha256(again)).toBe(sha256(archive));
  });

  it("writes Docker 25's layout: manifest.json, index.json, oci-layout and blobs named by digest", async () => {
    await t.store.load(streamOf(await buildBusyboxArchive()));
    const img = t.store.resolve("busybox");
    const dir = join(t.base, "out");
    await untar(await save(t.store, ["busybox:latest"]), dir);
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));
    expect(manifest).toEqual([
      {
        Config: `blobs/sha256/${img.id.slice(7)}`,
        RepoTags: ["busybox:latest"],
        Layers: img.config.rootfs.diff_ids.map((d) => `blobs/sha256/${d.slice(7)}`),
      },
    ]);
    for (const d of [img.id, ...img.config.rootfs.diff_ids]) {
      expect(sha256(await readFile(join(dir, "blobs/sha256", d.slice(7))))).toBe(d);
    }
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
    expect(index.manifests[0].annotations).toEqual({
      "io.containerd.image.name": "docker.io/library/busybox:latest",
      "org.opencontainers.image.ref.name": "latest",
    });
    const m = JSON.parse(
      await readFile(join(dir, "blobs/sha256", index.manifests[0].digest.slice(7)), "utf8"),
    );
    expect(m.config.digest).toBe(img.id);
    expect(JSON.parse(await readFile(join(dir, "oci-layout"), "utf8"))).toEqual({
      imageLayoutVersion: "1.0.0",
    });
  });

  it("reproduces layers with whiteouts, opaque dirs, hard links and overwritten files byte for byte", async () => {
    const lower = await makeTar([
      { name: "d/", type: "directory" },
      { name: "d/a", data: "a" },
      { name: "keep", data: "k" },
    ]);
    const upper = await makeTar([
      { name: "d/", type: "directory" },
      { name: "d/.wh..wh..opq", data: "" },
      { name: ".wh.keep", data: "" },
      { name: "f", data: "first version" },
      { name: "g", type: "link", linkname: "f" },
      { name: "f", data: "second" },
      { name: "dir/", type: "directory" },
      { name: "dir/x", data: "x" },
      { name: "dir", type: "symlink", linkname: "elsewhere" },
    ]);
    const config = imageConfig([lower, upper]);
    await t.store.load(
      streamOf(await dockerArchive([{ config, layers: [lower, upper], repoTags: ["layered:1"] }])),
    );
    const dir = join(t.base, "out");
    await untar(await save(t.store, ["layered:1"]), dir);
    expect(await readFile(join(dir, "blobs/sha256", sha256(upper).slice(7)))).toEqual(upper);
    expect(await readFile(join(dir, "blobs/sha256", sha256(lower).slice(7)))).toEqual(lower);
  });

  it("saves an image named by id with no tags, and several images sharing layers once", async () => {
    const base = await makeTar([{ name: "base", data: "b" }]);
    const top = await makeTar([{ name: "top", data: "t" }]);
    await t.store.load(
      streamOf(
        await dockerArchive([
          { config: imageConfig([base]), layers: [base], repoTags: ["a:1"] },
          { config: imageConfig([base, top]), layers: [base, top], repoTags: ["b:1"] },
        ]),
      ),
    );
    const a = t.store.resolve("a:1");
    const archive = await save(t.store, [a.id, "b:1"]);
    const dir = join(t.base, "out");
    await untar(archive, dir);
    const { stdout } = await run("tar", ["-tf", join(t.base, "a.tar")]);
    expect(stdout.split("\n").filter((n) => n === `blobs/sha256/${sha256(base).slice(7)}`)).toHaveLength(1);
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));
    expect(manifest.map((m: { RepoTags: string[] | null }) => m.RepoTags)).toEqual([null, ["b:1"]]);
    const lines = await u.store.load(streamOf(archive));
    expect(lines).toEqual([`Loaded image ID: ${a.id}`, "Loaded image: b:1"]);
  });

  it("refuses to save an unknown image before writing anything", async () => {
    const out = sink();
    const f = await failure(t.store.save(["nope:1"], out.stream));
    expect(f).toEqual({ status: 404, message: "No such image: nope:1" });
    expect(out.data().length).toBe(0);
  });

  it("keeps layers while a save streams, even if the image is removed meanwhile", async () => {
    await t.store.load(streamOf(await buildBusyboxArchive()));
    const out = gatedSink();
    const saving = t.store.save(["busybox"], out.stream);
    await out.started;
    const removed = await t.store.remove("busybox", { force: true, noPrune: false }, noUsers);
    expect(removed).toHaveLength(2); // untagged and deleted, but the layer stays while the save runs
    out.open();
    await saving;
    expect((await u.store.load(streamOf(out.data())))[0]).toBe("Loaded image: busybox:latest");
    // The held layer is collected by the next clean-up.
    const pruned = await t.store.prune({ all: false }, noUsers);
    expect(pruned.SpaceReclaimed).toBeGreaterThan(1_000_000);
    expect(await ls(join(t.root, "layers"))).toEqual([]);
  });
});
