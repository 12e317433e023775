// Image commands through the real docker CLI that used to fail or differ from Docker: import
// from a file and from stdin, pull -a, `images REPO` and its filters, rmi -f of an image a
// stopped container uses, run --platform of an image of another platform.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const run = promisify(execFile);
let d: TestDaemon;
let reg: TestRegistry;
let tmp: string;
let rootfsTar: string;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input);

beforeAll(async () => {
  d = await startDaemon();
  reg = await startRegistry({ netns: d.netns });
  await loadBusybox(d.socket);
  tmp = await mkdtemp("/tmp/shoal-images-");
  // A root filesystem as `docker export` makes one: busybox-static and a marker file, gzipped.
  const root = join(tmp, "root");
  await run("sh", [
    "-c",
    `mkdir -p ${root}/bin && cp /bin/busybox ${root}/bin/busybox && ln -s busybox ${root}/bin/sh && ` +
      `ln -s busybox ${root}/bin/cat && echo imported > ${root}/marker && ` +
      `tar -C ${root} -czf ${tmp}/rootfs.tar.gz .`,
  ]);
  rootfsTar = join(tmp, "rootfs.tar.gz");
});
afterAll(async () => {
  await reg?.stop();
  await d?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("docker image commands against shoald", () => {
  it("import from a file and from stdin, then run", async () => {
    const fromFile = await dk(["import", "--change", 'CMD ["cat", "/marker"]', rootfsTar, "imported:file"]);
    expect(fromFile.stderr).toBe("");
    expect(fromFile.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect((await dk(["run", "--rm", "imported:file"])).stdout).toBe("imported\n");

    const fromStdin = await dk(["import", "-", "imported:stdin"], await readFile(rootfsTar));
    expect(fromStdin.stderr).toBe("");
    expect(fromStdin.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const r = await dk(["run", "--rm", "imported:stdin", "cat", "/marker"]);
    expect(r).toMatchObject({ code: 0, stdout: "imported\n" });
    const history = await dk(["history", "--format", "{{.Comment}}", "imported:stdin"]);
    expect(history.stdout.trim()).toBe("Imported from -");
  });

  it("images REPO and REPO:TAG list only the matching references; before and since", async () => {
    expect((await dk(["tag", "busybox", "mybox:1"])).code).toBe(0);
    expect((await dk(["tag", "busybox", "mybox:2"])).code).toBe(0);
    const fmt = ["--format", "{{.Repository}}:{{.Tag}}"];
    const all = await dk(["images", ...fmt]);
    expect(all.stdout.split("\n").filter(Boolean).sort()).toEqual([
      "busybox:latest",
      "imported:file",
      "imported:stdin",
      "mybox:1",
      "mybox:2",
    ]);
    // The same image carries busybox:latest, mybox:1 and mybox:2: only the asked ones show.
    expect((await dk(["images", ...fmt, "mybox"])).stdout.split("\n").filter(Boolean).sort()).toEqual([
      "mybox:1",
      "mybox:2",
    ]);
    expect((await dk(["images", ...fmt, "mybox:2"])).stdout).toBe("mybox:2\n");
    expect((await dk(["images", ...fmt, "busybox"])).stdout).toBe("busybox:latest\n");
    expect((await dk(["images", ...fmt, "nosuch"])).stdout).toBe("");
    expect((await dk(["images", ...fmt, "--filter", "reference=my*:1"])).stdout).toBe("mybox:1\n");
    // imported:file was made before imported:stdin, both long after the busybox fixture.
    expect((await dk(["images", ...fmt, "--filter", "since=imported:file"])).stdout).toBe("imported:stdin\n");
    const before = await dk(["images", ...fmt, "--filter", "before=imported:stdin"]);
    expect(before.stdout.split("\n").filter(Boolean).sort()).toEqual([
      "busybox:latest",
      "imported:file",
      "mybox:1",
      "mybox:2",
    ]);
    const missing = await dk(["images", "--filter", "before=nosuch:1"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/No such image: nosuch:1/);
    const bad = await dk(["images", "--filter", "colour=red"]);
    expect(bad.stderr).toMatch(/invalid filter 'colour'/);
    await dk(["rmi", "mybox:1", "mybox:2"]);
  });

  it("rmi -f of an image a stopped container uses only untags it; the container still starts", async () => {
    expect((await dk(["create", "--name", "user", "imported:file"])).code).toBe(0);
    try {
      const id = (await dk(["image", "inspect", "-f", "{{.Id}}", "imported:file"])).stdout.trim();
      const plain = await dk(["rmi", "imported:file"]);
      expect(plain.code).not.toBe(0);
      expect(plain.stderr).toMatch(/conflict: unable to remove image imported:file \(must be forced\)/);
      const forced = await dk(["rmi", "-f", "imported:file"]);
      expect(forced).toMatchObject({ code: 0, stdout: "Untagged: imported:file\n" });
      // Still there, untagged, for the container.
      const listed = await dk(["images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}"]);
      expect(listed.stdout).toContain(`${id} <none>`);
      const start = await dk(["start", "-a", "user"]);
      expect(start.stdout).toBe("imported\n");
      expect((await dk(["inspect", "-f", "{{.Image}}", "user"])).stdout.trim()).toBe(id);
    } finally {
      await dk(["rm", "-f", "user"]);
    }
  });

  it("run --platform of an image of another platform is refused naming both", async () => {
    const arch = (await dk(["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "busybox"])).stdout.trim();
    const other = arch === "linux/arm64" ? "linux/amd64" : "linux/arm64";
    const r = await dk(["run", "--rm", "--platform", other, "busybox", "true"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`image busybox is for platform ${arch}, but --platform asked for ${other}`);
    const same = await dk(["run", "--rm", "--platform", arch, "busybox", "echo", "same"]);
    expect(same).toMatchObject({ code: 0, stdout: "same\n" });
    expect((await dk(["ps", "-aq"])).stdout).toBe("");
  });

  it("pull -a gets every tag of the repository", async () => {
    const repo = `${reg.host}/team/box`;
    for (const tag of ["1", "2", "edge"]) {
      expect((await dk(["tag", "busybox", `${repo}:${tag}`])).code).toBe(0);
      const push = await dk(["push", `${repo}:${tag}`]);
      expect(push.code, push.stderr).toBe(0);
    }
    expect((await dk(["rmi", `${repo}:1`, `${repo}:2`, `${repo}:edge`])).code).toBe(0);
    const pull = await dk(["pull", "-a", repo]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain(`Status: Downloaded newer images for ${repo}`);
    const tags = await dk(["images", "--format", "{{.Tag}}", repo]);
    expect(tags.stdout.split("\n").filter(Boolean).sort()).toEqual(["1", "2", "edge"]);
    const none = await dk(["pull", "-a", `${reg.host}/team/nothing`]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/team\/nothing/);
    await dk(["rmi", `${repo}:1`, `${repo}:2`, `${repo}:edge`]);
    // The shoal CLI: pull -a, images REPO.
    const sp = await shoal(d.socket, ["pull", "-a", "-q", repo]);
    expect(sp, sp.stderr).toMatchObject({ code: 0, stdout: `${repo}\n` });
    const si = await shoal(d.socket, ["images", "--format", "{{.Tag}}", repo]);
    expect(si.stdout.split("\n").filter(Boolean).sort()).toEqual(["1", "2", "edge"]);
    const tagged = await shoal(d.socket, ["pull", "-a", `${repo}:1`]);
    expect(tagged.code).not.toBe(0);
    expect(tagged.stderr).toMatch(/tag can't be used with --all-tags/);
    await dk(["rmi", `${repo}:1`, `${repo}:2`, `${repo}:edge`]);
  });
});
