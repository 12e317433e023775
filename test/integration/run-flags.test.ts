// The run flags a user reaches for first, each checked from inside a real container.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { shoal } from "../helpers/cli.js";

const exec = promisify(execFile);
let d: TestDaemon;
let tmp: string;
const sh = (args: string[], input?: Buffer) => shoal(d.socket, args, input);

beforeAll(async () => {
  d = await startDaemon();
  tmp = await mkdtemp("/tmp/shoal-flags-");
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await d?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("run flags", () => {
  it("-e, --env-file, -w, -u and --entrypoint reach the process", async () => {
    const envFile = join(tmp, "app.env");
    await writeFile(envFile, "# comment\nFROM_FILE=yes\nOVERRIDE=file\n");
    const r = await sh([
      "run",
      "--rm",
      "--env-file",
      envFile,
      "-e",
      "OVERRIDE=flag",
      "-e",
      "PLAIN=1",
      "-w",
      "/tmp/work",
      "-u",
      "app",
      "--entrypoint",
      "sh",
      "busybox",
      "-c",
      'echo "$FROM_FILE $OVERRIDE $PLAIN"; pwd; id -u; id -g; echo $HOME',
    ]);
    expect(r.stderr).toBe("");
    expect(r.stdout.split("\n")).toEqual(["yes flag 1", "/tmp/work", "1000", "1000", "/home/app", ""]);
    const numeric = await sh(["run", "--rm", "-u", "4242:4343", "busybox", "sh", "-c", "id -u; id -g"]);
    expect(numeric.stdout).toBe("4242\n4343\n");
    const unknown = await sh(["run", "--rm", "-u", "nobody-here", "busybox", "true"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unable to find user nobody-here/);
  });

  it("--read-only keeps the root filesystem read-only but /tmp-less writes fail", async () => {
    const r = await sh([
      "run",
      "--rm",
      "--read-only",
      "busybox",
      "sh",
      "-c",
      "touch /x && echo wrote; echo done",
    ]);
    expect(r.stdout).toBe("done\n");
    expect(r.stderr).toMatch(/Read-only file system/);
  });

  it("--init runs tini as pid 1 and reaps the command", async () => {
    const r = await sh([
      "run",
      "--rm",
      "--init",
      "busybox",
      "sh",
      "-c",
      "cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    expect(r.stdout).toMatch(/^\/sbin\/docker-init -- sh -c/);
  });

  it("--privileged gives every capability and no seccomp filter", async () => {
    const r = await sh([
      "run",
      "--rm",
      "--privileged",
      "busybox",
      "grep",
      "-E",
      "^(CapEff|Seccomp):",
      "/proc/self/status",
    ]);
    const [capEff, seccomp] = r.stdout.trim().split("\n");
    expect(seccomp).toBe("Seccomp:\t0");
    expect(BigInt(`0x${capEff.split("\t")[1]}`)).toBeGreaterThan(0xa80425fbn);
    const normal = await sh(["run", "--rm", "busybox", "grep", "^Seccomp:", "/proc/self/status"]);
    expect(normal.stdout.trim()).toBe("Seccomp:\t2");
  });

  it("keeps the daemon's open-files limit unless --ulimit sets one, and refuses one above the host's", async () => {
    const inherited = await sh(["run", "--rm", "busybox", "sh", "-c", "ulimit -Hn"]);
    expect(inherited.stdout.trim()).toBe((await exec("sh", ["-c", "ulimit -Hn"])).stdout.trim());
    const set = await sh([
      "run",
      "--rm",
      "--ulimit",
      "nofile=1000:2000",
      "busybox",
      "sh",
      "-c",
      "ulimit -n; ulimit -Hn",
    ]);
    expect(set.stdout).toBe("1000\n2000\n");
    const tooHigh = await sh(["run", "--rm", "--ulimit", "nofile=99999999:99999999", "busybox", "true"]);
    expect(tooHigh.code).toBe(125);
    expect(tooHigh.stderr).toMatch(
      /--ulimit nofile=99999999:99999999: hard limit .* above this host's limit/,
    );
  });

  it("--cpus and --memory land in the container's cgroup", async () => {
    const c = await sh([
      "run",
      "-d",
      "--name",
      "limited",
      "--cpus",
      "0.5",
      "--memory",
      "32m",
      "busybox",
      "sleep",
      "1000",
    ]);
    expect(c.code).toBe(0);
    const inspect = await sh([
      "inspect",
      "--format",
      "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.State.Pid}}",
      "limited",
    ]);
    const [nano, mem, pid] = inspect.stdout.trim().split(" ");
    expect(nano).toBe("500000000");
    expect(mem).toBe(String(32 * 1024 * 1024));
    const cgroups = await exec("cat", [`/proc/${pid}/cgroup`]);
    const memPath = /:memory:(.*)$/m.exec(cgroups.stdout)?.[1];
    const cpuPath = /:cpu(?:,cpuacct)?:(.*)$/m.exec(cgroups.stdout)?.[1];
    if (memPath !== undefined && cpuPath !== undefined) {
      // cgroup v1 (this machine)
      const limit = await exec("cat", [`/sys/fs/cgroup/memory${memPath}/memory.limit_in_bytes`]);
      expect(limit.stdout.trim()).toBe(String(32 * 1024 * 1024));
      const quota = await exec("cat", [`/sys/fs/cgroup/cpu${cpuPath}/cpu.cfs_quota_us`]);
      expect(quota.stdout.trim()).toBe("50000");
    } else {
      const path = /^0::(.*)$/m.exec(cgroups.stdout)?.[1];
      const max = await exec("cat", [`/sys/fs/cgroup${path}/cpu.max`]);
      expect(max.stdout.trim()).toBe("50000 100000");
    }
    expect((await sh(["rm", "-f", "limited"])).code).toBe(0);
  });

  it("restart keeps the container and bumps its start time", async () => {
    await sh(["run", "-d", "--name", "again", "busybox", "sleep", "1000"]);
    const before = (await sh(["inspect", "--format", "{{.State.StartedAt}}", "again"])).stdout.trim();
    expect((await sh(["restart", "-t", "1", "again"])).code).toBe(0);
    const after = await sh(["inspect", "--format", "{{.State.Status}} {{.State.StartedAt}}", "again"]);
    const [status, startedAt] = after.stdout.trim().split(" ");
    expect(status).toBe("running");
    expect(startedAt).not.toBe(before);
    expect((await sh(["kill", "again"])).code).toBe(0);
    expect((await sh(["inspect", "--format", "{{.State.ExitCode}}", "again"])).stdout.trim()).toBe("137");
    await sh(["rm", "again"]);
  });
});

describe("image commands", () => {
  it("import a root filesystem with --change, run it, prune it", async () => {
    const rootfs = join(tmp, "rootfs");
    await exec("mkdir", ["-p", join(rootfs, "bin")]);
    await exec("cp", ["/usr/bin/busybox", join(rootfs, "bin/busybox")]);
    await exec("ln", ["-s", "busybox", join(rootfs, "bin/sh")]);
    await exec("ln", ["-s", "busybox", join(rootfs, "bin/echo")]);
    const tar = (
      await exec("tar", ["-C", rootfs, "-cf", "-", "."], { encoding: "buffer", maxBuffer: 64 << 20 })
    ).stdout;
    const imported = await sh(
      ["import", "--change", 'CMD ["echo", "imported-ok"]', "--change", "ENV GREETING=hi", "-", "mini:1"],
      tar,
    );
    expect(imported.code).toBe(0);
    expect(imported.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const r = await sh(["run", "--rm", "mini:1"]);
    expect(r.stdout).toBe("imported-ok\n");
    const env = await sh(["run", "--rm", "mini:1", "sh", "-c", "echo $GREETING"]);
    expect(env.stdout).toBe("hi\n");
    // in use: rmi refuses, naming the container
    await sh(["create", "--name", "holder", "mini:1"]);
    const refused = await sh(["rmi", "mini:1"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/being used by/);
    await sh(["rm", "holder"]);
    await sh(["tag", "mini:1", "mini:2"]);
    expect((await sh(["rmi", "mini:1", "mini:2"])).code).toBe(0);
    expect((await sh(["images", "--format", "{{.Repository}}"])).stdout).not.toMatch(/mini/);
    const pruned = await sh(["image", "prune", "-f"]);
    expect(pruned.code).toBe(0);
  });
});
