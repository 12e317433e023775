// The cgroup v1 and v2 readers behind stats, top and the host checks, against fixture folders
// shaped like /sys/fs/cgroup on each version.
import { describe, expect, it } from "vitest";
import { join, resolve } from "node:path";
import { cgroupDirs } from "../../agent/engine/runtime/cgroup-dirs.js";
import { parseBlkioV1, parseIoStatV2, readCgroupSample } from "../../agent/engine/runtime/cgroup-stats.js";
import { checkHostLimits, readCgroupHostFacts } from "../../agent/engine/runtime/cgroup-host.js";
import { parseNetDev, parseProcStat } from "../../agent/engine/runtime/proc-stats.js";
import { cgroupPids, parsePsOutput, validatePsArgs } from "../../agent/engine/container/top.js";
import { limitResources, parseCpuList, validateLimits } from "../../agent/engine/runtime/resource-limits.js";
import { mergeUpdate } from "../../agent/engine/container/update.js";
import { resolveThrottleDevices, splitDev } from "../../agent/engine/runtime/blkio-devices.js";
import { defaultHostConfig } from "../../agent/engine/container/config.js";

const fixtures = resolve(import.meta.dirname, "../fixtures");
const v1Root = join(fixtures, "cgroup-v1");
const v2Root = join(fixtures, "cgroup-v2");

describe("cgroup v1 stats", () => {
  it("reads cpuacct, cpu.stat, memory, the throttle blkio files and pids", async () => {
    const s = await readCgroupSample(cgroupDirs("/shoal/c1", "v1", v1Root));
    expect(s.cpu.cpu_usage).toEqual({
      total_usage: 123456789,
      percpu_usage: [100000000, 23456789],
      usage_in_kernelmode: 30_000_000,
      usage_in_usermode: 70_000_000,
    });
    expect(s.cpu.throttling_data).toEqual({ periods: 40, throttled_periods: 12, throttled_time: 987654 });
    expect(s.memory).toMatchObject({ usage: 5242880, max_usage: 6291456, failcnt: 2, limit: 67108864 });
    expect(s.memory.stats?.total_inactive_file).toBe(524288);
    expect(s.memory.stats?.cache).toBe(1048576);
    // CFQ's file is empty here, so the throttle counters are used; Total lines are dropped.
    expect(s.blkio.io_service_bytes_recursive).toEqual([
      { major: 8, minor: 0, op: "Read", value: 4096 },
      { major: 8, minor: 0, op: "Write", value: 8192 },
      { major: 8, minor: 0, op: "Sync", value: 12288 },
      { major: 8, minor: 0, op: "Async", value: 0 },
      { major: 8, minor: 0, op: "Discard", value: 0 },
    ]);
    expect(s.blkio.io_serviced_recursive).toHaveLength(2);
    expect(s.pids).toEqual({ current: 3 });
  });

  it("takes v1's page-rounded 2^63 as no limit, and missing files as zeros", async () => {
    const s = await readCgroupSample(cgroupDirs("/shoal/c2", "v1", v1Root));
    expect(s.memory.limit).toBeUndefined();
    expect(s.memory.usage).toBe(1000);
    expect(s.cpu.cpu_usage.total_usage).toBe(0);
    expect(s.blkio.io_service_bytes_recursive).toEqual([]);
  });

  it("lists the pids of a cgroup and its children", async () => {
    const pids = await cgroupPids(cgroupDirs("/shoal/c1", "v1", v1Root).pids);
    expect([...pids].sort()).toEqual([41, 42, 43]);
  });
});

