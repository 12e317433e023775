// Volumes, binds and tmpfs in the OCI spec: options, Docker's tmpfs defaults, order.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildSpec } from "../../agent/engine/runtime/spec.js";
import { tmpfsData, tmpfsMountOptions, userMounts } from "../../agent/engine/runtime/spec-mounts.js";
import type { MountPoint } from "../../agent/engine/container/types.js";
import { ShoalError } from "../../shared/errors.js";
import { makeInput, makeRecord } from "./spec-helpers.js";

const volume = (name: string, dest: string, rw = true): MountPoint => ({
  Type: "volume",
  Name: name,
  Source: `/var/lib/shoal/volumes/${name}/_data`,
  Destination: dest,
  Driver: "local",
  Mode: "z",
  RW: rw,
  Propagation: "",
});

describe("tmpfs options", () => {
  it("start from Docker's noexec,nosuid,nodev and let the user's win", () => {
    expect(tmpfsMountOptions("", "--tmpfs /t")).toEqual(["noexec", "nosuid", "nodev", "rprivate"]);
    expect(tmpfsMountOptions("exec,size=64m,mode=1777", "--tmpfs /t")).toEqual([
      "nosuid",
      "nodev",
      "rprivate",
      "exec",
      "size=64m",
      "mode=1777",
    ]);
    expect(tmpfsMountOptions("size=1m,size=2m", "--tmpfs /t")).toContain("size=2m");
    expect(() => tmpfsMountOptions("size=1m,uid=root", "--tmpfs /t")).toThrow(ShoalError);
  });

  it("--mount's tmpfs-size and tmpfs-mode become moby's data string", () => {
    expect(tmpfsData({ SizeBytes: 64 * 1024 * 1024, Mode: 0o1777 }, false)).toBe("mode=1777,size=64m");
    expect(tmpfsData({ SizeBytes: 1536 }, true)).toBe("ro,size=1536");
    expect(tmpfsData({ SizeBytes: 2 * 1024 ** 3 }, false)).toBe("size=2g");
  });
});

describe("user mounts in the spec", () => {
  let rootfs: string;
  beforeEach(async () => {
    rootfs = await mkdtemp(join(tmpdir(), "shoal-volume-spec-"));
  });
  afterEach(async () => {
    await rm(rootfs, { recursive: true, force: true });
  });

  it("binds and volumes are recursive binds with ro/rw and rprivate unless asked", () => {
    const rec = makeRecord();
    rec.Mounts = [
      volume("data", "/data", false),
      { Type: "bind", Source: "/srv", Destination: "/srv", Mode: "", RW: true, Propagation: "rslave" },
    ];
    const mounts = userMounts(rec);
    expect(mounts).toEqual([
      {
        destination: "/data",
        type: "bind",
        source: "/var/lib/shoal/volumes/data/_data",
        options: ["rbind", "ro", "rprivate"],
      },
      { destination: "/srv", type: "bind", source: "/srv", options: ["rbind", "rw", "rslave"] },
    ]);
  });

  it("come after the defaults, parents before children, replacing a default of the same path", async () => {
    const rec = makeRecord({
      host: {
        Tmpfs: { "/dev/shm": "size=1m", "/run/": "" },
        Mounts: [{ Type: "tmpfs", Target: "/var/cache/x", TmpfsOptions: { SizeBytes: 1 << 20 } }],
      },
    });
    rec.Mounts = [volume("deep", "/var/lib/a/b"), volume("top", "/var"), volume("mid", "/var/lib")];
    const s = await buildSpec(makeInput(rec, rootfs));
    const dests = s.mounts.map((m) => m.destination);
    expect(dests.filter((d) => d === "/dev/shm")).toHaveLength(1);
    expect(s.mounts.find((m) => m.destination === "/dev/shm")?.options).toContain("size=1m");
    for (const [parent, child] of [
      ["/var", "/var/lib"],
      ["/var/lib", "/var/lib/a/b"],
      ["/var", "/var/cache/x"],
      ["/dev", "/dev/shm"],
    ]) {
      expect(dests.indexOf(parent)).toBeLessThan(dests.indexOf(child));
    }
    expect(s.mounts.find((m) => m.destination === "/run")).toEqual({
      destination: "/run",
      type: "tmpfs",
      source: "tmpfs",
      options: ["noexec", "nosuid", "nodev", "rprivate"],
    });
    expect(s.mounts.find((m) => m.destination === "/var/cache/x")?.options).toContain("size=1m");
    expect(s.linux.rootfsPropagation).toBeUndefined();
  });

  it("a shared bind makes the root shared, as dockerd does", async () => {
    const rec = makeRecord();
    rec.Mounts = [
      { Type: "bind", Source: "/mnt", Destination: "/mnt", Mode: "", RW: true, Propagation: "rshared" },
    ];
    const s = await buildSpec(makeInput(rec, rootfs));
    expect(s.linux.rootfsPropagation).toBe("rshared");
  });

  it("a container without mounts keeps exactly the default list", async () => {
    const plain = await buildSpec(makeInput(makeRecord(), rootfs));
    expect(plain.mounts.map((m) => m.destination)).not.toContain("/data");
    expect(plain.mounts[0].destination).toBe("/proc");
  });
});
