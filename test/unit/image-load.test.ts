import { execFile } from "node:child_process";
import { lstat, readFile, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildBusyboxArchive, busyboxLayer } from "../fixtures/busybox-image.mjs";
import { dockerArchive, imageConfig, makeTar, ociArchive, sha256 } from "../fixtures/tarlib.mjs";
import { failure, ls, streamOf, tempStore, type TestStore } from "./image-helpers.js";

const gz = promisify(gzip);
const run = promisify(execFile);

let t: TestStore;
beforeEach(async () => {
  t = await tempStore();
});
afterEach(async () => {
  await t.cleanup();
});

describe("load a docker save archive", () => {
  it("loads busybox and finds it by name, full id, short id and prefix", async () => {
    const lines = await t.store.load(streamOf(await buildBusyboxArchive()));
    expect(lines).toEqual(["Loaded image: busybox:latest"]);
    const img = t.store.resolve("busybox");
    expect(img.repoTags).toEqual(["busybox:latest"]);
    expect(img.config.config?.Cmd).toEqual(["sh"]);
    for (const ref of [
      "busybox:latest",
      "docker.io/library/busybox:latest",
      img.id,
      img.id.slice(7),
      img.id.slice(7, 19),
      img.id.slice(0, 12),
    ]) {
      expect(t.store.resolve(ref).id).toBe(img.id);
    }
    const nf = await failure(Promise.resolve().then(() => t.store.resolve("busybox:1.0")));
    expect(nf).toEqual({ status: 404, message: "No such image: busybox:1.0" });
    expect(img.size).toBeGreaterThan(1_000_000);
  });

  it("unpacks a working root filesystem with modes, owners and symlinks", async () => {
    await t.store.load(streamOf(await buildBusyboxArchive()));
    const [dir] = t.store.lowerDirs(t.store.resolve("busybox"));
    const bb = await stat(join(dir, "bin/busybox"));
    expect(bb.mode & 0o7777).toBe(0o755);
    expect(await readlink(join(dir, "bin/sh"))).toBe("busybox");
    expect((await stat(join(dir, "tmp"))).mode & 0o7777).toBe(0o1777);
    expect((await stat(join(dir, "home/app"))).uid).toBe(1000);
    expect((await stat(join(dir, "etc/passwd"))).mtime.toISOString()).toBe("2024-01-01T00:00:00.000Z");
    expect(await readFile(join(dir, "etc/passwd"), "utf8")).toContain("app:x:1000:1000");
    // The unpacked busybox really runs.
    const { stdout } = await run(join(dir, "bin/busybox"), ["echo", "alive"]);
    expect(stdout).toBe("alive\n");
  });

  it("survives a daemon restart: images, tags and layers come back", async () => {
    await t.store.load(streamOf(await buildBusyboxArchive()));
    const id = t.store.resolve("busybox").id;
    const again = await t.reopen();
    expect(again.resolve("busybox:latest").id).toBe(id);
    expect(again.resolve("busybox").repoTags).toEqual(["busybox:latest"]);
    expect((await lstat(join(again.lowerDirs(again.resolve(id))[0], "bin/busybox"))).isFile()).toBe(true);
  });

  it("unpacks a layer shared by two images only once", async () => {
    const base = await busyboxLayer();
    const extra = await makeTar([{ name: "app.txt", data: "app\n" }]);
    const one = await dockerArchive([{ config: imageConfig([base]), layers: [base], repoTags: ["one:1"] }]);
    const two = await dockerArchive(
      [
        {
          config: imageConfig([base, extra], { Cmd: ["cat", "/app.txt"] }),
          layers: [base, extra],
          repoTags: ["two:1"],
        },
      ],
      {
        layout: "blobs",
      },
    );
    await t.store.load(streamOf(one));
    const progress: string[] = [];
    await t.store.load(streamOf(two), (m) => progress.push(m));
    expect(progress[0]).toMatch(/^Layer [0-9a-f]{12} already exists$/);
    expect(await ls(join(t.root, "layers"))).toHaveLength(2);
    const a = t.store.lowerDirs(t.store.resolve("one:1"));
    const b = t.store.lowerDirs(t.store.resolve("two:1"));
    expect(b).toHaveLength(2);
    expect(b[1]).toBe(a[0]); // same folder, top first
    expect(b[0]).toBe(join(t.root, "layers", sha256(extra).slice(7), "diff"));
  });

  it("loads gzip-compressed layers and names images without tags by id", async () => {
    const layer = await makeTar([{ name: "x", data: "x" }]);
    const config = imageConfig([layer]);
    const archive = await dockerArchive([{ config, layers: [await gz(layer)], repoTags: null }]);
    const lines = await t.store.load(streamOf(archive));
    expect(lines).toEqual([`Loaded image ID: ${sha256(Buffer.from(JSON.stringify(config)))}`]);
  });

  it("refuses an archive whose layer does not match the config's diff_id, and stores nothing", async () => {
    const layer = await makeTar([{ name: "x", data: "x" }]);
    const other = await makeTar([{ name: "x", data: "y" }]);
    const archive = await dockerArchive([
      { config: imageConfig([other]), layers: [layer], repoTags: ["bad:1"] },
    ]);
    // dockerArchive names the layer file after its own digest; the config claims another.
    const f = await failure(t.store.load(streamOf(archive)));
    expect(f.status).toBe(400);
    expect(f.message).toMatch(/hashes to sha256:[0-9a-f]{64} but the image config says/);
    expect(await ls(join(t.root, "layers"))).toEqual([]);
    expect(await ls(join(t.root, "images"))).toEqual([]);
    expect(await ls(join(t.root, "tmp"))).toEqual([]);
    expect(t.store.list()).toEqual([]);
  });

  it("refuses input that is not an image archive", async () => {
    const f = await failure(
      t.store.load(streamOf(Buffer.from("hello, this is not a tar file at all".repeat(20)))),
    );
    expect(f.status).toBe(400);
    const g = await failure(t.store.load(streamOf(await makeTar([{ name: "readme", data: "hi" }]))));
    expect(g.status).toBe(400);
    expect(g.message).toContain("neither manifest.json");
    expect(await ls(join(t.root, "tmp"))).toEqual([]);
  });

  it("refuses a truncated archive with 400 and leaves nothing behind", async () => {
    const full = await buildBusyboxArchive();
    const f = await failure(t.store.load(streamOf(full.subarray(0, Math.floor(full.length / 2)))));
    expect(f.status).toBe(400);
    expect(f.message).toContain("truncated archive");
    expect(await ls(join(t.root, "tmp"))).toEqual([]);
    expect(t.store.list()).toEqual([]);
  });

  it("refuses a manifest naming a layer the archive lacks", async () => {
    const layer = await makeTar([{ name: "x", data: "x" }]);
    const archive = await makeTar([
      { name: "c.json", data: JSON.stringify(imageConfig([layer])) },
      {
        name: "manifest.json",
        data: JSON.stringify([{ Config: "c.json", RepoTags: ["m:1"], Layers: ["nope/layer.tar"] }]),
      },
    ]);
    const f = await failure(t.store.load(streamOf(archive)));
    expect(f).toEqual({
      status: 400,
      message: 'invalid image archive: layer "nope/layer.tar" is missing from the archive',
    });
  });

  it("refuses an invalid tag in the archive", async () => {
    const layer = await makeTar([{ name: "x", data: "x" }]);
    const archive = await dockerArchive([
      { config: imageConfig([layer]), layers: [layer], repoTags: ["UPPER:case"] },
    ]);
    const f = await failure(t.store.load(streamOf(archive)));
    expect(f.status).toBe(400);
    expect(f.message).toContain("must be lowercase");
  });
});