describe("cgroup v2 stats", () => {
  it("reads cpu.stat in microseconds, memory.current/max/stat, io.stat and pids", async () => {
    const s = await readCgroupSample(cgroupDirs("/shoal/c1", "v2", v2Root));
    expect(s.cpu.cpu_usage).toEqual({
      total_usage: 2_500_000,
      usage_in_kernelmode: 1_000_000,
      usage_in_usermode: 1_500_000,
    });
    expect(s.cpu.throttling_data).toEqual({ periods: 10, throttled_periods: 4, throttled_time: 300_000 });
    expect(s.memory.usage).toBe(8388608);
    expect(s.memory.limit).toBeUndefined(); // "max"
    expect(s.memory.stats?.inactive_file).toBe(1048576);
    expect(s.blkio.io_service_bytes_recursive).toEqual([
      { major: 8, minor: 0, op: "read", value: 4096 },
      { major: 8, minor: 0, op: "write", value: 8192 },
      { major: 253, minor: 1, op: "read", value: 10 },
      { major: 253, minor: 1, op: "write", value: 0 },
    ]);
    expect(s.blkio.io_serviced_recursive?.[1]).toEqual({ major: 8, minor: 0, op: "write", value: 2 });
    expect(s.pids).toEqual({ current: 2, limit: 100 });
    expect([...(await cgroupPids(cgroupDirs("/shoal/c1", "v2", v2Root).unified))]).toEqual([7]);
  });

  it("parses partial lines without inventing figures", () => {
    expect(parseIoStatV2("8:0 rbytes=5\ngarbage\n").bytes).toEqual([
      { major: 8, minor: 0, op: "read", value: 5 },
      { major: 8, minor: 0, op: "write", value: 0 },
    ]);
    expect(parseBlkioV1("Total 5\n")).toEqual([]);
  });
});

describe("host facts and checks", () => {
  it("v1: CPUs and memory nodes from the root cpuset; no weight knob without blkio.weight", async () => {
    const f = await readCgroupHostFacts("v1", v1Root);
    expect(f).toEqual({ version: "v1", cpus: "0-1", mems: "0", blkioWeight: false, blkioThrottle: true });
    expect(() => checkHostLimits({ CpusetCpus: "1" }, f)).not.toThrow();
    expect(() => checkHostLimits({ CpusetCpus: "0-2" }, f)).toThrow(
      "Requested CPUs are not available - requested 0-2, available: 0-1",
    );
    expect(() => checkHostLimits({ CpusetMems: "1" }, f)).toThrow("Requested memory nodes are not available");
    expect(() => checkHostLimits({ BlkioWeight: 300 }, f)).toThrow("--blkio-weight cannot be applied");
    expect(() => checkHostLimits({ MemorySwappiness: 10, OomKillDisable: true }, f)).not.toThrow();
  });

  it("v2: io.weight in the daemon's own cgroup; swappiness and oom-kill-disable are refused", async () => {
    const f = await readCgroupHostFacts("v2", v2Root, join(v2Root, "self-cgroup"));
    expect(f).toEqual({ version: "v2", cpus: "0-3", mems: "0", blkioWeight: true, blkioThrottle: true });
    expect(() => checkHostLimits({ BlkioWeight: 300, CpusetCpus: "3" }, f)).not.toThrow();
    expect(() => checkHostLimits({ MemorySwappiness: 10 }, f)).toThrow(
      "--memory-swappiness cannot be applied",
    );
    expect(() => checkHostLimits({ MemorySwappiness: -1 }, f)).not.toThrow();
    expect(() => checkHostLimits({ OomKillDisable: true }, f)).toThrow(
      "--oom-kill-disable cannot be applied",
    );
  });
});

