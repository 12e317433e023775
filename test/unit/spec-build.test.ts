import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { capabilityMask } from "../../agent/engine/runtime/capabilities.js";
import { buildSpec } from "../../agent/engine/runtime/spec.js";
import { ShoalError } from "../../shared/errors.js";
import { makeInput, makeRecord } from "./spec-helpers.js";

const MiB = 1024 * 1024;

describe("buildSpec", () => {
  let rootfs: string;
  beforeEach(async () => {
    rootfs = await mkdtemp(join(tmpdir(), "shoal-spec-build-"));
    await mkdir(join(rootfs, "etc"));
    await writeFile(
      join(rootfs, "etc", "passwd"),
      "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    );
    await writeFile(join(rootfs, "etc", "group"), "root:x:0:\napp:x:1000:\nwheel:x:10:app\n");
  });
  afterEach(async () => {
    await rm(rootfs, { recursive: true, force: true });
  });

  const build = (rec: Parameters<typeof makeRecord>[0] = {}, over: Parameters<typeof makeInput>[2] = {}) =>
    buildSpec(makeInput(makeRecord(rec), rootfs, over));

  it("gives a default container Docker's profile", async () => {
    const s = await build();
    expect(s.ociVersion).toBe("1.0.2-dev");
    const caps = s.process.capabilities;
    expect(caps.bounding).toHaveLength(14);
    expect(capabilityMask(caps.bounding)).toBe("00000000a80425fb");
    expect(caps.effective).toEqual(caps.bounding);
    expect(caps.permitted).toEqual(caps.bounding);
    expect(caps.inheritable).toEqual([]);
    expect(caps.ambient).toEqual([]);
    expect(s.process.noNewPrivileges).toBe(false);
    expect(s.process.apparmorProfile).toBeUndefined();
    expect(s.process.oomScoreAdj).toBe(0);
    expect(s.linux.seccomp?.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(s.linux.maskedPaths).toEqual([
      "/proc/asound",
      "/proc/acpi",
      "/proc/kcore",
      "/proc/keys",
      "/proc/latency_stats",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/proc/sched_debug",
      "/proc/scsi",
      "/sys/firmware",
      "/sys/devices/virtual/powercap",
    ]);
    expect(s.linux.readonlyPaths).toEqual([
      "/proc/bus",
      "/proc/fs",
      "/proc/irq",
      "/proc/sys",
      "/proc/sysrq-trigger",
    ]);
    expect(s.linux.sysctl).toBeUndefined();
    expect(s.linux.devices).toEqual([]);
    expect(s.linux.resources.devices[0]).toEqual({ allow: false, access: "rwm" });
    expect(s.linux.resources.devices).toContainEqual({
      allow: true,
      type: "c",
      major: 1,
      minor: 3,
      access: "rwm",
    });
    expect(s.linux.resources.devices.at(-1)).toEqual({
      allow: false,
      type: "c",
      major: 10,
      minor: 229,
      access: "rwm",
    });
    expect(s.linux.resources.memory).toBeUndefined();
    expect(s.linux.resources.cpu).toBeUndefined();
    expect(s.linux.resources.pids).toBeUndefined();
    expect(s.linux.cgroupsPath).toBe("/shoal/" + "0123456789ab".padEnd(64, "c"));
  });

  it("sets process, root, hostname, env and namespaces", async () => {
    const s = await build({
      config: { Hostname: "web1", Env: ["PATH=/custom", "FOO=bar"], WorkingDir: "/srv", Tty: true },
      path: "/bin/app",
      args: ["--port", "80"],
    });
    expect(s.process.args).toEqual(["/bin/app", "--port", "80"]);
    expect(s.process.cwd).toBe("/srv");
    expect(s.process.terminal).toBe(true);
    expect(s.process.env).toEqual(["PATH=/custom", "HOSTNAME=web1", "TERM=xterm", "FOO=bar", "HOME=/root"]);
    expect(s.process.user).toEqual({ uid: 0, gid: 0, additionalGids: [0] });
    expect(s.hostname).toBe("web1");
    expect(s.root).toEqual({ path: rootfs, readonly: false });
    expect(s.linux.namespaces.map((n) => n.type).sort()).toEqual(["ipc", "mount", "network", "pid", "uts"]);

    const d = await build();
    expect(d.process.env).toEqual([
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "HOSTNAME=0123456789ab",
      "HOME=/root",
    ]);
    expect(d.process.cwd).toBe("/");
  });

  it("keeps an explicit HOME and unsets a bare name", async () => {
    const s = await build({ config: { Env: ["HOME=/data", "HOSTNAME"] } });
    expect(s.process.env).toEqual([
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "HOME=/data",
    ]);
  });

  it("joins a prepared network namespace and adds a cgroup namespace on v2", async () => {
    const s = await build({}, { netnsPath: "/run/shoal/netns/abc", cgroupV2: true });
    expect(s.linux.namespaces).toContainEqual({ type: "network", path: "/run/shoal/netns/abc" });
    expect(s.linux.namespaces).toContainEqual({ type: "cgroup" });
  });

  it("mounts Docker's defaults, with the shm size", async () => {
    const s = await build({ host: { ShmSize: 128 * MiB } });
    expect(s.mounts.map((m) => m.destination)).toEqual([
      "/proc",
      "/dev",
      "/dev/pts",
      "/sys",
      "/sys/fs/cgroup",
      "/dev/mqueue",
      "/dev/shm",
    ]);
    const byDest = new Map(s.mounts.map((m) => [m.destination, m]));
    expect(byDest.get("/dev")?.options).toEqual(["nosuid", "strictatime", "mode=755", "size=65536k"]);
    expect(byDest.get("/dev/pts")?.options).toContain("ptmxmode=0666");
    expect(byDest.get("/sys/fs/cgroup")).toMatchObject({
      type: "cgroup",
      options: ["ro", "nosuid", "noexec", "nodev"],
    });
    expect(byDest.get("/dev/shm")?.options).toEqual([
      "nosuid",
      "noexec",
      "nodev",
      "mode=1777",
      `size=${128 * MiB}`,
    ]);
    expect((await build()).mounts.find((m) => m.destination === "/dev/shm")?.options).toContain(
      "size=67108864",
    );
  });

  it("makes the root read-only but keeps /dev, /proc and ipc writable", async () => {
    const s = await build({ host: { ReadonlyRootfs: true } });
    expect(s.root.readonly).toBe(true);
    const ro = s.mounts.filter((m) => m.options.includes("ro")).map((m) => m.destination);
    expect(ro.sort()).toEqual(["/sys", "/sys/fs/cgroup"]);
  });

  it("prefixes the init and bind-mounts it read-only", async () => {
    const s = await build({ host: { Init: true }, path: "nginx", args: ["-g", "daemon off;"] });
    expect(s.process.args).toEqual(["/sbin/docker-init", "--", "nginx", "-g", "daemon off;"]);
    expect(s.mounts.at(-1)).toEqual({
      destination: "/sbin/docker-init",
      type: "bind",
      source: "/usr/bin/tini-static",
      options: ["bind", "ro"],
    });
  });

  it("applies cap-add and cap-drop, and widens seccomp with them", async () => {
    const s = await build({ host: { CapAdd: ["SYS_ADMIN"], CapDrop: ["NET_RAW"] } });
    expect(s.process.capabilities.bounding).toContain("CAP_SYS_ADMIN");
    expect(s.process.capabilities.bounding).not.toContain("CAP_NET_RAW");
    expect(s.linux.seccomp?.syscalls.some((r) => r.names.includes("mount"))).toBe(true);
    const none = await build({ host: { CapDrop: ["ALL"] } });
    expect(none.process.capabilities.bounding).toEqual([]);
    await expect(build({ host: { CapAdd: ["NOPE"] } })).rejects.toThrow(/--cap-add/);
  });

  it("gives a privileged container every capability, host devices, and no seccomp or masks", async () => {
    const s = await build({ host: { Privileged: true, CapDrop: ["ALL"] } });
    expect(s.process.capabilities.bounding).toHaveLength(41);
    expect(s.linux.seccomp).toBeUndefined();
    expect(s.linux.maskedPaths).toBeUndefined();
    expect(s.linux.readonlyPaths).toBeUndefined();
    expect(s.linux.resources.devices).toEqual([{ allow: true, access: "rwm" }]);
    expect(s.linux.devices).toEqual([
      { path: "/dev/sda", type: "b", major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 },
    ]);
    expect(s.mounts.find((m) => m.destination === "/sys")?.options).not.toContain("ro");
    expect(s.mounts.find((m) => m.destination === "/sys/fs/cgroup")?.options).not.toContain("ro");
  });

  it("resolves -u against the rootfs; a non-root user keeps only the bounding set", async () => {
    const s = await build({ config: { User: "app" } });
    expect(s.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10] });
    expect(s.process.env).toContain("HOME=/home/app");
    expect(s.process.capabilities.bounding).toHaveLength(14);
    expect(s.process.capabilities.effective).toEqual([]);
    expect(s.process.capabilities.permitted).toEqual([]);
    await expect(build({ config: { User: "ghost" } })).rejects.toThrow(
      "unable to find user ghost: no matching entries in passwd file",
    );
  });

  it("translates memory, swap, cpus, shares and pids", async () => {
    const s = await build({
      host: { Memory: 64 * MiB, NanoCpus: 1_500_000_000, CpuShares: 512, PidsLimit: 100 },
    });
    expect(s.linux.resources.memory).toEqual({ limit: 64 * MiB, swap: 128 * MiB });
    expect(s.linux.resources.cpu).toEqual({ shares: 512, period: 100000, quota: 150000 });
    expect(s.linux.resources.pids).toEqual({ limit: 100 });

    expect((await build({ host: { Memory: 64 * MiB, MemorySwap: -1 } })).linux.resources.memory).toEqual({
      limit: 64 * MiB,
      swap: -1,
    });
    expect(
      (await build({ host: { Memory: 64 * MiB, MemorySwap: 96 * MiB } })).linux.resources.memory?.swap,
    ).toBe(96 * MiB);
    expect(
      (await build({ host: { Memory: 64 * MiB } }, { swapAccounting: false })).linux.resources.memory,
    ).toEqual({
      limit: 64 * MiB,
    });
    expect((await build({ host: { PidsLimit: -1 } })).linux.resources.pids).toBeUndefined();
    expect((await build({ host: { CpuShares: 1 } })).linux.resources.cpu).toEqual({ shares: 2 });
  });

  it("rejects impossible limits naming the flag", async () => {
    const cases: Array<[Parameters<typeof makeRecord>[0], RegExp]> = [
      [{ host: { Memory: 4 * MiB } }, /^Minimum memory limit allowed is 6MB \(--memory\)$/],
      [{ host: { Memory: -1 } }, /--memory/],
      [{ host: { Memory: 64 * MiB, MemorySwap: 32 * MiB } }, /--memory-swap/],
      [{ host: { MemorySwap: 32 * MiB } }, /--memory-swap/],
      [{ host: { MemorySwap: -2 } }, /--memory-swap/],
      [
        { host: { NanoCpus: 3e9 } },
        /^Range of CPUs is from 0\.01 to 2\.00, as there are only 2 CPUs available \(--cpus\)$/,
      ],
      [{ host: { NanoCpus: -1 } }, /--cpus/],
      [{ host: { NanoCpus: 1000 } }, /--cpus/],
      [{ host: { CpuShares: -5 } }, /--cpu-shares/],
      [{ host: { ShmSize: -1 } }, /--shm-size/],
      [{ host: { Ulimits: [{ Name: "nofile", Soft: 10, Hard: 5 }] } }, /--ulimit nofile=10:5/],
      [{ host: { Ulimits: [{ Name: "bogus", Soft: 1, Hard: 1 }] } }, /--ulimit bogus/],
    ];
    for (const [rec, message] of cases) {
      const err = await build(rec).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(rec)).toBeInstanceOf(ShoalError);
      expect((err as ShoalError).kind).toBe("invalid");
      expect((err as ShoalError).message).toMatch(message);
    }
    await expect(build({ path: "" })).rejects.toThrow("No command specified");
  });

  it("emits rlimits only for --ulimit, and refuses hard limits above the host's", async () => {
    expect((await build()).process.rlimits).toBeUndefined();
    const s = await build({ host: { Ulimits: [{ Name: "nofile", Soft: 1024, Hard: 4096 }] } });
    expect(s.process.rlimits).toEqual([{ type: "RLIMIT_NOFILE", soft: 1024, hard: 4096 }]);
    await expect(
      build(
        { host: { Ulimits: [{ Name: "nofile", Soft: 1024, Hard: 30000 }] } },
        { hostRlimits: { nofile: { soft: 1024, hard: 20000 } } },
      ),
    ).rejects.toThrow(/--ulimit nofile=1024:30000: hard limit 30000 is above this host's limit of 20000/);
  });
});
