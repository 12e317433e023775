import { describe, expect, it } from "vitest";
import { DEFAULT_CAPABILITIES } from "../../agent/engine/runtime/capabilities.js";
import type { Seccomp } from "../../agent/engine/runtime/oci-types.js";
import { defaultSeccompProfile } from "../../agent/engine/runtime/seccomp-default.js";

const amd64 = { arch: "amd64", kernel: "6.1.0-18-amd64" };
const allowed = (s: Seccomp): Set<string> =>
  new Set(s.syscalls.filter((r) => r.action === "SCMP_ACT_ALLOW" && !r.args).flatMap((r) => r.names));

describe("default seccomp profile", () => {
  const base = defaultSeccompProfile(DEFAULT_CAPABILITIES, amd64);

  it("denies by default with EPERM on x86_64, x86 and x32", () => {
    expect(base.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(base.defaultErrnoRet).toBe(1);
    expect(base.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  });

  it("uses aarch64 and arm on arm64 hosts, with the arm-only calls", () => {
    const arm = defaultSeccompProfile(DEFAULT_CAPABILITIES, { arch: "arm64", kernel: "6.1" });
    expect(arm.architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    expect(allowed(arm).has("set_tls")).toBe(true);
    expect(allowed(arm).has("arch_prctl")).toBe(false);
  });

  it("allows the everyday calls and the amd64 ones, but not the privileged ones", () => {
    const a = allowed(base);
    for (const name of [
      "read",
      "write",
      "openat",
      "execve",
      "arch_prctl",
      "modify_ldt",
      "chroot",
      "ptrace",
    ]) {
      expect(a.has(name), name).toBe(true);
    }
    for (const name of [
      "mount",
      "unshare",
      "setns",
      "reboot",
      "init_module",
      "bpf",
      "open_by_handle_at",
      "acct",
    ]) {
      expect(a.has(name), name).toBe(false);
    }
    expect(a.has("set_tls")).toBe(false);
  });

  it("filters clone by namespace flags and answers clone3 with ENOSYS without CAP_SYS_ADMIN", () => {
    const clone = base.syscalls.filter((r) => r.names.includes("clone"));
    expect(clone).toEqual([
      {
        names: ["clone"],
        action: "SCMP_ACT_ALLOW",
        args: [{ index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" }],
      },
    ]);
    expect(base.syscalls.filter((r) => r.names.includes("clone3"))).toEqual([
      { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
    ]);
  });

  it("opens the capability-gated calls when the capability is granted", () => {
    const admin = defaultSeccompProfile([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_TIME"], amd64);
    const a = allowed(admin);
    for (const name of ["mount", "umount2", "unshare", "setns", "clone", "clone3", "settimeofday"]) {
      expect(a.has(name), name).toBe(true);
    }
    expect(admin.syscalls.some((r) => r.names.includes("clone3") && r.action === "SCMP_ACT_ERRNO")).toBe(
      false,
    );
    expect(admin.syscalls.some((r) => r.names.includes("clone") && r.args)).toBe(false);
  });

  it("drops chroot with CAP_SYS_CHROOT, and ptrace on kernels before 4.8", () => {
    const noChroot = defaultSeccompProfile(
      DEFAULT_CAPABILITIES.filter((c) => c !== "CAP_SYS_CHROOT"),
      amd64,
    );
    expect(allowed(noChroot).has("chroot")).toBe(false);
    const old = defaultSeccompProfile(DEFAULT_CAPABILITIES, { arch: "amd64", kernel: "4.4.0" });
    expect(allowed(old).has("ptrace")).toBe(false);
  });

  it("allows personality only for the listed personas", () => {
    const p = base.syscalls.filter((r) => r.names.includes("personality"));
    expect(p.map((r) => r.args?.[0].value)).toEqual([0, 8, 131072, 131080, 4294967295]);
  });
});
