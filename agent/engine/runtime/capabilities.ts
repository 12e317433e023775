// Capabilities the way dockerd hands them out: a fixed default set of 14, --cap-add/--cap-drop
// on top of it, and "all" meaning every capability this host can actually grant.

import { readFile } from "node:fs/promises";
import { invalid } from "../../../shared/errors.js";

/** Indexed by capability number (linux/capability.h). */
const CAPABILITY_NAMES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

/** moby's oci/caps DefaultCapabilities, in moby's order. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/**
 * What this host can grant. `known` are the names the kernel has (up to cap_last_cap);
 * `available` are those the daemon itself holds: runc cannot give a container a capability
 * its parent lacks (this machine, for one, runs without CAP_SYS_RESOURCE), so like dockerd
 * we treat "all" as "all we have".
 */
export interface CapabilityEnv {
  known: readonly string[];
  available: readonly string[];
}

/** Before detection has run: assume every capability shoal knows by name. */
const fallbackEnv: CapabilityEnv = { known: CAPABILITY_NAMES, available: CAPABILITY_NAMES };
let detectedEnv: CapabilityEnv | undefined;

/** The capability number of a CAP_* name, or -1. */
function capabilityNumber(name: string): number {
  return CAPABILITY_NAMES.indexOf(name);
}

/** The 64-bit mask (as /proc/<pid>/status prints it, 16 hex digits) of a list of CAP_* names. */
export function capabilityMask(names: readonly string[]): string {
  let mask = 0n;
  for (const n of names) {
    const bit = capabilityNumber(n);
    if (bit >= 0) mask |= 1n << BigInt(bit);
  }
  return mask.toString(16).padStart(16, "0");
}

/** Pure part of detection, kept apart so tests can feed it any kernel. */
export function capabilityEnvFrom(capLastCap: number, capEffHex: string | undefined): CapabilityEnv {
  const known = CAPABILITY_NAMES.slice(0, Math.min(capLastCap, CAPABILITY_NAMES.length - 1) + 1);
  if (capEffHex === undefined) return { known, available: known };
  const eff = BigInt("0x" + capEffHex);
  return { known, available: known.filter((_, bit) => ((eff >> BigInt(bit)) & 1n) === 1n) };
}

/** Reads the kernel's and the daemon's capabilities once at start-up; later calls reuse it. */
export async function detectCapabilities(procRoot = "/proc"): Promise<CapabilityEnv> {
  const last = Number.parseInt((await readFile(`${procRoot}/sys/kernel/cap_last_cap`, "utf8")).trim(), 10);
  const status = await readFile(`${procRoot}/self/status`, "utf8");
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  detectedEnv = capabilityEnvFrom(Number.isFinite(last) ? last : CAPABILITY_NAMES.length - 1, capEff);
  return detectedEnv;
}

export function currentCapabilityEnv(): CapabilityEnv {
  return detectedEnv ?? fallbackEnv;
}

/** Every capability a --privileged container gets. */
export function allCapabilities(env: CapabilityEnv = currentCapabilityEnv()): string[] {
  return [...env.available];
}

function normalize(list: readonly string[], flag: "--cap-add" | "--cap-drop", env: CapabilityEnv): string[] {
  return list.map((raw) => {
    const upper = raw.trim().toUpperCase();
    if (upper === "ALL") return upper;
    const name = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
    if (!CAPABILITY_NAMES.includes(name)) {
      throw invalid(`invalid ${flag} value "${raw}": unknown capability: "${name}"`);
    }
    if (!env.available.includes(name)) {
      throw invalid(
        `invalid ${flag} value "${raw}": capability not supported by your kernel or not available in the current environment: "${name}"`,
      );
    }
    return name;
  });
}

/**
 * moby's TweakCapabilities for a non-privileged container: ALL in --cap-add wins (everything
 * except what is dropped), then ALL in --cap-drop (only what is added), else defaults minus
 * drops plus adds.
 */
export function applyCapAddDrop(
  defaults: readonly string[],
  add: readonly string[] | null | undefined,
  drop: readonly string[] | null | undefined,
  env: CapabilityEnv = currentCapabilityEnv(),
): string[] {
  const adds = normalize(add ?? [], "--cap-add", env);
  const drops = normalize(drop ?? [], "--cap-drop", env);
  let caps: string[];
  if (adds.includes("ALL")) {
    caps = env.available.filter((c) => !drops.includes(c));
  } else if (drops.includes("ALL")) {
    caps = adds;
  } else {
    caps = [...defaults.filter((c) => !drops.includes(c)), ...adds];
  }
  return [...new Set(caps)];
}
