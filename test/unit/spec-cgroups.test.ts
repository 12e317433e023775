import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  cgroupsPathFor,
  detectCgroupVersion,
  hasSwapAccounting,
} from "../../agent/engine/runtime/cgroups.js";
import { parseProcLimits } from "../../agent/engine/runtime/spec-resources.js";

describe("cgroup detection", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "shoal-spec-cgroup-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("tells a hybrid v1 host from a unified v2 one", async () => {
    await mkdir(join(root, "memory"));
    await mkdir(join(root, "unified"));
    await writeFile(join(root, "unified", "cgroup.controllers"), "");
    expect(await detectCgroupVersion(root)).toBe("v1");
    await writeFile(join(root, "cgroup.controllers"), "cpu memory pids\n");
    expect(await detectCgroupVersion(root)).toBe("v2");
  });

  it("finds v1 swap accounting from memory.memsw files", async () => {
    await mkdir(join(root, "memory"));
    expect(await hasSwapAccounting("v1", root)).toBe(false);
    await writeFile(join(root, "memory", "memory.memsw.limit_in_bytes"), "9223372036854771712\n");
    expect(await hasSwapAccounting("v1", root)).toBe(true);
  });

  it("builds runc's cgroupfs path", () => {
    expect(cgroupsPathFor("shoal", "abc", "v1")).toBe("/shoal/abc");
    expect(cgroupsPathFor("/lab/host1/", "abc", "v2")).toBe("/lab/host1/abc");
    expect(cgroupsPathFor("../../etc", "abc", "v1")).toBe("/etc/abc");
    expect(cgroupsPathFor("", "abc", "v1")).toBe("/abc");
  });

  it("reads the daemon's rlimits from /proc/self/limits", () => {
    const text = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 20000                files
Max processes             95000                95000                processes
`;
    expect(parseProcLimits(text)).toEqual({
      cpu: { soft: Infinity, hard: Infinity },
      nofile: { soft: 1024, hard: 20000 },
      nproc: { soft: 95000, hard: 95000 },
    });
  });
});