describe("limits → linux.resources", () => {
  it("maps every field, --cpus to a 100 ms period, and swap to twice the memory by default", () => {
    expect(
      limitResources(
        {
          Memory: 64 << 20,
          MemoryReservation: 32 << 20,
          MemorySwappiness: 0,
          OomKillDisable: true,
          CpuShares: 512,
          CpuPeriod: 50000,
          CpuQuota: 25000,
          CpusetCpus: "0",
          CpusetMems: "0",
          PidsLimit: 10,
          BlkioWeight: 300,
        },
        { swapAccounting: true },
      ),
    ).toEqual({
      memory: {
        limit: 64 << 20,
        swap: 128 << 20,
        reservation: 32 << 20,
        swappiness: 0,
        disableOOMKiller: true,
      },
      cpu: { shares: 512, period: 50000, quota: 25000, cpus: "0", mems: "0" },
      pids: { limit: 10 },
      blockIO: { weight: 300 },
    });
    expect(limitResources({ NanoCpus: 1.5e9 }, { swapAccounting: false })).toEqual({
      cpu: { period: 100000, quota: 150000 },
    });
    expect(limitResources({ MemorySwappiness: null }, { swapAccounting: true })).toEqual({});
  });

  it("refuses what the kernel or runc would, naming the flag", () => {
    const ctx = { swapAccounting: true };
    expect(parseCpuList("0-2,5")).toEqual([0, 1, 2, 5]);
    expect(() => parseCpuList("2-1")).toThrow("--cpuset-cpus");
    expect(() => validateLimits({ CpuQuota: 999 }, ctx)).toThrow("--cpu-quota");
    expect(() => validateLimits({ CpuQuota: -1 }, ctx)).not.toThrow();
    expect(() => validateLimits({ CpuPeriod: 2_000_000 }, ctx)).toThrow("--cpu-period");
    expect(() => validateLimits({ NanoCpus: 1e9, CpuQuota: 50000 }, ctx)).toThrow("Conflicting options");
    expect(() => validateLimits({ MemoryReservation: 1024 }, ctx)).toThrow("--memory-reservation");
    expect(() => validateLimits({ MemorySwappiness: 101 }, ctx)).toThrow("swappiness range is 0-100");
    expect(() => validateLimits({ BlkioWeight: 5 }, ctx)).toThrow("Range of blkio weight is from 10 to 1000");
    expect(() => validateLimits({ OomKillDisable: true }, ctx)).toThrow("add --memory");
    expect(() =>
      validateLimits({ Memory: 64 << 20, MemorySwap: 128 << 20 }, { swapAccounting: false }),
    ).toThrow("swapaccount=1");
  });
});

describe("update bodies", () => {
  const current = defaultHostConfig({ Memory: 32 << 20, CpuShares: 512 });
  // What `docker update --memory 64m` sends: every Resources field, most at zero.
  const cliBody = {
    Memory: 64 << 20,
    CpuShares: 0,
    NanoCpus: 0,
    CgroupParent: "",
    BlkioWeight: 0,
    BlkioWeightDevice: null,
    CpuRealtimePeriod: 0,
    CpusetCpus: "",
    Devices: null,
    MemorySwappiness: null,
    OomKillDisable: null,
    PidsLimit: null,
    Ulimits: null,
    RestartPolicy: { Name: "", MaximumRetryCount: 0 },
  };

  it("changes only what is set; zero leaves a field as it is", () => {
    const { next, pidsTouched } = mergeUpdate(current, cliBody);
    expect(next.Memory).toBe(64 << 20);
    expect(next.CpuShares).toBe(512);
    expect(next.RestartPolicy).toEqual({ Name: "no", MaximumRetryCount: 0 });
    expect(pidsTouched).toBe(false);
    expect(mergeUpdate(current, { PidsLimit: -1 }).next.PidsLimit).toBe(0);
  });

  it("refuses fields it cannot change, by flag, and Docker's conflicts", () => {
    expect(() => mergeUpdate(current, { ...cliBody, CpuRealtimeRuntime: 1000 })).toThrow(
      "--cpu-rt-runtime (CpuRealtimeRuntime) cannot be changed",
    );
    expect(() => mergeUpdate(current, { SomethingNew: 1 })).toThrow("SomethingNew cannot be changed");
    const withSwap = defaultHostConfig({ Memory: 32 << 20, MemorySwap: 64 << 20 });
    expect(() => mergeUpdate(withSwap, { Memory: 128 << 20 })).toThrow(
      "update the memoryswap at the same time",
    );
    const rm = defaultHostConfig({ AutoRemove: true });
    expect(() => mergeUpdate(rm, { RestartPolicy: { Name: "always" } })).toThrow("AutoRemove");
  });
});

