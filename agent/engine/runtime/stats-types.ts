// The Engine API's container stats (Docker's types.StatsJSON, API 1.44), as `docker stats` reads
// them: the CLI computes CPU % from cpu_stats - precpu_stats against system_cpu_usage, memory as
// usage minus inactive_file (v2) / total_inactive_file (v1), and sums networks and block I/O.

export interface CpuUsage {
  /** Nanoseconds of CPU time, all CPUs. */
  total_usage: number;
  /** v1 only (cpuacct.usage_percpu); v2 has no per-CPU figures. */
  percpu_usage?: number[];
  usage_in_kernelmode: number;
  usage_in_usermode: number;
}

export interface ThrottlingData {
  periods: number;
  throttled_periods: number;
  /** Nanoseconds. */
  throttled_time: number;
}

export interface CpuStats {
  cpu_usage: CpuUsage;
  /** Nanoseconds the host's CPUs spent, all states (/proc/stat), as dockerd reports it. */
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: ThrottlingData;
}

export interface MemoryStats {
  usage?: number;
  /** v1 only. */
  max_usage?: number;
  /** memory.stat, every key as the kernel names it. */
  stats?: Record<string, number>;
  /** v1 only. */
  failcnt?: number;
  /** Bytes; the host's memory when the container has no limit (as dockerd). */
  limit?: number;
}

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface BlkioStats {
  io_service_bytes_recursive: BlkioEntry[] | null;
  io_serviced_recursive: BlkioEntry[] | null;
  io_queue_recursive: BlkioEntry[] | null;
  io_service_time_recursive: BlkioEntry[] | null;
  io_wait_time_recursive: BlkioEntry[] | null;
  io_merged_recursive: BlkioEntry[] | null;
  io_time_recursive: BlkioEntry[] | null;
  sectors_recursive: BlkioEntry[] | null;
}

export interface PidsStats {
  current?: number;
  /** Absent when unlimited. */
  limit?: number;
}

export interface NetworkStats {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

export interface ContainerStats {
  read: string;
  preread: string;
  pids_stats: PidsStats;
  blkio_stats: BlkioStats;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: MemoryStats;
  name: string;
  id: string;
  networks?: Record<string, NetworkStats>;
}

/** What a cgroup tells on its own (no host figures, no networks). */
export interface CgroupSample {
  cpu: Omit<CpuStats, "system_cpu_usage" | "online_cpus">;
  memory: MemoryStats;
  blkio: BlkioStats;
  pids: PidsStats;
}

export const ZERO_TIME = "0001-01-01T00:00:00Z";

export function emptyCpuStats(): CpuStats {
  return {
    cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
    throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
  };
}

export function emptyBlkioStats(): BlkioStats {
  return {
    io_service_bytes_recursive: null,
    io_serviced_recursive: null,
    io_queue_recursive: null,
    io_service_time_recursive: null,
    io_wait_time_recursive: null,
    io_merged_recursive: null,
    io_time_recursive: null,
    sectors_recursive: null,
  };
}
