import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildBusyboxArchive, busyboxLayer } from "../fixtures/busybox-image.mjs";
import { dockerArchive, imageConfig, makeTar } from "../fixtures/tarlib.mjs";
import { failure, ls, noUsers, streamOf, tempStore, type TestStore } from "./image-helpers.js";

let t: TestStore;
beforeEach(async () => {
  t = await tempStore();
  await t.store.load(streamOf(await buildBusyboxArchive()));
});
afterEach(async () => {
  await t.cleanup();
});

const cid = "c0ffee".padEnd(64, "0");

describe("tag", () => {
  it("adds names that survive a restart and moves a tag between images", async () => {
    const id = t.store.resolve("busybox").id;
    await t.store.tag("busybox", "localhost:5000/tools/bb:1.36");
    await t.store.tag(id.slice(7, 19), "mine");
    expect(t.store.resolve("busybox").repoTags).toEqual([
      "busybox:latest",
      "localhost:5000/tools/bb:1.36",
      "mine:latest",
    ]);
    const other = await t.store.importRootfs(streamOf(await makeTar([{ name: "o", data: "o" }])), {});
    await t.store.tag(other.id, "mine:latest");
    expect(t.store.resolve("mine").id).toBe(other.id);
    expect(t.store.resolve(id).repoTags).toEqual(["busybox:latest", "localhost:5000/tools/bb:1.36"]);
    const again = await t.reopen();
    expect(again.resolve("mine").id).toBe(other.id);
    expect(again.resolve("localhost:5000/tools/bb:1.36").id).toBe(id);
  });

  it("refuses bad targets and unknown sources", async () => {
    expect(await failure(t.store.tag("busybox", "bad name"))).toMatchObject({ status: 400 });
    expect(await failure(t.store.tag("busybox", "x@sha256:" + "a".repeat(64)))).toMatchObject({
      status: 400,
    });
    expect(await failure(t.store.tag("nope", "x"))).toEqual({ status: 404, message: "No such image: nope" });
  });
});

describe("remove", () => {
  it("only untags when the image has other tags", async () => {
    await t.store.tag("busybox", "bb:2");
    const r = await t.store.remove("bb:2", { force: false, noPrune: false }, noUsers);
    expect(r).toEqual([{ Untagged: "bb:2" }]);
    expect(t.store.resolve("busybox").repoTags).toEqual(["busybox:latest"]);
    expect(await ls(join(t.root, "layers"))).toHaveLength(1);
  });

  it("deletes the image, its config blob and its layers with its last tag", async () => {
    const img = t.store.resolve("busybox");
    const r = await t.store.remove("busybox", { force: false, noPrune: false }, noUsers);
    expect(r).toEqual([
      { Untagged: "busybox:latest" },
      { Deleted: img.id },
      { Deleted: img.config.rootfs.diff_ids[0] },
    ]);
    expect(await ls(join(t.root, "layers"))).toEqual([]);
    expect(await ls(join(t.root, "images"))).toEqual([]);
    expect(await ls(join(t.root, "blobs/sha256"))).toEqual([]);
    expect(await failure(Promise.resolve().then(() => t.store.resolve("busybox")))).toMatchObject({
      status: 404,
    });
    expect((await t.reopen()).list()).toEqual([]);
  });

  it("refuses with 409 naming the container while a container uses the image", async () => {
    const id = t.store.resolve("busybox").id;
    const users = (image: string): string[] => (image === id ? [cid] : []);
    const byName = await failure(t.store.remove("busybox", { force: false, noPrune: false }, users));
    expect(byName.status).toBe(409);
    expect(byName.message).toBe(
      "conflict: unable to remove image busybox (must be forced) - image is being used by container c0ffee000000; remove the container first or use --force",
    );
    const byId = await failure(t.store.remove(id, { force: false, noPrune: false }, users));
    expect(byId.status).toBe(409);
    expect(t.store.resolve("busybox").id).toBe(id);
  });

  it("with force only untags an image a container uses; it goes with a prune once the container is gone", async () => {
    const img = t.store.resolve("busybox");
    let using = [cid];
    const users = (): string[] => using;
    const r = await t.store.remove("busybox", { force: true, noPrune: false }, users);
    expect(r).toEqual([{ Untagged: "busybox:latest" }]);
    expect(t.store.list().map((i) => [i.id, i.repoTags])).toEqual([[img.id, []]]);
    expect(await ls(join(t.root, "layers"))).toHaveLength(1);
    // By id, forced: the same, as dockerd does for an image a container uses.
    await t.store.tag(img.id, "again:1");
    expect(await t.store.remove(img.id, { force: true, noPrune: false }, users)).toEqual([
      { Untagged: "again:1" },
    ]);
    const again = await t.reopen();
    expect((await again.prune({ all: true }, users)).ImagesDeleted).toEqual([]);
    expect(await ls(join(t.root, "layers"))).toHaveLength(1);
    using = [];
    const pruned = await again.prune({ all: true }, users);
    expect(pruned.ImagesDeleted).toEqual([{ Deleted: img.id }, { Deleted: img.config.rootfs.diff_ids[0] }]);
    expect(await ls(join(t.root, "layers"))).toEqual([]);
  });

  it("refuses to remove by id an image tagged in several repositories unless forced", async () => {
    const id = t.store.resolve("busybox").id;
    await t.store.tag("busybox", "other:1");
    const f = await failure(t.store.remove(id, { force: false, noPrune: false }, noUsers));
    expect(f.status).toBe(409);
    expect(f.message).toContain("referenced in multiple repositories");
    const r = await t.store.remove(id, { force: true, noPrune: false }, noUsers);
    expect(r.slice(0, 3)).toEqual([{ Untagged: "busybox:latest" }, { Untagged: "other:1" }, { Deleted: id }]);
  });

  it("keeps a layer another image still uses", async () => {
    const base = t.store.resolve("busybox").config.rootfs.diff_ids[0];
    const extra = await makeTar([{ name: "x", data: "x" }]);
    const baseTar = await busyboxLayer();
    await t.store.load(
      streamOf(
        await dockerArchive([
          { config: imageConfig([baseTar, extra]), layers: [baseTar, extra], repoTags: ["child:1"] },
        ]),
      ),
    );
    await t.store.remove("busybox", { force: false, noPrune: false }, noUsers);
    expect(t.store.lowerDirs(t.store.resolve("child:1"))[1]).toBe(
      join(t.root, "layers", base.slice(7), "diff"),
    );
    const layers = await ls(join(t.root, "layers"));
    expect(layers).toHaveLength(2);
    expect(layers).toContain(base.slice(7));
  });
});

describe("prune", () => {
  it("removes dangling images only, and with all every unused image", async () => {
    const dangling = await t.store.importRootfs(streamOf(await makeTar([{ name: "d", data: "d" }])), {});
    const used = await t.store.importRootfs(streamOf(await makeTar([{ name: "u", data: "u" }])), {});
    const users = (id: string): string[] => (id === used.id ? [cid] : []);
    const p = await t.store.prune({ all: false }, users);
    expect(p.ImagesDeleted).toEqual([
      { Deleted: dangling.id },
      { Deleted: dangling.config.rootfs.diff_ids[0] },
    ]);
    expect(p.SpaceReclaimed).toBe(1);
    expect(
      t.store
        .list()
        .map((i) => i.id)
        .sort(),
    ).toEqual([used.id, t.store.resolve("busybox").id].sort());
    const all = await t.store.prune({ all: true }, users);
    expect(all.ImagesDeleted[0]).toEqual({ Untagged: "busybox:latest" });
    expect(t.store.list().map((i) => i.id)).toEqual([used.id]);
  });
});