describe("load an OCI image layout", () => {
  it("loads gzip layers through a nested index, picking linux/amd64, named by annotation", async () => {
    const layer = await makeTar([{ name: "hello.txt", data: "hello\n" }]);
    const config = imageConfig([layer], { Cmd: ["cat", "/hello.txt"] });
    const archive = await ociArchive({
      config,
      layers: [layer],
      compressedLayers: [await gz(layer)],
      name: "docker.io/library/hello:1",
      nestIndex: true,
    });
    const lines = await t.store.load(streamOf(archive));
    expect(lines).toEqual(["Loaded image: hello:1"]);
    const img = t.store.resolve("hello:1");
    expect(img.repoDigests[0]).toMatch(/^hello@sha256:[0-9a-f]{64}$/);
    expect(t.store.resolve(img.repoDigests[0]).id).toBe(img.id);
    expect(await readFile(join(t.store.lowerDirs(img)[0], "hello.txt"), "utf8")).toBe("hello\n");
  });

  it("uses org.opencontainers.image.ref.name when it is a full reference", async () => {
    const layer = await makeTar([{ name: "a", data: "a" }]);
    const archive = await ociArchive({
      config: imageConfig([layer]),
      layers: [layer],
      refName: "localhost:5000/team/app:v2",
    });
    expect(await t.store.load(streamOf(archive))).toEqual(["Loaded image: localhost:5000/team/app:v2"]);
  });

  it("refuses a blob whose content does not match its digest", async () => {
    const layer = await makeTar([{ name: "a", data: "a" }]);
    const archive = await ociArchive({
      config: imageConfig([layer]),
      layers: [layer],
      compressedLayers: [Buffer.from("garbage")],
    });
    const f = await failure(t.store.load(streamOf(archive)));
    expect(f.status).toBe(400);
    expect(await ls(join(t.root, "layers"))).toEqual([]);
  });

  it("refuses an index with no image for this platform", async () => {
    const layer = await makeTar([{ name: "a", data: "a" }]);
    const configBuf = Buffer.from(JSON.stringify({ ...imageConfig([layer]), architecture: "arm64" }));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        config: {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: sha256(configBuf),
          size: configBuf.length,
        },
        layers: [
          { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length },
        ],
      }),
    );
    const other = {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: sha256(Buffer.from("s390x")),
      size: 5,
      platform: { os: "linux", architecture: "s390x" },
    };
    const inner = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          other,
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: sha256(manifest),
            size: manifest.length,
            platform: { os: "linux", architecture: "arm64" },
          },
        ],
      }),
    );
    const blob = (b: Buffer) => ({ name: `blobs/sha256/${sha256(b).slice(7)}`, data: b });
    const archive = await makeTar([
      { name: "oci-layout", data: '{"imageLayoutVersion":"1.0.0"}' },
      blob(configBuf),
      blob(layer),
      blob(manifest),
      blob(inner),
      {
        name: "index.json",
        data: JSON.stringify({
          schemaVersion: 2,
          manifests: [
            {
              mediaType: "application/vnd.oci.image.index.v1+json",
              digest: sha256(inner),
              size: inner.length,
            },
          ],
        }),
      },
    ]);
    const f = await failure(t.store.load(streamOf(archive)));
    expect(f.status).toBe(400);
    expect(f.message).toContain("no linux/amd64 image in the index (it has linux/s390x, linux/arm64)");
    expect(t.store.list()).toEqual([]);
  });
});

describe("resolve", () => {
  it("accepts id prefixes of 4 digits or more, with or without sha256:", async () => {
    await t.store.load(streamOf(await buildBusyboxArchive()));
    const id = t.store.resolve("busybox").id;
    expect(t.store.resolve(id.slice(7, 11)).id).toBe(id);
    expect(t.store.resolve(id.slice(0, 11)).id).toBe(id);
    expect((await failure(Promise.resolve().then(() => t.store.resolve(id.slice(7, 10))))).status).toBe(404);
    expect((await failure(Promise.resolve().then(() => t.store.resolve("Not_A/Valid::ref")))).status).toBe(
      404,
    );
  });
});
