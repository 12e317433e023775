// cgroup limits, update, pause/unpause, stats and top, driven by the real docker CLI against a
// private shoald; every limit is read back from the container's cgroup files (v1 or v2).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";
import { pathExists } from "../../shared/fsutil.js";

let d: TestDaemon;
let v2 = false;
const dk = (args: string[]) => docker(d.socket, args);
const MiB = 1024 * 1024;

beforeAll(async () => {
  v2 = await pathExists("/sys/fs/cgroup/cgroup.controllers");
  d = await startDaemon();
  await loadBusybox(d.socket);
});
afterAll(async () => {
  if (d) await dk(["rm", "-f", ...(await allContainers())]).catch(() => undefined);
  await d?.destroy();
});

async function allContainers(): Promise<string[]> {
  const r = await dk(["ps", "-aq"]);
  return r.stdout.split("\n").filter(Boolean);
}

async function idOf(name: string): Promise<string> {
  const r = await dk(["inspect", "-f", "{{.Id}}", name]);
  expect(r.stderr).toBe("");
  return r.stdout.trim();
}

/** A file of the container's cgroup: `v1` names controller/file, `v2` the unified file. */
async function cgroupFile(name: string, v1: string, v2File: string): Promise<string> {
  const id = await idOf(name);
  const [controller, file] = v1.split("/");
  const path = v2
    ? join("/sys/fs/cgroup", d.cgroupParent, id, v2File)
    : join("/sys/fs/cgroup", controller, d.cgroupParent, id, file);
  return (await readFile(path, "utf8")).trim();
}

/** A whole disk of this host (from /proc/partitions) whose node is in /dev. */
async function aBlockDevice(): Promise<{ path: string; major: number; minor: number }> {
  const lines = (await readFile("/proc/partitions", "utf8")).split("\n").slice(2);
  for (const line of lines) {
    const [major, minor, , name] = line.trim().split(/\s+/);
    if (!name || /^(loop|ram|zram)/.test(name)) continue;
    if (await pathExists(`/dev/${name}`))
      return { path: `/dev/${name}`, major: Number(major), minor: Number(minor) };
  }
  throw new Error("this host has no block device in /proc/partitions");
}

