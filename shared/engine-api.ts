// Shapes of the Docker Engine API that both sides speak: the CLI sends them, the engine keeps
// and serves them unchanged (so `inspect` shows what was asked). Types only.

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface RestartPolicy {
  /** "", "no", "always", "unless-stopped" or "on-failure". */
  Name: string;
  MaximumRetryCount: number;
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** One `--mount` (HostConfig.Mounts entry). */
export interface MountRequest {
  /** bind, volume or tmpfs; the engine refuses any other at create. */
  Type: string;
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean; CreateMountpoint?: boolean };
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string>;
    DriverConfig?: { Name?: string; Options?: Record<string, string> };
  };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

/** The part of HostConfig shoal implements; a field it does not is refused, never dropped. */
export interface HostConfig {
  AutoRemove: boolean;
  ReadonlyRootfs: boolean;
  Privileged: boolean;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  /** Bytes; 0 = unlimited. */
  Memory: number;
  /** Bytes of memory+swap; 0 = twice Memory (Docker's default), -1 = unlimited. */
  MemorySwap: number;
  /** CPUs × 1e9; 0 = unlimited. */
  NanoCpus: number;
  CpuShares: number;
  /** 0 or null = unlimited. */
  PidsLimit: number | null;
  /** Run tini as pid 1. */
  Init: boolean | null;
  Ulimits: Ulimit[] | null;
  NetworkMode: string;
  RestartPolicy: RestartPolicy;
  /** Type "" means the daemon's default driver. */
  LogConfig: { Type: string; Config: Record<string, string> };
  ShmSize?: number;
  // ---- storage ----
  /** `-v` entries: "name:/path[:opts]", "/host:/path[:opts]" or "/path" (anonymous). */
  Binds?: string[] | null;
  /** `--mount` entries. */
  Mounts?: MountRequest[] | null;
  /** `--tmpfs /path[:opts]` → {"/path": "opts"}. */
  Tmpfs?: Record<string, string> | null;
  // ---- networking ----
  /** "80/tcp" → host bindings; HostPort "" or "0" means an ephemeral port. */
  PortBindings?: Record<string, PortBinding[] | null> | null;
  /** -P: publish every exposed port on an ephemeral host port. */
  PublishAllPorts?: boolean;
  Dns?: string[] | null;
  DnsSearch?: string[] | null;
  DnsOptions?: string[] | null;
  /** --add-host "name:ip" lines for /etc/hosts. */
  ExtraHosts?: string[] | null;
  /** [height, width] of the client's terminal for a TTY container's start (docker run -t sends it). */
  ConsoleSize?: [number, number] | null;
  // ---- security, namespaces, devices (docs/engine-hostconfig.md) ----
  SecurityOpt?: string[] | null;
  Devices?: Array<{ PathOnHost: string; PathInContainer: string; CgroupPermissions: string }> | null;
  DeviceCgroupRules?: string[] | null;
  Sysctls?: Record<string, string> | null;
  /** "" (private), "host" or "container:<id>". */
  PidMode?: string;
  /** "private" (the default), "shareable", "none", "host" or "container:<id>". */
  IpcMode?: string;
  /** "" (private) or "host". */
  UTSMode?: string;
  GroupAdd?: string[] | null;
  OomScoreAdj?: number;
  VolumesFrom?: string[] | null;
  Links?: string[] | null;
  /** null: Docker's lists; a list (empty for --security-opt systempaths=unconfined) replaces them. */
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
  // ---- cgroup limits beyond memory/cpus/pids (docs/engine-resources.md) ----
  /** CFS period in microseconds (--cpu-period); 0 = the kernel's 100 ms. */
  CpuPeriod?: number;
  /** CFS quota in microseconds per period (--cpu-quota); 0 = none, -1 = unlimited. */
  CpuQuota?: number;
  /** CPUs the container may run on, a list such as "0-2,4" (--cpuset-cpus). */
  CpusetCpus?: string;
  /** NUMA memory nodes (--cpuset-mems). */
  CpusetMems?: string;
  /** Soft limit in bytes (--memory-reservation): v1 memory.soft_limit_in_bytes, v2 memory.low. */
  MemoryReservation?: number;
  /** 0-100; null or -1 = the kernel's default (--memory-swappiness). */
  MemorySwappiness?: number | null;
  /** Relative block I/O weight 10-1000 (--blkio-weight); 0 = default. */
  BlkioWeight?: number;
  /** Let the container wait instead of being OOM-killed (--oom-kill-disable); needs --memory. */
  OomKillDisable?: boolean | null;
  /** --device-read-bps and friends: a block device's path and bytes (or I/Os) per second. */
  BlkioDeviceReadBps?: ThrottleDevice[] | null;
  BlkioDeviceWriteBps?: ThrottleDevice[] | null;
  BlkioDeviceReadIOps?: ThrottleDevice[] | null;
  BlkioDeviceWriteIOps?: ThrottleDevice[] | null;
}

/** One `--device-read-bps /dev/sda:1mb` entry. */
export interface ThrottleDevice {
  Path: string;
  Rate: number;
}

/** A network's address plan as `network create` asks for it (`--subnet`, `--gateway`, `--ip-range`). */
export interface IpamRequest {
  Driver?: string;
  Config?: Array<{ Subnet?: string; Gateway?: string; IPRange?: string }> | null;
  Options?: Record<string, string> | null;
}
