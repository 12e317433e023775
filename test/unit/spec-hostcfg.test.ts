// The security, namespace and device HostConfig fields in the spec, and the checks that turn a
// bad value into a 400 at create: --security-opt (seccomp profiles in Docker's format),
// --sysctl, --device-cgroup-rule, --pid/--ipc/--uts, --group-add, --oom-score-adj.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_CAPABILITIES } from "../../agent/engine/runtime/capabilities.js";
import { parseSecurityOpts } from "../../agent/engine/container/security-opts.js";
import { seccompFromProfile, defaultSeccompProfile } from "../../agent/engine/runtime/seccomp-default.js";
import { loadSeccompProfile } from "../../agent/engine/runtime/seccomp-profile.js";
import { buildSpec } from "../../agent/engine/runtime/spec.js";
import { validateHostConfigExtras } from "../../agent/engine/runtime/spec-hostcfg.js";
import { checkSysctls } from "../../agent/engine/runtime/spec-sysctls.js";
import { deviceCgroupRules, userDevices } from "../../agent/engine/runtime/spec-user-devices.js";
import type { HostConfig } from "../../shared/engine-api.js";
import { makeInput, makeRecord } from "./spec-helpers.js";

const amd64 = { arch: "amd64", kernel: "6.1.0" };
const kindOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return (e as { kind?: string }).kind;
  }
  return undefined;
};

describe("--security-opt", () => {
  it("reads no-new-privileges and seccomp the way dockerd does", () => {
    expect(parseSecurityOpts(["no-new-privileges"]).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(["no-new-privileges=true"]).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(["no-new-privileges:false"]).noNewPrivileges).toBe(false);
    expect(parseSecurityOpts(["seccomp=unconfined"]).seccomp).toEqual({ kind: "unconfined" });
    expect(parseSecurityOpts(["seccomp=builtin"]).seccomp).toEqual({ kind: "default" });
    expect(parseSecurityOpts(['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']).seccomp).toEqual({
      kind: "profile",
      json: '{"defaultAction":"SCMP_ACT_ALLOW"}',
    });
    expect(() => parseSecurityOpts(["label=disable", "apparmor=unconfined", "disable"])).not.toThrow();
  });

  it("refuses what shoal does not do, naming it", () => {
    expect(() => parseSecurityOpts(["no-new-privileges=maybe"])).toThrow(/no-new-privileges=maybe/);
    expect(() => parseSecurityOpts(["apparmor=docker-default"])).toThrow(/apparmor=docker-default/);
    expect(() => parseSecurityOpts(["label=type:svirt_apache_t"])).toThrow(/label=type:svirt_apache_t/);
    expect(() => parseSecurityOpts(["bogus"])).toThrow(/bogus/);
    expect(kindOf(() => parseSecurityOpts(["writable-cgroups=true"]))).toBe("invalid");
  });
});

