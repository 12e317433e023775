// docker stats' columns, computed from the Engine API's stats the way the docker CLI does:
// CPU % from the cpu/precpu delta against the host's, memory as usage minus inactive file
// pages, network and block I/O summed over interfaces and devices.
import { dockerSize } from "../../shared/human.js";

export interface StatsSample {
  id: string;
  name: string;
  read: string;
  cpu_stats: {
    cpu_usage: { total_usage: number; percpu_usage?: number[] };
    system_cpu_usage?: number;
    online_cpus?: number;
  };
  precpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number };
  memory_stats: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes: number; tx_bytes: number }>;
  blkio_stats: { io_service_bytes_recursive: Array<{ op: string; value: number }> | null };
  pids_stats: { current?: number };
}

export const STATS_HEADERS: Record<string, string> = {
  Container: "CONTAINER",
  ID: "CONTAINER ID",
  Name: "NAME",
  CPUPerc: "CPU %",
  MemUsage: "MEM USAGE / LIMIT",
  MemPerc: "MEM %",
  NetIO: "NET I/O",
  BlockIO: "BLOCK I/O",
  PIDs: "PIDS",
};

export const DEFAULT_STATS_FORMAT =
  "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/** go-units BytesSize: binary units, 4 significant digits ("1.5MiB", "64MiB"). */
export function binarySize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

export function statsRow(s: StatsSample, container: string, trunc: boolean): Record<string, string> {
  const running = s.read !== "0001-01-01T00:00:00Z";
  const cpuDelta = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage;
  const systemDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
  const cpus = s.cpu_stats.online_cpus || s.cpu_stats.cpu_usage.percpu_usage?.length || 0;
  const cpu = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0;
  const m = s.memory_stats;
  const inactive = m.stats?.total_inactive_file ?? m.stats?.inactive_file ?? 0;
  const usage = Math.max(0, (m.usage ?? 0) - (inactive < (m.usage ?? 0) ? inactive : 0));
  const limit = m.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes;
    tx += n.tx_bytes;
  }
  let read = 0;
  let write = 0;
  for (const e of s.blkio_stats.io_service_bytes_recursive ?? []) {
    if (e.op.toLowerCase() === "read") read += e.value;
    if (e.op.toLowerCase() === "write") write += e.value;
  }
  const id = trunc ? s.id.slice(0, 12) : s.id;
  const dash = "--";
  return {
    Container: trunc && /^[0-9a-f]{64}$/.test(container) ? container.slice(0, 12) : container,
    ID: id,
    Name: s.name.replace(/^\//, ""),
    CPUPerc: running ? `${cpu.toFixed(2)}%` : dash,
    MemUsage: running ? `${binarySize(usage)} / ${binarySize(limit)}` : "-- / --",
    MemPerc: running ? `${(limit > 0 ? (usage / limit) * 100 : 0).toFixed(2)}%` : dash,
    NetIO: running ? `${dockerSize(rx)} / ${dockerSize(tx)}` : "-- / --",
    BlockIO: running ? `${dockerSize(read)} / ${dockerSize(write)}` : "-- / --",
    PIDs: running ? String(s.pids_stats.current ?? 0) : dash,
  };
}
