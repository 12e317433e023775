// One real check that runc 1.1 accepts what buildSpec writes: a busybox rootfs, run to
// completion with runc, reading back capabilities, seccomp mode, hostname and memory limit.

import { spawn } from "node:child_process";
import {
  access,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  rmdir,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { detectCapabilities } from "../../agent/engine/runtime/capabilities.js";
import { detectCgroupVersion, hasSwapAccounting } from "../../agent/engine/runtime/cgroups.js";
import { buildSpec } from "../../agent/engine/runtime/spec.js";
import { makeInput, makeRecord } from "./spec-helpers.js";

const RUNC = "/usr/sbin/runc";
const BUSYBOX = "/usr/bin/busybox";
const CGROUP_ROOT = "/sys/fs/cgroup";
const TEST_PARENT = "shoal-test";

async function usable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  try {
    await access(RUNC);
    await access(BUSYBOX);
    return true;
  } catch {
    return false;
  }
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runc(args: string[], timeoutMs = 30_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(RUNC, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** rmdir <hierarchy>/shoal-test/* and shoal-test itself in every v1 hierarchy (and v2). */
async function removeTestCgroups(): Promise<string[]> {
  const left: string[] = [];
  const dirs = [CGROUP_ROOT, ...(await readdir(CGROUP_ROOT)).map((h) => join(CGROUP_ROOT, h))];
  for (const h of dirs) {
    const parent = join(h, TEST_PARENT);
    let kids: string[];
    try {
      kids = (await readdir(parent, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      continue;
    }
    for (const k of kids) await rmdir(join(parent, k)).catch(() => left.push(join(parent, k)));
    await rmdir(parent).catch(() => left.push(parent));
  }
  return left;
}

const enabled = await usable();

describe.skipIf(!enabled)("buildSpec under runc", () => {
  let tmp: string;
  let ids: string[];

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "shoal-spec-runc-"));
    ids = [];
  });

  afterEach(async () => {
    for (const id of ids) await runc(["--root", join(tmp, "runc-root"), "delete", "-f", id]);
    await rm(tmp, { recursive: true, force: true });
    expect(await removeTestCgroups()).toEqual([]);
  });

  async function bundle(record: ReturnType<typeof makeRecord>): Promise<{ dir: string; id: string }> {
    const dir = join(tmp, "bundle");
    const rootfs = join(dir, "rootfs");
    await mkdir(join(rootfs, "bin"), { recursive: true });
    await mkdir(join(rootfs, "etc"), { recursive: true });
    await copyFile(BUSYBOX, join(rootfs, "bin", "busybox"));
    for (const tool of ["sh", "cat", "grep", "id", "head", "tr", "hostname", "sleep", "echo"]) {
      await symlink("busybox", join(rootfs, "bin", tool));
    }
    await writeFile(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    await writeFile(join(rootfs, "etc", "group"), "root:x:0:\n");
    const id = `shoal-spec-${process.pid}-${Date.now().toString(36)}`;
    const version = await detectCgroupVersion();
    const spec = await buildSpec(
      makeInput(record, rootfs, {
        cgroupsPath: `/${TEST_PARENT}/${id}`,
        cgroupV2: version === "v2",
        swapAccounting: await hasSwapAccounting(version),
        capabilities: await detectCapabilities(),
        seccompHost: undefined,
        hostCpus: undefined,
        hostDevices: undefined,
      }),
    );
    await writeFile(join(dir, "config.json"), JSON.stringify(spec, null, 2));
    ids.push(id);
    return { dir, id };
  }

  it("runs with Docker's default capabilities, seccomp filter and hostname", async () => {
    const record = makeRecord({
      config: { Hostname: "spec-test-host" },
      args: ["-c", "grep Cap /proc/self/status; grep Seccomp: /proc/self/status; hostname; id"],
    });
    const { dir, id } = await bundle(record);
    const r = await runc(["--root", join(tmp, "runc-root"), "run", "-b", dir, id]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^CapEff:\s+00000000a80425fb$/m);
    expect(r.stdout).toMatch(/^CapBnd:\s+00000000a80425fb$/m);
    expect(r.stdout).toMatch(/^CapInh:\s+0000000000000000$/m);
    expect(r.stdout).toMatch(/^Seccomp:\s+2$/m);
    expect(r.stdout).toMatch(/^spec-test-host$/m);
    expect(r.stdout).toMatch(/uid=0\(root\) gid=0\(root\)/);
  });

  it("applies a 16m memory limit: the cgroup holds it and a bigger allocation is OOM-killed", async () => {
    const limit = 16 * 1024 * 1024;
    const record = makeRecord({
      host: { Memory: limit },
      args: [
        "-c",
        'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo survived',
      ],
    });
    const { dir, id } = await bundle(record);
    const r = await runc(["--root", join(tmp, "runc-root"), "run", "-b", dir, id], 60_000);
    expect(r.stdout).toMatch(new RegExp(`^${limit}$`, "m"));
    expect(r.stdout).not.toContain("survived");
    expect(r.code).toBe(137);
  });

  it("runs privileged with every capability the daemon holds, no seccomp, a read-only root and --ulimit", async () => {
    const record = makeRecord({
      host: {
        Privileged: true,
        ReadonlyRootfs: true,
        Ulimits: [{ Name: "nofile", Soft: 512, Hard: 1024 }],
        PidsLimit: 50,
      },
      args: [
        "-c",
        "grep -E 'CapEff|Seccomp:' /proc/self/status; ulimit -n; ulimit -Hn; echo x > /probe || echo rootfs-ro; echo y > /dev/shm/ok && echo shm-rw",
      ],
    });
    const { dir, id } = await bundle(record);
    const r = await runc(["--root", join(tmp, "runc-root"), "run", "-b", dir, id]);
    const ours = /^CapEff:\s+([0-9a-f]+)$/m.exec(await readFile("/proc/self/status", "utf8"))?.[1];
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^CapEff:\\s+${ours}$`, "m"));
    expect(r.stdout).toMatch(/^Seccomp:\s+0$/m);
    expect(r.stdout).toMatch(/^512\n1024$/m);
    expect(r.stdout).toContain("rootfs-ro");
    expect(r.stdout).toContain("shm-rw");
  });
});
