// The container path resolver of docker cp: paths and symlinks resolve inside the container's
// root as under chroot, mounts lead to their host folders, a running container's tmpfs is refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ContainerFs, followsLast, requestedBase } from "../../agent/engine/files/container-fs.js";

let base: string;
let rootfs: string;
let vol: string;

beforeAll(async () => {
  base = await mkdtemp("/tmp/shoal-cfs-");
  rootfs = join(base, "rootfs");
  vol = join(base, "vol");
  await mkdir(join(rootfs, "etc"), { recursive: true });
  await mkdir(join(rootfs, "tmp/deep/er"), { recursive: true });
  await mkdir(join(rootfs, "data"), { recursive: true });
  await mkdir(join(rootfs, "run"), { recursive: true });
  await writeFile(join(rootfs, "etc/passwd"), "container passwd\n");
  await symlink("/etc", join(rootfs, "tmp/etclink"));
  await symlink("../../../../../../..", join(rootfs, "tmp/deep/up"));
  await symlink("loop2", join(rootfs, "tmp/loop1"));
  await symlink("loop1", join(rootfs, "tmp/loop2"));
  await symlink("/etc/passwd", join(rootfs, "tmp/pw"));
  await writeFile(join(rootfs, "tmp/file"), "f");
  await mkdir(vol);
  await writeFile(join(vol, "in-volume"), "v");
  await symlink("/etc", join(vol, "etc-from-volume"));
  // a link the host would follow to its own /etc
  await symlink("/etc", join(vol, "hostlike"));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

const fsOf = (running = false) =>
  new ContainerFs(
    rootfs,
    [
      { dest: "/data", source: vol, kind: "volume", readOnly: false },
      { dest: "/run", source: "", kind: "tmpfs", readOnly: false },
    ],
    running,
    "web",
  );

async function resolve(path: string, followLast = false, running = false) {
  const loc = await fsOf(running).locate(path, followLast);
  try {
    return {
      path: loc.path,
      parent: loc.parent.fd,
      name: loc.name,
      dir: loc.stats.isDirectory(),
      mount: loc.mount?.dest,
    };
  } finally {
    await loc.release();
  }
}

describe("container path resolution", () => {
  it("keeps .. at the container's root", async () => {
    expect((await resolve("../../../etc/passwd")).path).toBe("/etc/passwd");
    expect((await resolve("tmp/../../etc/passwd")).path).toBe("/etc/passwd");
    expect((await resolve("/")).path).toBe("/");
  });

  it("follows absolute and climbing symlinks against the container's root", async () => {
    expect((await resolve("/tmp/etclink/passwd")).path).toBe("/etc/passwd");
    expect((await resolve("/tmp/deep/up/etc/passwd")).path).toBe("/etc/passwd");
    expect((await resolve("/tmp/deep/up", true)).path).toBe("/");
  });

  it("does not follow the last symlink unless asked (trailing slash)", async () => {
    const link = await resolve("/tmp/pw");
    expect(link.path).toBe("/tmp/pw");
    expect((await resolve("/tmp/pw", true)).path).toBe("/etc/passwd");
    expect(followsLast("/tmp/etclink/")).toBe(true);
    expect(followsLast("/tmp/etclink")).toBe(false);
    expect(requestedBase("/tmp/dir/.")).toBe(".");
    expect(requestedBase("/tmp/dir/")).toBe("dir");
  });

  it("answers 404 for a missing file and 400 for a loop or a file used as a folder", async () => {
    await expect(resolve("/nope/x")).rejects.toMatchObject({
      status: 404,
      message: "Could not find the file /nope/x in container web",
    });
    await expect(resolve("/tmp/loop1/x")).rejects.toMatchObject({ status: 400 });
    await expect(resolve("/tmp/file/x")).rejects.toMatchObject({ status: 400 });
  });

  it("resolves volumes to their host folder, and links inside them against the container's root", async () => {
    const v = await resolve("/data/in-volume");
    expect(v.mount).toBe("/data");
    expect(v.path).toBe("/data/in-volume");
    expect((await resolve("/data/etc-from-volume/passwd")).path).toBe("/etc/passwd");
    expect((await resolve("/data/hostlike/passwd")).mount).toBeUndefined();
  });

  it("refuses a running container's tmpfs by name and reads a stopped one's mount point", async () => {
    await expect(resolve("/run/x", false, true)).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("tmpfs mount /run of the running container web"),
    });
    expect((await resolve("/run", false, false)).dir).toBe(true);
  });
});