describe("seccomp profiles in Docker's format", () => {
  it("the default profile is Docker 25's or newer: io_uring is blocked, AF_ALG and AF_VSOCK sockets too", () => {
    const p = defaultSeccompProfile(DEFAULT_CAPABILITIES, amd64);
    const names = p.syscalls.filter((r) => r.action === "SCMP_ACT_ALLOW").flatMap((r) => r.names);
    for (const n of ["io_uring_setup", "io_uring_enter", "io_uring_register"]) expect(names).not.toContain(n);
    const socket = p.syscalls.filter((r) => r.names.includes("socket"));
    expect(socket.map((r) => r.args)).toEqual([
      [{ index: 0, value: 38, op: "SCMP_CMP_LT" }],
      [{ index: 0, value: 39, op: "SCMP_CMP_EQ" }],
      [{ index: 0, value: 40, op: "SCMP_CMP_GT" }],
    ]);
  });

  it("converts archMap, name, includes and excludes as moby's setupSeccomp does", () => {
    const profile = loadSeccompProfile(
      JSON.stringify({
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: 1,
        archMap: [
          { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86"] },
          { architecture: "SCMP_ARCH_AARCH64", subArchitectures: null },
        ],
        syscalls: [
          { name: "read", action: "SCMP_ACT_ALLOW", comment: "old single-name form" },
          { names: ["mount"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN"] } },
          { names: ["set_tls"], action: "SCMP_ACT_ALLOW", includes: { arches: ["arm64"] } },
          { names: ["ptrace"], action: "SCMP_ACT_ALLOW", excludes: { minKernel: "4.8" } },
          {
            names: ["personality"],
            action: "SCMP_ACT_ALLOW",
            args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }],
          },
          { names: ["unshare"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
        ],
      }),
    );
    expect(profile).toBeDefined();
    const oci = seccompFromProfile(profile!, DEFAULT_CAPABILITIES, amd64);
    expect(oci).toEqual({
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 1,
      architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
      syscalls: [
        { names: ["read"], action: "SCMP_ACT_ALLOW" },
        {
          names: ["personality"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }],
        },
        { names: ["unshare"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
      ],
    });
    const admin = seccompFromProfile(profile!, [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], {
      arch: "amd64",
      kernel: "4.4",
    });
    expect(admin.syscalls.map((r) => r.names[0])).toEqual([
      "read",
      "mount",
      "ptrace",
      "personality",
      "unshare",
    ]);
  });

  it("keeps a plain architectures list and flags; an empty profile means no filter", () => {
    const p = loadSeccompProfile(
      '{"defaultAction":"SCMP_ACT_LOG","architectures":["SCMP_ARCH_X86_64"],"flags":["SECCOMP_FILTER_FLAG_LOG"]}',
    );
    expect(seccompFromProfile(p!, [], amd64)).toEqual({
      defaultAction: "SCMP_ACT_LOG",
      architectures: ["SCMP_ARCH_X86_64"],
      flags: ["SECCOMP_FILTER_FLAG_LOG"],
      syscalls: [],
    });
    expect(loadSeccompProfile("{}")).toBeUndefined();
  });

  it.each([
    ["not json", /not JSON/],
    ["[]", /JSON object/],
    ['{"defaultAction":5}', /defaultAction 5 is not a seccomp action/],
    [
      '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOPE"}]}',
      /SCMP_ACT_NOPE/,
    ],
    [
      '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}',
      /both 'name' and 'names'/,
    ],
    [
      '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}',
      /index must be a whole number from 0 to 5/,
    ],
    [
      '{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}',
      /both 'architectures' and 'archMap'/,
    ],
    ['{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock"}', /listenerPath/],
    [
      '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4"}}]}',
      /invalid kernel version/,
    ],
  ])("refuses the bad profile %s with a 400", (text, message) => {
    expect(() => loadSeccompProfile(text)).toThrow(message);
    expect(kindOf(() => loadSeccompProfile(text))).toBe("invalid");
  });
});

describe("--sysctl", () => {
  const own = { networkMode: "bridge", ipcMode: "private" };
  it("accepts the namespaced keys Docker accepts", () => {
    const s = {
      "kernel.shmmax": "1000000",
      "kernel.sem": "250 32000 32 128",
      "fs.mqueue.msg_max": "20",
      "net.ipv4.ip_forward": "1",
    };
    expect(checkSysctls(s, own)).toEqual(s);
    expect(checkSysctls({}, own)).toBeUndefined();
    expect(
      checkSysctls({ "net.core.somaxconn": "1024" }, { networkMode: "container:abc", ipcMode: "private" }),
    ).toBeDefined();
  });
  it.each([
    [{ "kernel.hostname": "x" }, own, /kernel.hostname.*not whitelisted/],
    [{ "vm.swappiness": "1" }, own, /vm.swappiness/],
    [
      { "net.ipv4.ip_forward": "1" },
      { networkMode: "host", ipcMode: "private" },
      /net.ipv4.ip_forward.*host's network namespace/,
    ],
    [
      { "kernel.shmmax": "1" },
      { networkMode: "bridge", ipcMode: "host" },
      /kernel.shmmax.*host's IPC namespace/,
    ],
  ])("refuses %j with a 400 naming the key", (s, ns, message) => {
    expect(() => checkSysctls(s, ns)).toThrow(message);
    expect(kindOf(() => checkSysctls(s, ns))).toBe("invalid");
  });
});

describe("--device and --device-cgroup-rule", () => {
  it("parses cgroup rules as dockerd does", () => {
    expect(deviceCgroupRules(["c 1:3 mr", "b 8:* rwm", "a *:* rwm"])).toEqual([
      { allow: true, type: "c", major: 1, minor: 3, access: "mr" },
      { allow: true, type: "b", major: 8, access: "rwm" },
      { allow: true, type: "a", access: "rwm" },
    ]);
    expect(() => deviceCgroupRules(["x 1:3 rwm"])).toThrow(/--device-cgroup-rule "x 1:3 rwm"/);
    expect(() => deviceCgroupRules(["c 1:3 rwx"])).toThrow(/--device-cgroup-rule/);
  });

  it("makes the host's node under the container's path and allows it", async () => {
    const r = await userDevices([
      { PathOnHost: "/dev/zero", PathInContainer: "/dev/myzero", CgroupPermissions: "r" },
    ]);
    expect(r.devices).toEqual([
      expect.objectContaining({ path: "/dev/myzero", type: "c", major: 1, minor: 5 }),
    ]);
    expect(r.rules).toEqual([{ allow: true, type: "c", major: 1, minor: 5, access: "r" }]);
  });

  it("refuses a path that is not a device, a missing one, and a bad mode", async () => {
    await expect(userDevices([{ PathOnHost: "/etc/hostname" }])).rejects.toThrow(/not a device node/);
    await expect(userDevices([{ PathOnHost: "/dev/nosuch-shoal" }])).rejects.toThrow(/no such file/);
    await expect(userDevices([{ PathOnHost: "/dev/null", CgroupPermissions: "rwx" }])).rejects.toThrow(
      /invalid device mode/,
    );
  });
});

describe("namespace modes, --oom-score-adj", () => {
  const hc = (over: Partial<HostConfig>): HostConfig => makeRecord({ host: over }).HostConfig;
  it.each([
    [{ PidMode: "bogus" }, /--pid bogus/],
    [{ IpcMode: "bogus" }, /--ipc bogus/],
    [{ UTSMode: "container:x" }, /--uts container:x/],
    [{ OomScoreAdj: 1001 }, /Invalid value 1001, range for oom score adj is \[-1000, 1000\]/],
  ])("refuses %j", (over, message) => {
    expect(() => validateHostConfigExtras(hc(over), false)).toThrow(message);
  });
  it("refuses --hostname with --uts host", () => {
    expect(() => validateHostConfigExtras(hc({ UTSMode: "host" }), true)).toThrow(
      /hostname and the UTS mode/,
    );
  });
});

describe("the spec", () => {
  let rootfs: string;
  beforeEach(async () => {
    rootfs = await mkdtemp(join(tmpdir(), "shoal-spec-hostcfg-"));
    await mkdir(join(rootfs, "etc"));
    await writeFile(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    await writeFile(join(rootfs, "etc", "group"), "root:x:0:\naudio:x:29:\n");
  });
  afterEach(async () => {
    await rm(rootfs, { recursive: true, force: true });
  });
  const build = (host: Partial<HostConfig>) => buildSpec(makeInput(makeRecord({ host }), rootfs));

  it("sets no-new-privileges, oom score, added groups, sysctls, and drops seccomp when unconfined", async () => {
    const s = await build({
      SecurityOpt: ["no-new-privileges", "seccomp=unconfined"],
      OomScoreAdj: 500,
      GroupAdd: ["audio", "4242"],
      Sysctls: { "kernel.shmmax": "1000000" },
    });
    expect(s.process.noNewPrivileges).toBe(true);
    expect(s.process.oomScoreAdj).toBe(500);
    expect(s.process.user.additionalGids).toEqual([0, 29, 4242]);
    expect(s.linux.sysctl).toEqual({ "kernel.shmmax": "1000000" });
    expect(s.linux.seccomp).toBeUndefined();
    await expect(build({ GroupAdd: ["nosuchgroup"] })).rejects.toThrow(/--group-add nosuchgroup/);
  });

  it("shares the host's namespaces asked for and gives /dev/shm as the IPC mode wants", async () => {
    const s = await build({ PidMode: "host", IpcMode: "host", UTSMode: "host" });
    expect(s.linux.namespaces.map((n) => n.type)).toEqual(["mount", "network"]);
    expect(s.hostname).toBeUndefined();
    expect(s.mounts.find((m) => m.destination === "/dev/shm")).toMatchObject({
      type: "bind",
      source: "/dev/shm",
    });
    const none = await build({ IpcMode: "none" });
    expect(none.mounts.some((m) => m.destination === "/dev/shm")).toBe(false);
    expect(none.linux.namespaces.map((n) => n.type)).toContain("ipc");
  });

  it("adds --device nodes and rules after Docker's defaults", async () => {
    const s = await build({
      Devices: [{ PathOnHost: "/dev/zero", PathInContainer: "/dev/myzero", CgroupPermissions: "rwm" }],
      DeviceCgroupRules: ["c 42:* rmw"],
    });
    expect(s.linux.devices.map((d) => d.path)).toEqual(["/dev/myzero"]);
    expect(s.linux.resources.devices.slice(-2)).toEqual([
      { allow: true, type: "c", major: 1, minor: 5, access: "rwm" },
      { allow: true, type: "c", major: 42, access: "rmw" },
    ]);
  });
});
