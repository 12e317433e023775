import { execFile } from "node:child_process";
import { access, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContainerEngine } from "../../agent/engine/container/engine.js";
import {
  cgroupDirsLeft,
  collectLogs,
  logOptions,
  makeContainerEnv,
  mountsUnder,
  type ContainerEnv,
} from "../helpers/container-env.js";
import { expectError } from "../helpers/cluster-objects.js";

let env: ContainerEnv;
let engine: ContainerEngine;

beforeAll(async () => {
  env = await makeContainerEnv();
  engine = await env.open();
});

afterAll(async () => {
  await env?.cleanup();
});

async function run(
  cmd: string[],
  extra: { name?: string; hostConfig?: Record<string, unknown> } = {},
): Promise<string> {
  const { Id } = await engine.create({
    name: extra.name,
    config: { Image: "busybox", Cmd: cmd },
    hostConfig: extra.hostConfig ?? {},
  });
  await engine.start(Id);
  return Id;
}

describe("container lifecycle", () => {
  it("runs echo: exit 0 and the line on stdout, stderr separate", async () => {
    const id = await run(["sh", "-c", "echo hello; echo oops >&2"]);
    expect(await engine.wait(id, "not-running")).toEqual({ StatusCode: 0 });
    const rec = engine.get(id);
    expect(rec.State.Status).toBe("exited");
    expect(rec.State.ExitCode).toBe(0);
    expect(rec.State.FinishedAt).not.toBe("0001-01-01T00:00:00Z");
    const out = await collectLogs(engine.logs(id, logOptions()));
    expect(out.stdout).toBe("hello\n");
    expect(out.stderr).toBe("oops\n");
    const onlyErr = await collectLogs(engine.logs(id, logOptions({ stdout: false })));
    expect(onlyErr.stdout).toBe("");
    expect(onlyErr.stderr).toBe("oops\n");
    // Loopback is up inside the container's own network namespace.
    const lo = await run(["sh", "-c", "cat /sys/class/net/lo/operstate; ls /sys/class/net"]);
    await engine.wait(lo, "not-running");
    expect((await collectLogs(engine.logs(lo, logOptions()))).stdout).toMatch(/^(unknown|up)\nlo\n$/);
  });

  it("records a non-zero exit code", async () => {
    const id = await run(["sh", "-c", "exit 3"]);
    expect((await engine.wait(id, "not-running")).StatusCode).toBe(3);
    expect(engine.get(id).State.ExitCode).toBe(3);
  });

  it("stop sends SIGTERM, then SIGKILL after the timeout (137)", async () => {
    const id = await run(["sh", "-c", "trap '' TERM; echo ready; sleep 1000 & wait; sleep 1000"]);
    expect(engine.get(id).State.Status).toBe("running");
    expect(engine.get(id).State.Pid).toBeGreaterThan(0);
    const t0 = Date.now();
    await engine.stop(id, { timeoutSec: 1 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const rec = engine.get(id);
    expect(rec.State.Status).toBe("exited");
    expect(rec.State.ExitCode).toBe(137);
    await expectError(engine.stop(id), "not_modified", /not running/);
  });

  it("stop of a container that obeys SIGTERM is quick", async () => {
    const id = await run(["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]);
    const t0 = Date.now();
    await engine.stop(id, { timeoutSec: 10 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(engine.get(id).State.ExitCode).toBe(0);
    expect(engine.get(id).HasBeenManuallyStopped).toBe(true);
  });

  it("kill, restart, wait conditions", async () => {
    const id = await run(["sh", "-c", "trap 'exit 7' USR1; while true; do sleep 0.1; done"]);
    const nextExit = engine.wait(id, "next-exit");
    await engine.kill(id, "USR1");
    expect((await nextExit).StatusCode).toBe(7);
    await expectError(engine.kill(id), "conflict", /is not running/);
    await expectError(engine.kill(id, "SIGNOPE"), "invalid", /Invalid signal/);

    await engine.restart(id, { timeoutSec: 1 });
    expect(engine.get(id).State.Status).toBe("running");
    await engine.restart(id, { timeoutSec: 1 });
    expect(engine.get(id).State.Status).toBe("running");
    await expectError(engine.start(id), "not_modified", /already running/);
    await engine.kill(id, "KILL");
    expect((await engine.wait(id, "not-running")).StatusCode).toBe(137);
    // not-running on a stopped container answers at once
    expect((await engine.wait(id, "not-running")).StatusCode).toBe(137);

    const removed = engine.wait(id, "removed");
    await engine.remove(id, { force: false });
    expect((await removed).StatusCode).toBe(137);
    await expectError(engine.wait(id, "not-running"), "not_found", /No such container/);
  });

  it("wait rejects when aborted", async () => {
    const id = await run(["sleep", "1000"]);
    const ac = new AbortController();
    const w = engine.wait(id, "next-exit", ac.signal);
    ac.abort();
    await expect(w).rejects.toThrow();
    await engine.remove(id, { force: true });
  });

  it("remove: refuses a running container without force; force removes everything", async () => {
    const id = await run(["sleep", "1000"], { name: "victim" });
    await expectError(
      engine.remove("victim", { force: false }),
      "conflict",
      new RegExp(`You cannot remove a running container ${id}`),
    );
    await engine.remove("/victim", { force: true });
    await expectError(
      Promise.resolve().then(() => engine.get(id)),
      "not_found",
      /No such container/,
    );
    await expect(access(join(env.config.dataRoot, "containers", id))).rejects.toThrow();
    expect(await mountsUnder(join(env.config.dataRoot, "containers", id))).toEqual([]);
    expect((await cgroupDirsLeft(env.config.cgroupParent)).filter((d) => d.endsWith(id))).toEqual([]);
  });

  it("logs: tail, since/until, follow", async () => {
    const id = await run([
      "sh",
      "-c",
      "for i in 1 2 3 4 5; do echo line$i; done; sleep 1.2; echo late; echo late-err >&2",
    ]);
    // follow from the start ends when the container exits
    const followed = await collectLogs(engine.logs(id, logOptions({ follow: true })));
    expect(followed.stdout).toBe("line1\nline2\nline3\nline4\nline5\nlate\n");
    expect(followed.stderr).toBe("late-err\n");
    const tail2 = await collectLogs(engine.logs(id, logOptions({ tail: 2 })));
    expect(tail2.all.map((l) => l.data.toString())).toEqual(["late\n", "late-err\n"]);
    const tail3out = await collectLogs(engine.logs(id, logOptions({ tail: 3, stderr: false })));
    expect(tail3out.stdout).toBe("line5\nlate\n");
    expect((await collectLogs(engine.logs(id, logOptions({ tail: 0 })))).all).toEqual([]);
    expect((await collectLogs(engine.logs(id, logOptions({ tail: 100 })))).all.length).toBe(7);
    const all = (await collectLogs(engine.logs(id, logOptions()))).all;
    const lateTime = Date.parse(all[5].time) / 1000;
    const since = await collectLogs(engine.logs(id, logOptions({ since: lateTime - 0.5 })));
    expect(since.stdout).toBe("late\n");
    const until = await collectLogs(engine.logs(id, logOptions({ until: lateTime - 0.5 })));
    expect(until.stdout).toBe("line1\nline2\nline3\nline4\nline5\n");

    // follow of a running container, stopped by the signal
    const live = await run(["sh", "-c", "echo first; sleep 1000"]);
    const ac = new AbortController();
    const got: string[] = [];
    const reader = (async () => {
      for await (const l of engine.logs(live, logOptions({ follow: true, signal: ac.signal }))) {
        got.push(l.data.toString());
        ac.abort();
      }
    })();
    await reader;
    expect(got).toEqual(["first\n"]);
    await engine.remove(live, { force: true });
  });

  it("writes in the container land in its upper folder, not in the image layer", async () => {
    const id = await run(["sh", "-c", "echo data > /newfile; rm /bin/true; echo ok"]);
    expect((await engine.wait(id, "not-running")).StatusCode).toBe(0);
    const dir = join(env.config.dataRoot, "containers", id);
    expect(await readFile(join(dir, "diff", "newfile"), "utf8")).toBe("data\n");
    await expect(access(join(env.busyboxLayer, "newfile"))).rejects.toThrow();
    await access(join(env.busyboxLayer, "bin", "true"));
    // the container's view keeps the change while it exists
    expect(await readFile(join(dir, "rootfs", "newfile"), "utf8")).toBe("data\n");
  });

  it("create failures leave nothing behind", async () => {
    const before = engine.list({ all: true }).length;
    const dirs = async (): Promise<number> => (await readdir(join(env.config.dataRoot, "containers"))).length;
    const dirsBefore = await dirs();
    await expectError(
      engine.create({ name: "bad name!", config: { Image: "busybox" }, hostConfig: {} }),
      "invalid",
      /--name/,
    );
    await expectError(
      engine.create({ config: { Image: "nosuchimage" }, hostConfig: {} }),
      "not_found",
      /No such image: nosuchimage/,
    );
    await expectError(
      engine.create({ config: { Image: "busybox" }, hostConfig: { Memory: -1 } }),
      "invalid",
      /--memory/,
    );
    await expectError(
      engine.create({ config: { Image: "busybox" }, hostConfig: { NanoCpus: -5 } }),
      "invalid",
      /--cpus/,
    );
    await expectError(
      engine.create({ config: { Image: "busybox" }, hostConfig: { PidsLimit: -3 } }),
      "invalid",
      /--pids-limit/,
    );
    const mountsBefore = await mountsUnder(join(env.config.dataRoot, "containers"));
    // Fails after the root filesystem was mounted (the spec builder reads /etc/passwd in it).
    await expectError(
      engine.create({ config: { Image: "busybox", User: "nosuchuser" }, hostConfig: {} }),
      "invalid",
      /unable to find user nosuchuser/,
    );
    expect(await mountsUnder(join(env.config.dataRoot, "containers"))).toEqual(mountsBefore);
    expect(await dirs()).toBe(dirsBefore);
    const first = await engine.create({ name: "taken", config: { Image: "busybox" }, hostConfig: {} });
    await expectError(
      engine.create({ name: "/taken", config: { Image: "busybox" }, hostConfig: {} }),
      "conflict",
      new RegExp(
        `Conflict. The container name "/taken" is already in use by container "${first.Id}". You have to remove \\(or rename\\) that container to be able to reuse that name.`,
      ),
    );
    expect(engine.list({ all: true }).length).toBe(before + 1);
    expect(await dirs()).toBe(dirsBefore + 1);
    await engine.remove("taken", { force: false });
    expect(await dirs()).toBe(dirsBefore);
    expect(await mountsUnder(join(env.config.dataRoot, "containers"))).toHaveLength(
      engine.list({ all: true }).length,
    );
  });

  it("a command that does not exist fails start with the runtime's message and leaves no run state", async () => {
    const { Id } = await engine.create({ config: { Image: "busybox", Cmd: ["nosuch"] }, hostConfig: {} });
    await expectError(engine.start(Id), "invalid", /exec: "nosuch": executable file not found in \$PATH/);
    const rec = engine.get(Id);
    expect(rec.State.Status).toBe("created");
    expect(rec.State.ExitCode).toBe(127);
    expect(rec.State.Error).toMatch(/executable file not found/);
    expect((await cgroupDirsLeft(env.config.cgroupParent)).filter((d) => d.endsWith(Id))).toEqual([]);
    const stdout = await new Promise<string>((resolve) =>
      execFile("runc", ["--root", join(env.config.execRoot, "runtime"), "list", "-q"], (_e, out) =>
        resolve(out),
      ),
    );
    expect(stdout).not.toContain(Id);
    await engine.remove(Id, { force: false });
  });

  it("AutoRemove removes the container when it exits", async () => {
    const id = await run(["sh", "-c", "exit 2"], { hostConfig: { AutoRemove: true } });
    expect((await engine.wait(id, "removed")).StatusCode).toBe(2);
    expect(() => engine.get(id)).toThrow(/No such container/);
  });

  it("restart policy on-failure:2 restarts twice, then gives up", async () => {
    const id = await run(["sh", "-c", "echo run; exit 1"], {
      hostConfig: { RestartPolicy: { Name: "on-failure", MaximumRetryCount: 2 } },
    });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const r = engine.get(id);
      if (r.RestartCount === 2 && r.State.Status === "exited") break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const rec = engine.get(id);
    expect(rec.RestartCount).toBe(2);
    expect(rec.State.Status).toBe("exited");
    expect((await collectLogs(engine.logs(id, logOptions()))).stdout).toBe("run\nrun\nrun\n");
  });

  it("restart policy always: a stop by the user is not restarted", async () => {
    const id = await run(["sh", "-c", "sleep 0.3; exit 0"], {
      hostConfig: { RestartPolicy: { Name: "always", MaximumRetryCount: 0 } },
    });
    const deadline = Date.now() + 20_000;
    while (engine.get(id).RestartCount < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(engine.get(id).RestartCount).toBeGreaterThanOrEqual(1);
    await engine.stop(id, { timeoutSec: 1 });
    const count = engine.get(id).RestartCount;
    await new Promise((r) => setTimeout(r, 1500));
    expect(engine.get(id).State.Status).toBe("exited");
    expect(engine.get(id).RestartCount).toBe(count);
  });

  it("rename, list filters, prune", async () => {
    const a = await run(["sleep", "1000"], { name: "list-a", hostConfig: {} });
    const { Id: b } = await engine.create({
      name: "list-b",
      config: { Image: "busybox", Cmd: ["true"], Labels: { tier: "web" } },
      hostConfig: {},
    });
    await expectError(engine.rename("list-a", "list-b"), "conflict", /already in use/);
    await engine.rename("list-a", "list-c");
    expect(engine.get("list-c").Id).toBe(a);
    expect(engine.list({ all: false }).map((r) => r.Id)).toContain(a);
    expect(engine.list({ all: false }).map((r) => r.Id)).not.toContain(b);
    expect(engine.list({ all: true, filters: { label: ["tier=web"] } }).map((r) => r.Id)).toEqual([b]);
    expect(engine.list({ all: true, filters: { name: ["list-c"] } }).map((r) => r.Id)).toEqual([a]);
    expect(engine.list({ all: false, filters: { status: ["created"] } }).map((r) => r.Id)).toContain(b);
    expect(engine.usersOfImage(engine.get(a).ImageId)).toContain(a);
    const pruned = await engine.prune();
    expect(pruned.ContainersDeleted).toContain(b);
    expect(pruned.ContainersDeleted).not.toContain(a);
    await engine.remove(a, { force: true });
  });
});
