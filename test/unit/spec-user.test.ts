import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveUser } from "../../agent/engine/runtime/user.js";

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001:::/bin/sh
`;
const GROUP = `root:x:0:
daemon:x:1:
app:x:1000:
wheel:x:10:root,app
audio:x:29:app
staff:x:50:
`;

describe("resolveUser", () => {
  let rootfs: string;
  beforeEach(async () => {
    rootfs = await mkdtemp(join(tmpdir(), "shoal-spec-user-"));
    await mkdir(join(rootfs, "etc"));
    await writeFile(join(rootfs, "etc", "passwd"), PASSWD);
    await writeFile(join(rootfs, "etc", "group"), GROUP);
  });
  afterEach(async () => {
    await rm(rootfs, { recursive: true, force: true });
  });

  it("defaults to root with root's home and groups", async () => {
    expect(await resolveUser(rootfs, "")).toEqual({ uid: 0, gid: 0, additionalGids: [0, 10], home: "/root" });
  });

  it("looks a name up with its supplementary groups", async () => {
    expect(await resolveUser(rootfs, "app")).toEqual({
      uid: 1000,
      gid: 1000,
      additionalGids: [1000, 10, 29],
      home: "/home/app",
    });
  });

  it("takes a uid from passwd when listed and as-is otherwise", async () => {
    expect(await resolveUser(rootfs, "1000")).toMatchObject({ uid: 1000, gid: 1000, home: "/home/app" });
    expect(await resolveUser(rootfs, "4242")).toEqual({ uid: 4242, gid: 0, additionalGids: [0], home: "/" });
  });

  it("takes name:group and uid:gid, the group replacing supplementary groups", async () => {
    expect(await resolveUser(rootfs, "app:staff")).toEqual({
      uid: 1000,
      gid: 50,
      additionalGids: [50],
      home: "/home/app",
    });
    expect(await resolveUser(rootfs, "4242:4343")).toEqual({
      uid: 4242,
      gid: 4343,
      additionalGids: [4343],
      home: "/",
    });
    expect(await resolveUser(rootfs, "app:29")).toMatchObject({ uid: 1000, gid: 29 });
  });

  it("falls back to / for an empty home", async () => {
    expect((await resolveUser(rootfs, "nohome")).home).toBe("/");
  });

  it("rejects unknown names with Docker's wording", async () => {
    await expect(resolveUser(rootfs, "ghost")).rejects.toThrow(
      "unable to find user ghost: no matching entries in passwd file",
    );
    await expect(resolveUser(rootfs, "app:ghosts")).rejects.toThrow(
      "unable to find group ghosts: no matching entries in group file",
    );
  });

  it("works without passwd and group files for numeric ids", async () => {
    await rm(join(rootfs, "etc"), { recursive: true });
    expect(await resolveUser(rootfs, "")).toEqual({ uid: 0, gid: 0, additionalGids: [0], home: "/" });
    expect(await resolveUser(rootfs, "5:6")).toEqual({ uid: 5, gid: 6, additionalGids: [6], home: "/" });
    await expect(resolveUser(rootfs, "app")).rejects.toThrow(/no matching entries in passwd file/);
  });

  it("does not follow a symlinked /etc/passwd or /etc out of the rootfs", async () => {
    const outside = await mkdtemp(join(tmpdir(), "shoal-spec-host-"));
    try {
      await writeFile(join(outside, "passwd"), "evil:x:0:0::/evil:/bin/sh\n");
      await rm(join(rootfs, "etc", "passwd"));
      await symlink(join(outside, "passwd"), join(rootfs, "etc", "passwd"));
      await expect(resolveUser(rootfs, "evil")).rejects.toThrow(/unable to find user evil/);

      await rm(join(rootfs, "etc"), { recursive: true });
      await symlink(outside, join(rootfs, "etc"));
      await expect(resolveUser(rootfs, "evil")).rejects.toThrow(/unable to find user evil/);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});
