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
import { docker } from "../helpers/cli.js";
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
    const fromFile = await dk(["import", "--change", "CMD [\"cat\", \"/marker\"]", rootfsTar, "imported:file"]);
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
    await dk(["rmi", "imported:file", "imported:stdin"]);
  });
});
