import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { busyboxLayer } from "../fixtures/busybox-image.mjs";
import { makeTar } from "../fixtures/tarlib.mjs";
import { failure, ls, streamOf, tempStore, type TestStore } from "./image-helpers.js";

const gz = promisify(gzip);

let t: TestStore;
beforeEach(async () => {
  t = await tempStore();
});
afterEach(async () => {
  await t.cleanup();
});

describe("import", () => {
  it("makes a one-layer image from a root filesystem tar with JSON-form changes", async () => {
    const rec = await t.store.importRootfs(streamOf(await busyboxLayer()), {
      ref: "mybox",
      changes: [
        'CMD ["echo","hi"]',
        "ENV A=1 B=two",
        "WORKDIR /srv",
        "USER app",
        'LABEL team="core team"',
        "EXPOSE 8080 53/udp",
        "STOPSIGNAL SIGINT",
      ],
      message: "from a tarball",
    });
    expect(t.store.resolve("mybox:latest").id).toBe(rec.id);
    expect(rec.repoTags).toEqual(["mybox:latest"]);
    expect(rec.config.rootfs.diff_ids).toHaveLength(1);
    expect(rec.config.config).toEqual({
      Cmd: ["echo", "hi"],
      Env: ["A=1", "B=two"],
      WorkingDir: "/srv",
      User: "app",
      Labels: { team: "core team" },
      ExposedPorts: { "8080/tcp": {}, "53/udp": {} },
      StopSignal: "SIGINT",
    });
    expect(rec.config.comment).toBe("from a tarball");
    expect(rec.config.os).toBe("linux");
    const inspect = t.store.inspect("mybox");
    expect(inspect.Comment).toBe("from a tarball");
    expect((inspect.Config as { Cmd: string[] }).Cmd).toEqual(["echo", "hi"]);
    expect(await readFile(join(t.store.lowerDirs(rec)[0], "etc/group"), "utf8")).toContain("app:x:1000:");
  });

  it("turns shell-form CMD and ENTRYPOINT into /bin/sh -c", async () => {
    const rec = await t.store.importRootfs(streamOf(await makeTar([{ name: "f", data: "f" }])), {
      changes: ["cmd echo hello $HOME", "ENTRYPOINT exec tini --"],
    });
    expect(rec.config.config?.Cmd).toEqual(["/bin/sh", "-c", "echo hello $HOME"]);
    expect(rec.config.config?.Entrypoint).toEqual(["/bin/sh", "-c", "exec tini --"]);
    expect(rec.repoTags).toEqual([]);
  });

  it("accepts a gzip-compressed root filesystem", async () => {
    const plain = await makeTar([{ name: "hello", data: "hello" }]);
    const rec = await t.store.importRootfs(streamOf(await gz(plain)), { ref: "z:1" });
    expect(await readFile(join(t.store.lowerDirs(rec)[0], "hello"), "utf8")).toBe("hello");
  });

  it("refuses an unknown change instruction by name before reading the tar, and stores nothing", async () => {
    const f = await failure(
      t.store.importRootfs(streamOf(await makeTar([{ name: "f", data: "f" }])), {
        ref: "x",
        changes: ["RUN rm -rf /"],
      }),
    );
    expect(f.status).toBe(400);
    expect(f.message).toBe(
      'invalid --change "RUN rm -rf /": RUN is not a valid change instruction; use one of CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL',
    );
    expect(await ls(join(t.root, "layers"))).toEqual([]);
    expect(t.store.list()).toEqual([]);
  });

  it("refuses a bad port and a bad tag", async () => {
    const tar = await makeTar([{ name: "f", data: "f" }]);
    expect(
      (await failure(t.store.importRootfs(streamOf(tar), { changes: ["EXPOSE http"] }))).message,
    ).toContain('"http" is not a port');
    const bad = await failure(t.store.importRootfs(streamOf(tar), { ref: "Bad/Name" }));
    expect(bad.status).toBe(400);
    expect(bad.message).toContain("must be lowercase");
  });

  it("refuses a hostile root filesystem like a hostile layer", async () => {
    const tar = await makeTar([
      { name: "ok", data: "ok" },
      { name: "../../escape", data: "x" },
    ]);
    const f = await failure(t.store.importRootfs(streamOf(tar), { ref: "evil" }));
    expect(f.status).toBe(400);
    expect(await ls(join(t.root, "layers"))).toEqual([]);
    expect(await ls(join(t.root, "tmp"))).toEqual([]);
    expect(await ls(t.base)).toEqual(["image", "sentinel"]);
  });
});