describe("ps output and /proc figures", () => {
  it("keeps the container's rows; the last column keeps its spaces; thread rows follow their process", () => {
    const out = [
      "UID PID PPID C STIME TTY TIME CMD",
      "root 1 0 0 00:00 ? 00:00:01 /sbin/init splash",
      "root 41 40 0 00:01 ? 00:00:00 sh -c sleep 1 & sleep 2",
      "root - - 0 00:01 ? 00:00:00 -",
      "root 99 1 0 00:01 ? 00:00:00 other",
      "",
    ].join("\n");
    const r = parsePsOutput(out, new Set([41]));
    expect(r.Titles).toEqual(["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
    expect(r.Processes).toEqual([
      ["root", "41", "40", "0", "00:01", "?", "00:00:00", "sh -c sleep 1 & sleep 2"],
      ["root", "-", "-", "0", "00:01", "?", "00:00:00", "-"],
    ]);
    expect(() => parsePsOutput("USER COMMAND\nroot x\n", new Set())).toThrow("Couldn't find PID field");
    expect(() => validatePsArgs("-o user=PID")).toThrow('specifying "user=PID" is not allowed');
    expect(() => validatePsArgs("-o pid=PID,comm")).not.toThrow();
  });

  it("reads /proc/stat and net/dev as dockerd does, leaving the loopback out", () => {
    const stat =
      "cpu  100 0 50 800 10 0 40 5 0 0\ncpu0 50 0 25 400 5 0 20 0 0 0\ncpu1 50 0 25 400 5 0 20 5 0 0\nintr 1\n";
    expect(parseProcStat(stat)).toEqual({ systemCpuUsage: 1000 * 1e7, onlineCpus: 2 });
    const dev = [
      "Inter-|   Receive                                                |  Transmit",
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
      "    lo:       5       1    0    0    0     0          0         0        5       1    0    0    0     0       0          0",
      "  eth0:    1296      16    1    2    0     0          0         0      656       8    3    4    0     0       0          0",
    ].join("\n");
    expect(parseNetDev(dev)).toEqual({
      eth0: {
        rx_bytes: 1296,
        rx_packets: 16,
        rx_errors: 1,
        rx_dropped: 2,
        tx_bytes: 656,
        tx_packets: 8,
        tx_errors: 3,
        tx_dropped: 4,
      },
    });
  });
});

describe("block device throttles", () => {
  it("splits dev_t as glibc does and refuses paths that are no block device", async () => {
    expect(splitDev(0x0801n)).toEqual({ major: 8, minor: 1 });
    expect(splitDev((259n << 8n) | 0x12n | (0x300n << 12n))).toEqual({ major: 259, minor: 0x312 });
    await expect(
      resolveThrottleDevices({ BlkioDeviceReadBps: [{ Path: "/dev/null", Rate: 1 }] }),
    ).rejects.toThrow("--device-read-bps /dev/null:1: /dev/null is not a block device");
    await expect(
      resolveThrottleDevices({ BlkioDeviceWriteIOps: [{ Path: "/dev/nosuchdisk", Rate: 1 }] }),
    ).rejects.toThrow("does not exist");
    await expect(resolveThrottleDevices({ BlkioDeviceReadBps: [{ Path: "sda", Rate: 1 }] })).rejects.toThrow(
      "absolute path",
    );
    expect(await resolveThrottleDevices({ BlkioDeviceReadBps: null, BlkioDeviceWriteBps: [] })).toEqual({});
  });

  it("puts resolved throttles next to the weight", () => {
    const throttle = { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1024 }] };
    expect(limitResources({ BlkioWeight: 200 }, { swapAccounting: true, throttle })).toEqual({
      blockIO: { weight: 200, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1024 }] },
    });
  });
});
