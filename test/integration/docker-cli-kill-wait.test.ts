// Lifecycle details a script relies on, through the real docker CLI: `kill` returns once the
// container has exited, `wait` and its conditions behave as dockerd's, `--init` puts tini in
// front of the command, and a relative -w is refused at create.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";

let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await d?.destroy();
});

const status = async (name: string): Promise<string> =>
  (await dk(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name])).stdout.trim();

/** A wait request in flight, with a flag that says whether it has answered yet. */
function waitCall(name: string, condition: string) {
  let answered = false;
  const result = api(d.socket, "POST", `/containers/${name}/wait?condition=${condition}`).then((r) => {
    answered = true;
    return r;
  });
  return { result, answered: () => answered };
}

describe("kill, wait, --init, -w", () => {
  it("kill returns only once the container has exited", async () => {
    expect((await dk(["run", "-d", "--name", "killed", "busybox", "sleep", "1000"])).code).toBe(0);
    try {
      const r = await dk(["kill", "killed"]);
      expect(r.stdout.trim()).toBe("killed");
      // No waiting in between: the exit is recorded before kill answered.
      expect(await status("killed")).toBe("exited 137");
      // Through the API with nothing in between (no process to start): the same.
      expect((await dk(["start", "killed"])).code).toBe(0);
      expect((await api(d.socket, "POST", "/containers/killed/kill")).status).toBe(204);
      const inspect = await api(d.socket, "GET", "/containers/killed/json");
      expect(inspect.json<{ State: { Status: string; ExitCode: number } }>().State).toMatchObject({
        Status: "exited",
        ExitCode: 137,
      });
      const again = await dk(["kill", "killed"]);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(/is not running/);
    } finally {
      await dk(["rm", "-f", "killed"]);
    }
  });

  it("wait: not-running answers at once for a stopped container, next-exit waits for the next run, removed for the removal", async () => {
    expect((await dk(["run", "--name", "waited", "busybox", "sh", "-c", "exit 3"])).code).toBe(3);
    try {
      // not-running (docker wait's default): already met.
      expect((await dk(["wait", "waited"])).stdout.trim()).toBe("3");
      // next-exit: not met by the exit that already happened; the next run's exit answers.
      const next = waitCall("waited", "next-exit");
      const removed = waitCall("waited", "removed");
      await sleep(500);
      expect(next.answered()).toBe(false);
      expect((await api(d.socket, "POST", "/containers/waited/start")).status).toBe(204);
      const r = await next.result;
      expect(r.status).toBe(200);
      expect(r.json()).toEqual({ StatusCode: 3 });
      // removed: not met by an exit, only by the removal.
      expect(removed.answered()).toBe(false);
      expect((await dk(["rm", "waited"])).code).toBe(0);
      expect((await removed.result).json()).toEqual({ StatusCode: 3 });
    } finally {
      await dk(["rm", "-f", "waited"]);
    }
  });

  it("wait on a running container with a restart policy answers at its first exit", async () => {
    const r = await dk([
      "run",
      "-d",
      "--name",
      "loop",
      "--restart",
      "always",
      "busybox",
      "sh",
      "-c",
      "sleep 1; exit 4",
    ]);
    expect(r.code).toBe(0);
    try {
      const w = await dk(["wait", "loop"]);
      expect(w.stdout.trim()).toBe("4");
    } finally {
      await dk(["rm", "-f", "loop"]);
    }
  });

  it("wait answers 404 for an unknown container and 400 for an unknown condition", async () => {
    const missing = await dk(["wait", "nosuch"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/No such container: nosuch/);
    expect((await api(d.socket, "POST", "/containers/nosuch/wait")).status).toBe(404);
    expect((await dk(["create", "--name", "created", "busybox", "true"])).code).toBe(0);
    try {
      const bad = await api(d.socket, "POST", "/containers/created/wait?condition=whenever");
      expect(bad.status).toBe(400);
      expect(bad.json<{ message: string }>().message).toMatch(/not-running, next-exit or removed/);
    } finally {
      await dk(["rm", "-f", "created"]);
    }
  });

  it("--init runs tini (Debian's tini-static) as pid 1, which passes the stop signal on", async () => {
    expect((await dk(["run", "-d", "--init", "--name", "tini", "busybox", "sleep", "1000"])).code).toBe(0);
    try {
      const pid = (await dk(["inspect", "--format", "{{.State.Pid}}", "tini"])).stdout.trim();
      const { readFile } = await import("node:fs/promises");
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ").trim();
      expect(cmdline).toBe("/sbin/docker-init -- sleep 1000");
      expect((await dk(["inspect", "--format", "{{.HostConfig.Init}}", "tini"])).stdout.trim()).toBe("true");
      // Without an init, sleep as pid 1 ignores SIGTERM and is killed at the timeout (137); tini
      // hands SIGTERM to sleep, which dies of it (143).
      expect((await dk(["stop", "-t", "30", "tini"])).code).toBe(0);
      expect(await status("tini")).toBe("exited 143");
    } finally {
      await dk(["rm", "-f", "tini"]);
    }
  });

  it("a relative -w is refused at create with a 400 and leaves nothing behind", async () => {
    const r = await dk(["run", "-w", "rel", "busybox", "pwd"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/the working directory 'rel' is invalid, it needs to be an absolute path/);
    const direct = await api(d.socket, "POST", "/containers/create", {
      Image: "busybox",
      Cmd: ["pwd"],
      WorkingDir: "some/dir",
    });
    expect(direct.status).toBe(400);
    expect((await dk(["ps", "-aq"])).stdout.trim()).toBe("");
    const abs = await dk(["run", "--rm", "-w", "/tmp/made", "busybox", "pwd"]);
    expect(abs.stdout).toBe("/tmp/made\n");
  });
});
