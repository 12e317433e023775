// A task whose container cannot be stopped is not reported as shut down: a real one-node
// cluster whose OCI runtime (a wrapper around runc given with --runtime) refuses `kill` while a
// file exists, as a runtime that cannot signal a container would. The task keeps its state (and
// so its address) and the worker retries; once the runtime can kill again, the task reaches
// shutdown and the container is gone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { tasksOf, until, type Task } from "../helpers/cluster.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";

const run = promisify(execFile);
let d: TestDaemon | undefined;
let dir = "";
let block = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "shoal-stop-"));
  block = join(dir, "block-kill");
  const runc = (await run("sh", ["-c", "command -v runc"])).stdout.trim();
  const wrapper = join(dir, "runtime");
  await writeFile(
    wrapper,
    [
      "#!/bin/sh",
      `for a in "$@"; do`,
      `  if [ "$a" = kill ] && [ -e '${block}' ]; then`,
      `    echo 'level=error msg="kill refused: the test blocks signals to containers"' >&2`,
      "    exit 1",
      "  fi",
      "done",
      `exec '${runc}' "$@"`,
      "",
    ].join("\n"),
  );
  await chmod(wrapper, 0o755);
  // The wrapper is no Debian package, so the backport in Debian's runc cannot be seen through it.
  d = await startDaemon({ args: ["--runtime", wrapper, "--allow-vulnerable-runtime"] });
  await loadBusybox(d.socket);
}, 60_000);

afterAll(async () => {
  // Let the runtime kill again, whatever the test did, so that every container can go.
  await rm(block, { force: true });
  await d?.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe("a task whose container will not stop", () => {
  it("is not reported shut down until the container has stopped", async () => {
    const daemon = d as TestDaemon;
    const dk = (args: string[]) => docker(daemon.socket, args);
    expect((await dk(["swarm", "init"])).code).toBe(0);
    const created = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "stubborn",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "600",
    ]);
    expect(created.code, created.stderr).toBe(0);
    const task = await until("the task to run", async () =>
      (await tasksOf(daemon.socket, "stubborn")).find((t) => t.Status.State === "running"),
    );
    const containerId = task.Status.ContainerStatus?.ContainerID ?? "";
    expect(containerId).not.toBe("");
    const current = async (): Promise<Task | undefined> =>
      (await tasksOf(daemon.socket, "stubborn")).find((t) => t.ID === task.ID);
    const containerRunning = async (): Promise<boolean> =>
      (await dk(["inspect", "--format", "{{.State.Running}}", containerId])).stdout.trim() === "true";

    await writeFile(block, "");
    expect((await dk(["service", "scale", "-d", "stubborn=0"])).code).toBe(0);
    // Either the worker said the stop failed twice (it retries), or it reported the task shut
    // down (what it did before: the container still ran, its address was given away).
    const retries = (): number => (daemon.logs().match(/stopping a task's container failed/g) ?? []).length;
    const seen = await until(
      "a retried stop or a shutdown",
      async () => {
        const t = await current();
        if (t?.Status.State === "shutdown") return t;
        return retries() >= 2 ? t : undefined;
      },
      30_000,
    );
    expect(seen?.DesiredState).toBe("shutdown");
    expect(await containerRunning()).toBe(true);
    expect(seen?.Status.State).toBe("running");

    // The runtime can kill again: the next try stops it, and only then is the task shut down.
    await rm(block);
    const stopped = await until(
      "the task shut down",
      async () => {
        const t = await current();
        return t?.Status.State === "shutdown" ? t : undefined;
      },
      60_000,
    );
    expect(stopped.Status.ContainerStatus?.ContainerID).toBe(containerId);
    expect(await containerRunning()).toBe(false);
  }, 120_000);
});
