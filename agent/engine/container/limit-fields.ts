// The cgroup limit fields a create keeps on the record, with Docker's defaults, so that inspect
// shows every one of them (`--format '{{.HostConfig.CpusetCpus}}'` works) and update changes them.
import type { HostConfig } from "../../../shared/engine-api.js";

export type LimitField =
  | "CpuPeriod"
  | "CpuQuota"
  | "CpusetCpus"
  | "CpusetMems"
  | "MemoryReservation"
  | "MemorySwappiness"
  | "BlkioWeight"
  | "OomKillDisable"
  | "BlkioDeviceReadBps"
  | "BlkioDeviceWriteBps"
  | "BlkioDeviceReadIOps"
  | "BlkioDeviceWriteIOps";

export function limitFields(h: Partial<HostConfig>): Pick<HostConfig, LimitField> {
  return {
    CpuPeriod: h.CpuPeriod ?? 0,
    CpuQuota: h.CpuQuota ?? 0,
    CpusetCpus: h.CpusetCpus ?? "",
    CpusetMems: h.CpusetMems ?? "",
    MemoryReservation: h.MemoryReservation ?? 0,
    // -1 and null both mean the kernel's default; keep one spelling.
    MemorySwappiness: h.MemorySwappiness === -1 ? null : (h.MemorySwappiness ?? null),
    BlkioWeight: h.BlkioWeight ?? 0,
    OomKillDisable: h.OomKillDisable ?? false,
    BlkioDeviceReadBps: h.BlkioDeviceReadBps ?? null,
    BlkioDeviceWriteBps: h.BlkioDeviceWriteBps ?? null,
    BlkioDeviceReadIOps: h.BlkioDeviceReadIOps ?? null,
    BlkioDeviceWriteIOps: h.BlkioDeviceWriteIOps ?? null,
  };
}