async function runDetached(name: string, flags: string[], cmd = ["sleep", "300"]): Promise<void> {
  const r = await dk(["run", "-d", "--name", name, ...flags, "busybox", ...cmd]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
}

async function logLines(name: string): Promise<number> {
  const r = await dk(["logs", name]);
  return r.stdout.split("\n").filter(Boolean).length;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe("resource fields at create", () => {
  it("cpuset, cpu period/quota/shares, memory, reservation, swap, swappiness, pids and oom-kill-disable reach the cgroup", async () => {
    const flags = [
      "--cpuset-cpus",
      "0",
      "--cpuset-mems",
      "0",
      "--cpu-period",
      "50000",
      "--cpu-quota",
      "25000",
      "--cpu-shares",
      "512",
      "--memory",
      "64m",
      "--memory-reservation",
      "32m",
      "--memory-swap",
      "128m",
      "--pids-limit",
      "50",
      ...(v2 ? [] : ["--memory-swappiness", "10", "--oom-kill-disable"]),
    ];
    await runDetached("lim", flags);
    expect(await cgroupFile("lim", "cpuset/cpuset.cpus", "cpuset.cpus")).toBe("0");
    expect(await cgroupFile("lim", "cpuset/cpuset.mems", "cpuset.mems")).toBe("0");
    expect(await cgroupFile("lim", "pids/pids.max", "pids.max")).toBe("50");
    if (v2) {
      expect(await cgroupFile("lim", "", "cpu.max")).toBe("25000 50000");
      expect(await cgroupFile("lim", "", "memory.max")).toBe(String(64 * MiB));
      expect(await cgroupFile("lim", "", "memory.low")).toBe(String(32 * MiB));
      expect(await cgroupFile("lim", "", "memory.swap.max")).toBe(String(64 * MiB));
    } else {
      expect(await cgroupFile("lim", "cpu/cpu.cfs_period_us", "")).toBe("50000");
      expect(await cgroupFile("lim", "cpu/cpu.cfs_quota_us", "")).toBe("25000");
      expect(await cgroupFile("lim", "cpu/cpu.shares", "")).toBe("512");
      expect(await cgroupFile("lim", "memory/memory.limit_in_bytes", "")).toBe(String(64 * MiB));
      expect(await cgroupFile("lim", "memory/memory.soft_limit_in_bytes", "")).toBe(String(32 * MiB));
      expect(await cgroupFile("lim", "memory/memory.memsw.limit_in_bytes", "")).toBe(String(128 * MiB));
      expect(await cgroupFile("lim", "memory/memory.swappiness", "")).toBe("10");
      expect(await cgroupFile("lim", "memory/memory.oom_control", "")).toMatch(/^oom_kill_disable 1$/m);
    }
    const shown = await dk([
      "inspect",
      "-f",
      "{{.HostConfig.CpusetCpus}} {{.HostConfig.CpusetMems}} {{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpuShares}} {{.HostConfig.MemoryReservation}} {{.HostConfig.PidsLimit}}",
      "lim",
    ]);
    expect(shown.stdout.trim()).toBe(`0 0 50000 25000 512 ${32 * MiB} 50`);
  });

  it("the cpuset is what the process inside is allowed to run on", async () => {
    const r = await dk([
      "run",
      "--rm",
      "--cpuset-cpus",
      "1",
      "busybox",
      "grep",
      "Cpus_allowed_list",
      "/proc/self/status",
    ]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toMatch(/^Cpus_allowed_list:\s+1$/);
  });

  it("--blkio-weight reaches the cgroup, or is refused by name where the kernel has no weight knob", async () => {
    const knob = v2
      ? true
      : (await pathExists("/sys/fs/cgroup/blkio/blkio.weight")) ||
        (await pathExists("/sys/fs/cgroup/blkio/blkio.bfq.weight"));
    const before = (await allContainers()).length;
    const r = await dk(["run", "-d", "--name", "blk", "--blkio-weight", "300", "busybox", "sleep", "300"]);
    if (!knob) {
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/--blkio-weight cannot be applied/);
      expect((await allContainers()).length).toBe(before);
      return;
    }
    expect(r.code).toBe(0);
    const id = await idOf("blk");
    const dir = v2
      ? join("/sys/fs/cgroup", d.cgroupParent, id)
      : join("/sys/fs/cgroup/blkio", d.cgroupParent, id);
    const files = v2 ? ["io.bfq.weight", "io.weight"] : ["blkio.bfq.weight", "blkio.weight"];
    const texts = await Promise.all(files.map((f) => readFile(join(dir, f), "utf8").catch(() => "")));
    // runc writes the weight as is to the BFQ file, or converts it to io.weight's 1-10000 scale.
    const [bfq, plain] = texts;
    if (bfq.trim() !== "") expect(bfq).toMatch(/\b300\b/);
    else expect(plain).toMatch(v2 ? /\b2930\b/ : /\b300\b/);
    await dk(["rm", "-f", "blk"]);
  });

  it("--device-read-bps and --device-write-iops reach the block I/O throttle files", async () => {
    const disk = await aBlockDevice();
    await runDetached("thr", [
      "--device-read-bps",
      `${disk.path}:1mb`,
      "--device-write-iops",
      `${disk.path}:100`,
    ]);
    const dev = `${disk.major}:${disk.minor}`;
    if (v2) {
      expect(await cgroupFile("thr", "", "io.max")).toContain(
        `${dev} rbps=1048576 wbps=max riops=max wiops=100`,
      );
    } else {
      expect(await cgroupFile("thr", "blkio/blkio.throttle.read_bps_device", "")).toBe(`${dev} 1048576`);
      expect(await cgroupFile("thr", "blkio/blkio.throttle.write_iops_device", "")).toBe(`${dev} 100`);
    }
    const shown = await dk(["inspect", "-f", "{{json .HostConfig.BlkioDeviceReadBps}}", "thr"]);
    expect(JSON.parse(shown.stdout)).toEqual([{ Path: disk.path, Rate: 1048576 }]);
    // An update keeps them.
    expect((await dk(["update", "--memory", "64m", "thr"])).code).toBe(0);
    expect((await dk(["restart", "-t", "0", "thr"])).code).toBe(0);
    if (!v2)
      expect(await cgroupFile("thr", "blkio/blkio.throttle.read_bps_device", "")).toBe(`${dev} 1048576`);
    await dk(["rm", "-f", "thr"]);
    const bad = await dk(["create", "--device-read-bps", "/dev/null:1mb", "busybox", "true"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--device-read-bps \/dev\/null:1048576: \/dev\/null is not a block device/);
  });

  it("refuses bad values with a 400 naming the flag and leaves no container behind", async () => {
    const before = (await allContainers()).length;
    const cases: Array<[string[], RegExp]> = [
      [["--cpuset-cpus", "0-63"], /Requested CPUs are not available - requested 0-63.*--cpuset-cpus/],
      [["--cpuset-cpus", "zero"], /Invalid value zero for --cpuset-cpus/],
      [["--cpu-quota", "500"], /CPU cfs quota can not be less than 1ms/],
      [["--cpu-period", "10"], /CPU cfs period can not be less than 1ms/],
      [["--cpus", "0.5", "--cpu-period", "50000"], /Conflicting options: Nano CPUs and CPU Period/],
      [["--memory", "16m", "--memory-reservation", "32m"], /memory reservation limit/],
      [["--memory-swappiness", "101"], /[Vv]alid memory swappiness range is 0-100/],
      [["--oom-kill-disable"], /--oom-kill-disable/],
      [["--cpu-rt-runtime", "1000"], /--cpu-rt-runtime is not supported/],
    ];
    for (const [flags, message] of cases) {
      const r = await dk(["create", ...flags, "busybox", "true"]);
      expect(r.code, flags.join(" ")).not.toBe(0);
      expect(r.stderr, flags.join(" ")).toMatch(message);
    }
    expect((await allContainers()).length).toBe(before);
  });
});

describe("update", () => {
  it("docker update --memory changes a running container's cgroup, inspect and the next start", async () => {
    await runDetached("up", []);
    const r = await dk([
      "update",
      "--memory",
      "64m",
      "--cpus",
      "0.5",
      "--pids-limit",
      "20",
      "--restart",
      "on-failure:3",
      "up",
    ]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("up");
    const memFile = (): Promise<string> => cgroupFile("up", "memory/memory.limit_in_bytes", "memory.max");
    expect(await memFile()).toBe(String(64 * MiB));
    expect(await cgroupFile("up", "pids/pids.max", "pids.max")).toBe("20");
    if (v2) expect(await cgroupFile("up", "", "cpu.max")).toBe("50000 100000");
    else expect(await cgroupFile("up", "cpu/cpu.cfs_quota_us", "")).toBe("50000");
    const shown = await dk([
      "inspect",
      "-f",
      "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
      "up",
    ]);
    expect(shown.stdout.trim()).toBe(`${64 * MiB} 500000000 20 on-failure:3`);

    // Growing past the old memory+swap, and lifting the pids limit, work on a running container too.
    expect((await dk(["update", "--memory", "256m", "--pids-limit", "-1", "up"])).code).toBe(0);
    expect(await memFile()).toBe(String(256 * MiB));
    expect(await cgroupFile("up", "pids/pids.max", "pids.max")).toBe("max");

    expect((await dk(["restart", "-t", "0", "up"])).code).toBe(0);
    expect(await memFile()).toBe(String(256 * MiB));
    await dk(["rm", "-f", "up"]);
  });

  it("a stopped container records the update and starts with it", async () => {
    expect((await dk(["create", "--name", "later", "busybox", "sleep", "300"])).code).toBe(0);
    const r = await dk(["update", "--memory", "48m", "--cpuset-cpus", "1", "later"]);
    expect(r.stderr).toBe("");
    expect((await dk(["start", "later"])).code).toBe(0);
    expect(await cgroupFile("later", "memory/memory.limit_in_bytes", "memory.max")).toBe(String(48 * MiB));
    expect(await cgroupFile("later", "cpuset/cpuset.cpus", "cpuset.cpus")).toBe("1");
    await dk(["rm", "-f", "later"]);
  });

  it("answers Docker's shape, and refuses fields it cannot change by name", async () => {
    await runDetached("upapi", []);
    const ok = await api(d.socket, "POST", "/containers/upapi/update", { CpuShares: 256 });
    expect(ok.status).toBe(200);
    expect(ok.json()).toEqual({ Warnings: [] });
    expect(await cgroupFile("upapi", "cpu/cpu.shares", "cpu.weight")).toBe(v2 ? "10" : "256");
    const bad = await api(d.socket, "POST", "/containers/upapi/update", {
      CpuRealtimeRuntime: 1000,
      Memory: 64 * MiB,
    });
    expect(bad.status).toBe(400);
    expect(bad.json<{ message: string }>().message).toMatch(
      /--cpu-rt-runtime \(CpuRealtimeRuntime\) cannot be changed/,
    );
    // Nothing of a refused update applies.
    expect(await cgroupFile("upapi", "memory/memory.limit_in_bytes", "memory.max")).not.toBe(
      String(64 * MiB),
    );
    const cli = await dk(["update", "--cpuset-cpus", "0-63", "upapi"]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/Requested CPUs are not available/);
    const missing = await api(d.socket, "POST", "/containers/nosuch/update", { Memory: 64 * MiB });
    expect(missing.status).toBe(404);
    await dk(["rm", "-f", "upapi"]);
  });
});

describe("pause and unpause", () => {
  it("pause stops a counter, unpause resumes it; ps and inspect show it paused", async () => {
    await runDetached("counter", [], ["sh", "-c", "while true; do echo tick; sleep 0.1; done"]);
    await until("the counter to count", async () => (await logLines("counter")) > 3);
    const p = await dk(["pause", "counter"]);
    expect(p.stderr).toBe("");
    expect(p.stdout.trim()).toBe("counter");
    const state = await dk([
      "inspect",
      "-f",
      "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
      "counter",
    ]);
    expect(state.stdout.trim()).toBe("paused true true");
    const ps = await dk(["ps", "--filter", "name=counter", "--format", "{{.Status}}"]);
    expect(ps.stdout.trim()).toMatch(/^Up .* \(Paused\)$/);
    expect(await cgroupFile("counter", "freezer/freezer.state", "cgroup.freeze")).toBe(v2 ? "1" : "FROZEN");
    const frozenAt = await logLines("counter");
    await sleep(1500);
    expect(await logLines("counter")).toBe(frozenAt);

    // An update reaches a paused container's cgroup and leaves it frozen.
    expect((await dk(["update", "--memory", "100m", "counter"])).code).toBe(0);
    expect(await cgroupFile("counter", "memory/memory.limit_in_bytes", "memory.max")).toBe(String(100 * MiB));
    expect(await cgroupFile("counter", "freezer/freezer.state", "cgroup.freeze")).toBe(v2 ? "1" : "FROZEN");
    expect((await dk(["inspect", "-f", "{{.State.Status}}", "counter"])).stdout.trim()).toBe("paused");

    const start = await dk(["start", "counter"]);
    expect(start.code).not.toBe(0);
    expect(start.stderr).toMatch(/cannot start a paused container, try unpause instead/);

    const again = await dk(["pause", "counter"]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/is already paused/);

    expect((await dk(["unpause", "counter"])).code).toBe(0);
    await until("the counter to go on", async () => (await logLines("counter")) > frozenAt);
    const notPaused = await dk(["unpause", "counter"]);
    expect(notPaused.code).not.toBe(0);
    expect(notPaused.stderr).toMatch(/is not paused/);
    expect((await dk(["inspect", "-f", "{{.State.Status}}", "counter"])).stdout.trim()).toBe("running");
  });

  it("stop, kill and rm -f work on a paused container", async () => {
    await dk(["pause", "counter"]);
    const stop = await dk(["stop", "-t", "1", "counter"]);
    expect(stop.code).toBe(0);
    expect((await dk(["inspect", "-f", "{{.State.Status}}", "counter"])).stdout.trim()).toBe("exited");

    await runDetached("frozen", []);
    await dk(["pause", "frozen"]);
    expect((await dk(["kill", "frozen"])).code).toBe(0);
    await until(
      "the killed container to exit",
      async () => (await dk(["inspect", "-f", "{{.State.Status}}", "frozen"])).stdout.trim() === "exited",
    );
    expect((await dk(["start", "frozen"])).code).toBe(0);
    await dk(["pause", "frozen"]);
    expect((await dk(["rm", "-f", "frozen"])).code).toBe(0);
    expect((await dk(["inspect", "frozen"])).code).not.toBe(0);
  });

  it("a paused container stays paused across a daemon restart and can be unpaused after it", async () => {
    await runDetached("sleeper", []);
    expect((await dk(["pause", "sleeper"])).code).toBe(0);
    await d.restart();
    expect((await dk(["inspect", "-f", "{{.State.Status}}", "sleeper"])).stdout.trim()).toBe("paused");
    expect((await dk(["unpause", "sleeper"])).code).toBe(0);
    expect(await cgroupFile("sleeper", "freezer/freezer.state", "cgroup.freeze")).toBe(v2 ? "0" : "THAWED");
    expect((await dk(["rm", "-f", "sleeper"])).code).toBe(0);
  });

  it("answers 409 for a container that is not running and 404 for one that does not exist", async () => {
    const r = await dk(["pause", "counter"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Container [0-9a-f]{64} is not running/);
    const u = await api(d.socket, "POST", "/containers/counter/unpause");
    expect(u.status).toBe(409);
    expect((await api(d.socket, "POST", "/containers/nosuch/pause")).status).toBe(404);
    await dk(["rm", "-f", "counter"]);
  });
});

describe("stats", () => {
  it("stats --no-stream shows the --memory limit, the pids and a CPU figure", async () => {
    await runDetached("busy", ["--memory", "96m", "--cpus", "0.5"], ["sh", "-c", "while true; do :; done"]);
    const r = await dk([
      "stats",
      "--no-stream",
      "--format",
      "{{.Name}}|{{.MemUsage}}|{{.CPUPerc}}|{{.PIDs}}|{{.NetIO}}",
      "busy",
    ]);
    expect(r.stderr).toBe("");
    const [name, mem, cpu, pids, net] = r.stdout.trim().split("|");
    expect(name).toBe("busy");
    expect(mem).toMatch(/^[\d.]+(B|KiB|MiB) \/ 96MiB$/);
    // A busy loop under --cpus 0.5 uses some CPU, never more than the host has.
    const percent = Number(cpu.replace("%", ""));
    expect(percent).toBeGreaterThan(0);
    expect(percent).toBeLessThanOrEqual(200);
    expect(pids).toBe("1");
    expect(net).toMatch(/B \/ [\d.]+\s*[kMG]?B$/);
    // Without names: every running container.
    const all = await dk(["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}"]);
    expect(all.stderr).toBe("");
    expect(all.stdout.split("\n")).toContain("busy 1");
  });

  it("docker stats without --no-stream keeps streaming until it is stopped", async () => {
    const child = spawn("docker", ["stats", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}}", "busy"], {
      env: { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: "/tmp/shoal-docker-config" },
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    try {
      await until("a rendered sample", async () => /busy [\d.]+% [\d.]+\w+ \/ 96MiB/.test(output));
      // Streaming: the CLI is still reading the stream (the API test checks the samples chain).
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("the API answers Docker's shape, streaming a sample a second", async () => {
    const one = await api(d.socket, "GET", "/containers/busy/stats?stream=false");
    expect(one.status).toBe(200);
    type S = {
      read: string;
      preread: string;
      cpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage: number; online_cpus: number };
      precpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage: number };
      memory_stats: { usage: number; limit: number; stats: Record<string, number> };
      pids_stats: { current: number };
      networks: Record<string, { rx_bytes: number; tx_packets: number }>;
      blkio_stats: { io_service_bytes_recursive: unknown[] | null };
    };
    const s = one.json<S>();
    expect(s.memory_stats.limit).toBe(96 * MiB);
    expect(s.memory_stats.usage).toBeGreaterThan(0);
    expect(Object.keys(s.memory_stats.stats)).toContain(v2 ? "inactive_file" : "total_inactive_file");
    expect(s.cpu_stats.online_cpus).toBeGreaterThan(0);
    expect(s.cpu_stats.cpu_usage.total_usage).toBeGreaterThan(s.precpu_stats.cpu_usage.total_usage);
    expect(s.cpu_stats.system_cpu_usage).toBeGreaterThan(s.precpu_stats.system_cpu_usage);
    expect(Date.parse(s.read)).toBeGreaterThan(Date.parse(s.preread));
    expect(s.pids_stats.current).toBe(1);
    expect(Object.keys(s.networks)).toEqual(["eth0"]);
    expect(Array.isArray(s.blkio_stats.io_service_bytes_recursive)).toBe(true);

    const oneShot = await api(d.socket, "GET", "/containers/busy/stats?stream=false&one-shot=true");
    expect(oneShot.json<S>().preread).toBe("0001-01-01T00:00:00Z");

    // Streaming: read three samples, then go away.
    const samples = await new Promise<S[]>((resolve, reject) => {
      const got: S[] = [];
      let buf = "";
      void import("node:http").then(({ request }) => {
        const req = request({ socketPath: d.socket, path: "/containers/busy/stats" }, (res) => {
          res.on("data", (c: Buffer) => {
            buf += c.toString();
            let nl: number;
            while ((nl = buf.indexOf("\n")) >= 0) {
              got.push(JSON.parse(buf.slice(0, nl)) as S);
              buf = buf.slice(nl + 1);
            }
            if (got.length >= 3) {
              req.destroy();
              resolve(got);
            }
          });
        });
        req.on("error", (e) => (got.length >= 3 ? undefined : reject(e)));
        req.end();
      });
    });
    expect(samples[2].preread).toBe(samples[1].read);
    expect(samples[2].precpu_stats.cpu_usage.total_usage).toBe(samples[1].cpu_stats.cpu_usage.total_usage);
    await dk(["rm", "-f", "busy"]);
  });
});

describe("top", () => {
  it("lists the container's processes, with ps options too", async () => {
    await runDetached("toppy", [], ["sh", "-c", "sleep 301 & sleep 302; echo done"]);
    await until("both sleeps to run", async () => (await dk(["top", "toppy"])).stdout.includes("sleep 302"));
    const r = await dk(["top", "toppy"]);
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
    expect(r.stdout).toContain("sleep 301");
    expect(r.stdout).toContain("sh -c sleep 301 & sleep 302; echo done");
    // Only the container's own processes: the host's init is not among them.
    expect(lines.slice(1).every((l) => !/\s\/sbin\/init|\ssystemd\b/.test(l))).toBe(true);
    expect(lines.length).toBe(4);

    const o = await dk(["top", "toppy", "-o", "pid,comm"]);
    expect(o.stderr).toBe("");
    const rows = o.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^PID\s+COMMAND$/);
    expect(
      rows
        .slice(1)
        .map((l) => l.trim().split(/\s+/)[1])
        .sort(),
    ).toEqual(["sh", "sleep", "sleep"]);

    const bad = await dk(["top", "toppy", "-o", "nosuchcolumn"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Error running ps.*nosuchcolumn|unknown user-defined format specifier/i);
    await dk(["stop", "-t", "0", "toppy"]);
    const stopped = await dk(["top", "toppy"]);
    expect(stopped.code).not.toBe(0);
    expect(stopped.stderr).toMatch(/is not running/);
    await dk(["rm", "-f", "toppy"]);
  });
});

describe("shoal CLI", () => {
  const sh = (args: string[]) => shoal(d.socket, args);

  it("pause, unpause, update, top and stats --no-stream", async () => {
    const run = await sh([
      "run",
      "-d",
      "--name",
      "viashoal",
      "--memory",
      "32m",
      "--memory-reservation",
      "16m",
      "--cpuset-cpus",
      "1",
      "--cpu-period",
      "50000",
      "--cpu-quota",
      "20000",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(run.stderr).toBe("");
    expect(await cgroupFile("viashoal", "cpuset/cpuset.cpus", "cpuset.cpus")).toBe("1");
    expect(await cgroupFile("viashoal", "memory/memory.soft_limit_in_bytes", "memory.low")).toBe(
      String(16 * MiB),
    );
    if (v2) expect(await cgroupFile("viashoal", "", "cpu.max")).toBe("20000 50000");
    else expect(await cgroupFile("viashoal", "cpu/cpu.cfs_quota_us", "")).toBe("20000");
    expect((await sh(["pause", "viashoal"])).stdout).toBe("viashoal\n");
    expect((await dk(["inspect", "-f", "{{.State.Status}}", "viashoal"])).stdout.trim()).toBe("paused");
    const again = await sh(["pause", "viashoal"]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/is already paused/);
    expect((await sh(["unpause", "viashoal"])).code).toBe(0);

    const up = await sh(["update", "--memory", "80m", "--cpuset-cpus", "0", "viashoal"]);
    expect(up.stderr).toBe("");
    expect(await cgroupFile("viashoal", "memory/memory.limit_in_bytes", "memory.max")).toBe(String(80 * MiB));
    expect(await cgroupFile("viashoal", "cpuset/cpuset.cpus", "cpuset.cpus")).toBe("0");
    const none = await sh(["update", "viashoal"]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/one or more flags/);

    const t = await sh(["top", "viashoal", "-o", "pid,args"]);
    expect(t.stderr).toBe("");
    expect(t.stdout).toMatch(/^PID\s+COMMAND\n\d+\s+sleep 300\n$/);

    const st = await sh([
      "stats",
      "--no-stream",
      "--format",
      "{{.Name}} {{.MemUsage}} {{.PIDs}}",
      "viashoal",
    ]);
    expect(st.stderr).toBe("");
    expect(st.stdout.trim()).toMatch(/^viashoal [\d.]+(B|KiB|MiB) \/ 80MiB 1$/);
    await dk(["rm", "-f", "viashoal"]);
  });
});
