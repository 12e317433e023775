// --device-read-bps/-write-bps/-read-iops/-write-iops: each names a block device by path; the
// cgroup wants its major:minor. Resolved when the bundle is written (create), so a path that is
// no block device is refused up front with the flag's name.
import { stat } from "node:fs/promises";
import type { HostConfig, ThrottleDevice } from "../../../shared/engine-api.js";
import { invalid } from "../../../shared/errors.js";
import type { LinuxBlockIO, LinuxThrottleDevice } from "./oci-types.js";

export type ThrottleSet = Pick<
  LinuxBlockIO,
  "throttleReadBpsDevice" | "throttleWriteBpsDevice" | "throttleReadIOPSDevice" | "throttleWriteIOPSDevice"
>;

const FIELDS = [
  ["BlkioDeviceReadBps", "throttleReadBpsDevice", "--device-read-bps"],
  ["BlkioDeviceWriteBps", "throttleWriteBpsDevice", "--device-write-bps"],
  ["BlkioDeviceReadIOps", "throttleReadIOPSDevice", "--device-read-iops"],
  ["BlkioDeviceWriteIOps", "throttleWriteIOPSDevice", "--device-write-iops"],
] as const;

export type ThrottleField = (typeof FIELDS)[number][0];

/** Whether any throttle field has entries. */
export function hasThrottles(hc: Partial<HostConfig>): boolean {
  return FIELDS.some(([field]) => (hc[field] ?? []).length > 0);
}

/** Linux's dev_t split (glibc's gnu_dev_major/minor). */
export function splitDev(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

async function resolveOne(d: ThrottleDevice, flag: string): Promise<LinuxThrottleDevice> {
  const shown = `${flag} ${String(d?.Path)}:${String(d?.Rate)}`;
  if (!d || typeof d.Path !== "string" || !d.Path.startsWith("/"))
    throw invalid(`invalid ${shown}: name the block device by its absolute path, e.g. /dev/sda:1mb`);
  if (!Number.isSafeInteger(d.Rate) || d.Rate < 0)
    throw invalid(`invalid ${shown}: the rate must be a non-negative integer`);
  let st;
  try {
    st = await stat(d.Path, { bigint: true });
  } catch {
    throw invalid(`invalid ${shown}: ${d.Path} does not exist on this host`);
  }
  if (!st.isBlockDevice()) throw invalid(`invalid ${shown}: ${d.Path} is not a block device`);
  return { ...splitDev(st.rdev), rate: d.Rate };
}

/** The throttle lists for linux.resources.blockIO, in the order given. */
export async function resolveThrottleDevices(hc: Partial<HostConfig>): Promise<ThrottleSet> {
  const out: ThrottleSet = {};
  for (const [field, key, flag] of FIELDS) {
    const list = hc[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw invalid(`invalid ${flag}: expected a list of {Path, Rate}`);
    if (list.length === 0) continue;
    const resolved: LinuxThrottleDevice[] = [];
    for (const d of list) resolved.push(await resolveOne(d, flag));
    out[key] = resolved;
  }
  return out;
}

/** The throttle part of a spec's blockIO (update keeps it as it was). */
export function throttlesOf(blockIO: LinuxBlockIO | undefined): ThrottleSet {
  const out: ThrottleSet = {};
  for (const [, key] of FIELDS) if (blockIO?.[key]) out[key] = blockIO[key];
  return out;
}
