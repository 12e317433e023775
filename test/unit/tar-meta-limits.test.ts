// PAX and long-name headers are held in memory until their entry: a layer of many or huge
// ones is refused with a 400 naming the layer and the limit, and leaves nothing behind.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import { paxBomb, paxRecord, tarHeader, type PaxBombOptions } from "../fixtures/hostile-tars.mjs";
import { dockerArchive, imageConfig, makeTar } from "../fixtures/tarlib.mjs";
import { TarReader } from "../../agent/engine/image/tar-reader.js";
import { failure, ls, streamOf, tempStore, type TestStore } from "./image-helpers.js";

let t: TestStore;
beforeEach(async () => {
  t = await tempStore();
});
afterEach(async () => {
  await t.cleanup();
});

async function loadBomb(options: PaxBombOptions) {
  const good = await makeTar([{ name: "good", data: "good\n" }]);
  const bomb = paxBomb(options);
  const archive = await dockerArchive([
    { config: imageConfig([good, bomb]), layers: [good, bomb], repoTags: ["bomb:1"] },
  ]);
  return failure(t.store.load(streamOf(archive)));
}

async function readAll(tar: Buffer): Promise<string[]> {
  const r = new TarReader(streamOf(tar));
  const names: string[] = [];
  for (let e = await r.next(); e !== null; e = await r.next()) names.push(e.header.name);
  return names;
}

describe("PAX metadata limits", () => {
  it.each([
    [
      "many extended headers before one entry",
      { kind: "chain", flag: "x", count: 40, size: 60_000 },
      "1 MiB",
    ],
    ["many global headers before one entry", { kind: "chain", flag: "g", count: 40, size: 60_000 }, "1 MiB"],
    ["many GNU long names before one entry", { kind: "chain", flag: "L", count: 40, size: 60_000 }, "1 MiB"],
    ["one huge global header", { kind: "chain", flag: "g", count: 1, size: 3 << 20 }, "1 MiB"],
    [
      "a large extended header on each of many entries",
      { kind: "spread", flag: "x", count: 20, size: 1_000_000 },
      "16 MiB",
    ],
  ] as Array<[string, PaxBombOptions, string]>)(
    "refuses %s with 400 naming the layer and the limit",
    async (_, options, limit) => {
      const f = await loadBomb(options);
      expect(f.status).toBe(400);
      expect(f.message).toMatch(/^layer [0-9a-f]{64}\/layer\.tar: tar metadata over the limit/);
      expect(f.message).toContain(limit);
      // Not even the good first layer stays, nor any temporary folder.
      expect(await ls(join(t.root, "layers"))).toEqual([]);
      expect(await ls(join(t.root, "tmp"))).toEqual([]);
      expect(t.store.list()).toEqual([]);
    },
  );

  it("reads what real layers carry: long names and xattrs on thousands of files", async () => {
    const entries = Array.from({ length: 3000 }, (_, i) => ({
      name: `node_modules/${"deep/".repeat(40)}file-${i}.js`,
      data: "x",
      pax: { "SCHILY.xattr.user.note": "y".repeat(200) },
    }));
    const names = await readAll(await makeTar(entries));
    expect(names).toHaveLength(3000);
    expect(names[2999]).toMatch(/file-2999\.js$/);
  });

  it("still reads one PAX header close to the per-entry limit", async () => {
    const size = (1 << 20) - 4096;
    const tar = Buffer.concat([
      tarHeader("PaxHeader", size, "x"),
      paxRecord(size),
      Buffer.alloc((512 - (size % 512)) % 512),
      tarHeader("f", 0),
      Buffer.alloc(1024),
    ]);
    expect(await readAll(tar)).toEqual(["f"]);
  });
});
