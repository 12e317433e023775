// Turns moby's default profile into the OCI form for one container, as moby's setupSeccomp
// does: keep the host architecture's entry of the arch map, and keep each rule only when its
// includes/excludes (capabilities, architecture, kernel version) hold for this container.

import { arch as processArch, release } from "node:os";
import type { Seccomp, SeccompSyscall } from "./oci-types.js";
import {
  DEFAULT_SECCOMP_PROFILE,
  type ProfileSyscall,
  type SeccompProfile,
} from "./seccomp-default-profile.js";

/** Node's process.arch → libseccomp's native name, the vocabulary of the profile's arch filters. */
const NATIVE_ARCH: Record<string, string> = {
  x64: "amd64",
  ia32: "x86",
  arm64: "arm64",
  arm: "arm",
  s390x: "s390x",
  ppc64: "ppc64le",
  riscv64: "riscv64",
  mips64el: "mipsel64",
  loong64: "loongarch64",
};

const SECCOMP_ARCH: Record<string, string> = {
  amd64: "SCMP_ARCH_X86_64",
  x86: "SCMP_ARCH_X86",
  arm64: "SCMP_ARCH_AARCH64",
  arm: "SCMP_ARCH_ARM",
  s390x: "SCMP_ARCH_S390X",
  ppc64le: "SCMP_ARCH_PPC64LE",
  riscv64: "SCMP_ARCH_RISCV64",
  mipsel64: "SCMP_ARCH_MIPSEL64",
  loongarch64: "SCMP_ARCH_LOONGARCH64",
};

export interface SeccompHost {
  /** libseccomp native arch name ("amd64", "arm64", ...). */
  arch: string;
  /** Kernel release, "6.1.0-18-amd64" or just "6.1". */
  kernel: string;
}

export function currentSeccompHost(): SeccompHost {
  return { arch: NATIVE_ARCH[processArch()] ?? processArch(), kernel: release() };
}

function kernelAtLeast(kernel: string, min: string): boolean {
  const parse = (v: string): number[] => (/^(\d+)\.(\d+)/.exec(v) ?? ["", "0", "0"]).slice(1, 3).map(Number);
  const [kMaj, kMin] = parse(kernel);
  const [mMaj, mMin] = parse(min);
  return kMaj > mMaj || (kMaj === mMaj && kMin >= mMin);
}

function applies(rule: ProfileSyscall, caps: readonly string[], host: SeccompHost): boolean {
  const ex = rule.excludes;
  if (ex) {
    if (ex.arches?.includes(host.arch)) return false;
    if (ex.caps?.some((c) => caps.includes(c))) return false;
    if (ex.minKernel !== undefined && kernelAtLeast(host.kernel, ex.minKernel)) return false;
  }
  const inc = rule.includes;
  if (inc) {
    if (inc.arches && inc.arches.length > 0 && !inc.arches.includes(host.arch)) return false;
    if (inc.caps && !inc.caps.every((c) => caps.includes(c))) return false;
    if (inc.minKernel !== undefined && !kernelAtLeast(host.kernel, inc.minKernel)) return false;
  }
  return true;
}

/**
 * A profile in moby's form → the OCI section for one container (moby's setupSeccomp): the
 * host's entry of archMap, and each rule whose includes/excludes hold for this container.
 */
export function seccompFromProfile(
  profile: SeccompProfile,
  caps: readonly string[],
  host: SeccompHost = currentSeccompHost(),
): Seccomp {
  const native = SECCOMP_ARCH[host.arch];
  const entry = profile.archMap?.find((a) => a.architecture === native);
  const syscalls: SeccompSyscall[] = profile.syscalls
    .filter((rule) => applies(rule, caps, host))
    .map((rule) => {
      const out: SeccompSyscall = { names: [...rule.names], action: rule.action };
      if (rule.errnoRet !== undefined) out.errnoRet = rule.errnoRet;
      if (rule.args) out.args = rule.args.map((a) => ({ ...a }));
      return out;
    });
  const seccomp: Seccomp = { defaultAction: profile.defaultAction, syscalls };
  if (profile.defaultErrnoRet !== undefined) seccomp.defaultErrnoRet = profile.defaultErrnoRet;
  // Without an entry libseccomp picks the native architecture itself, as with moby.
  if (entry) seccomp.architectures = [entry.architecture, ...(entry.subArchitectures ?? [])];
  else if (profile.architectures && profile.architectures.length > 0)
    seccomp.architectures = [...profile.architectures];
  if (profile.flags && profile.flags.length > 0) seccomp.flags = [...profile.flags];
  return seccomp;
}

/**
 * Docker's default profile for a container whose bounding set is `caps` (CAP_* names).
 * Privileged containers get no seccomp at all; that is the caller's decision.
 */
export function defaultSeccompProfile(
  caps: readonly string[],
  host: SeccompHost = currentSeccompHost(),
): Seccomp {
  return seccompFromProfile(DEFAULT_SECCOMP_PROFILE, caps, host);
}
