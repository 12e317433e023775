// The build cache: keys from (parent image, instruction, content digest), records on disk that
// point at images, and the content digest of COPY/ADD sources (bytes, modes, names; not times).
// Also what COPY plans to put in its layer.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuildCache, cacheKey } from "../../agent/engine/builder/cache.js";
import {
  digestSources,
  findSources,
  planCopy,
  planWorkdir,
  type CopyRequest,
} from "../../agent/engine/builder/copy.js";
import type { LayerEntry } from "../../shared/tar-pack.js";

let dir: string;
let ctx: string;
let root: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "shoal-cache-"));
  ctx = join(dir, "ctx");
  root = join(dir, "root");
  await mkdir(join(ctx, "files"), { recursive: true });
  await writeFile(join(ctx, "files/a.txt"), "one\n");
  await writeFile(join(ctx, "files/b.txt"), "two\n");
  await writeFile(join(ctx, "files/c.md"), "md\n");
  await mkdir(join(root, "etc"), { recursive: true });
  await mkdir(join(root, "tmp"), { mode: 0o1777 });
  await chmod(join(root, "tmp"), 0o1777);
  await writeFile(
    join(root, "etc/passwd"),
    "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
  );
  await writeFile(join(root, "etc/group"), "root:x:0:\napp:x:1000:\nstaff:x:50:\n");
  await symlink("/tmp", join(root, "scratchpad"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ctxSources = (sources: string[]) =>
  findSources({ keyword: "COPY", sources, srcRoot: ctx, srcKind: "context" });

describe("cache keys and records", () => {
  it("change with the parent, the step and the content", () => {
    const k = cacheKey("sha256:aa", "RUN x", "d1");
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey("sha256:aa", "RUN x", "d1")).toBe(k);
    expect(cacheKey("sha256:bb", "RUN x", "d1")).not.toBe(k);
    expect(cacheKey("sha256:aa", "RUN y", "d1")).not.toBe(k);
    expect(cacheKey("sha256:aa", "RUN x", "d2")).not.toBe(k);
  });

  it("keep records on disk and drop those whose image is gone", async () => {
    const cacheDir = join(dir, "cache");
    const cache = await BuildCache.open(cacheDir);
    const rec = { image: "sha256:11", parent: "sha256:00", step: "ENV A=1", created: "now" };
    await cache.put("k1", rec);
    const reopened = await BuildCache.open(cacheDir);
    expect(await reopened.get("k1", () => true)).toEqual(rec);
    expect(await reopened.get("k1", () => false)).toBeUndefined();
    expect(await reopened.get("k1", () => true)).toBeUndefined();
    await reopened.put("k2", rec);
    expect(await reopened.clear()).toBe(1);
  });
});

describe("content digest of COPY sources", () => {
  it("depends on bytes, modes and names, not on times", async () => {
    const digest = async (): Promise<string> => digestSources(await ctxSources(["files/*.txt"]));
    const first = await digest();
    await utimes(join(ctx, "files/a.txt"), new Date(1000), new Date(1000));
    expect(await digest()).toBe(first);
    await writeFile(join(ctx, "files/c.md"), "changed, but not matched\n");
    expect(await digest()).toBe(first);
    await writeFile(join(ctx, "files/a.txt"), "ONE\n");
    const changed = await digest();
    expect(changed).not.toBe(first);
    await chmod(join(ctx, "files/a.txt"), 0o600);
    expect(await digest()).not.toBe(changed);
    const dirDigest = await digestSources(await ctxSources(["files"]));
    await writeFile(join(ctx, "files/new.txt"), "new\n");
    expect(await digestSources(await ctxSources(["files"]))).not.toBe(dirDigest);
  });

  it("refuses sources outside the context and reports missing ones", async () => {
    await writeFile(join(dir, "outside"), "secret");
    await symlink("../outside", join(ctx, "escape"));
    await symlink("/etc/passwd", join(ctx, "abs"));
    await expect(ctxSources(["../outside"])).rejects.toThrow(
      /forbidden path outside the build context: \.\.\/outside/,
    );
    await expect(ctxSources(["files/../../outside"])).rejects.toThrow(/forbidden path outside/);
    await expect(ctxSources(["escape"])).rejects.toThrow(/forbidden path outside/);
    await expect(ctxSources(["abs"])).rejects.toThrow(/forbidden path outside/);
    await expect(ctxSources(["nope.txt"])).rejects.toThrow(/file not found in build context/);
    await expect(ctxSources(["*.none"])).rejects.toThrow(/no source files were specified/);
  });
});

describe("COPY plans", () => {
  const plan = async (
    sources: string[],
    dest: string,
    extra: Partial<CopyRequest> = {},
  ): Promise<LayerEntry[]> => {
    const req: CopyRequest = {
      keyword: "COPY",
      sources,
      dest,
      workdir: "/",
      srcRoot: ctx,
      srcKind: "context",
      destRoot: root,
      now: new Date(0),
      ...extra,
    };
    const p = await planCopy(req, await findSources(req));
    const out: LayerEntry[] = [];
    for await (const e of p.entries()) out.push(e);
    return out;
  };
  const names = (es: LayerEntry[]): string[] =>
    es.map((e) => `${e.name} ${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid}`);

  it("copies folder contents, makes missing parents, chowns by name", async () => {
    expect(names(await plan(["files"], "/opt/app/", { chown: "app:staff" }))).toEqual([
      "opt dir 755 1000:50",
      "opt/app dir 755 1000:50",
      "opt/app/a.txt file 644 1000:50",
      "opt/app/b.txt file 644 1000:50",
      "opt/app/c.md file 644 1000:50",
    ]);
  });

  it("keeps the attributes of existing folders and follows symlinks inside the image", async () => {
    expect(names(await plan(["files/a.txt"], "/scratchpad/"))).toEqual([
      "tmp dir 1777 0:0",
      "tmp/a.txt file 644 0:0",
    ]);
    expect(names(await plan(["files/a.txt"], "/tmp/renamed.txt", { chmod: "600" }))).toEqual([
      "tmp dir 1777 0:0",
      "tmp/renamed.txt file 600 0:0",
    ]);
    // a file onto an existing folder goes into it
    expect(names(await plan(["files/b.txt"], "/tmp"))).toEqual([
      "tmp dir 1777 0:0",
      "tmp/b.txt file 644 0:0",
    ]);
  });

  it("relative destinations follow WORKDIR; several sources need a folder", async () => {
    expect(names(await plan(["files/*.txt"], "data/", { workdir: "/srv" }))).toEqual([
      "srv dir 755 0:0",
      "srv/data dir 755 0:0",
      "srv/data/a.txt file 644 0:0",
      "srv/data/b.txt file 644 0:0",
    ]);
    await expect(plan(["files/*.txt"], "/one")).rejects.toThrow(
      /the destination must be a directory and end with a \//,
    );
    await expect(plan(["files/a.txt"], "/etc/passwd/x")).rejects.toThrow(/not a directory/);
    await expect(plan(["files"], "/", { chown: "nobody" })).rejects.toThrow(/unable to find user nobody/);
  });

  it("WORKDIR makes only what is missing", async () => {
    expect(await planWorkdir(root, "/tmp")).toEqual([]);
    expect(names(await planWorkdir(root, "/srv/app", new Date(0)))).toEqual([
      "srv dir 755 0:0",
      "srv/app dir 755 0:0",
    ]);
    await expect(planWorkdir(root, "/etc/passwd")).rejects.toThrow(/not a directory/);
  });
});
