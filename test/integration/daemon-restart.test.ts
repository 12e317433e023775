// Containers outlive shoald: a restarted daemon finds every container, its state, exit code and logs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { shoal } from "../helpers/cli.js";

let d: TestDaemon;
const sh = (args: string[]) => shoal(d.socket, args);

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await d?.destroy();
});

describe("daemon restart", () => {
  it("loses no container, no exit code and no log", async () => {
    await sh([
      "run",
      "-d",
      "--name",
      "runner",
      "busybox",
      "sh",
      "-c",
      "echo before; while true; do sleep 1; done",
    ]);
    await sh([
      "run",
      "-d",
      "--name",
      "finisher",
      "busybox",
      "sh",
      "-c",
      "echo finishing; sleep 2; echo done; exit 5",
    ]);
    await sh(["run", "--name", "exited", "busybox", "sh", "-c", "echo gone-already; exit 2"]);
    await sh(["create", "--name", "created", "busybox", "true"]);

    // SIGKILL: the daemon gets no chance to tidy up, as in a crash.
    await d.stop("SIGKILL");
    await sleep(3000); // "finisher" exits while no daemon runs
    await d.restart();

    const ps = await sh(["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    const states = Object.fromEntries(
      ps.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ")),
    );
    expect(states).toEqual({ runner: "running", finisher: "exited", exited: "exited", created: "created" });
    const code = async (name: string) =>
      (await sh(["inspect", "--format", "{{.State.ExitCode}}", name])).stdout.trim();
    expect(await code("finisher")).toBe("5");
    expect(await code("exited")).toBe("2");
    expect((await sh(["logs", "finisher"])).stdout).toBe("finishing\ndone\n");
    expect((await sh(["logs", "exited"])).stdout).toBe("gone-already\n");
    expect((await sh(["logs", "runner"])).stdout).toBe("before\n");

    // The recovered running container is fully controllable.
    expect((await sh(["stop", "-t", "1", "runner"])).code).toBe(0);
    expect((await sh(["inspect", "--format", "{{.State.Status}}", "runner"])).stdout.trim()).toBe("exited");
    expect((await sh(["start", "created"])).code).toBe(0);
    expect((await sh(["wait", "created"])).stdout.trim()).toBe("0");
    expect((await sh(["rm", "-f", "runner", "finisher", "exited", "created"])).code).toBe(0);
    expect((await sh(["ps", "-aq"])).stdout.trim()).toBe("");
  });

  it("a clean stop (SIGTERM) leaves running containers running", async () => {
    await sh(["run", "-d", "--name", "survivor", "busybox", "sleep", "1000"]);
    await d.restart();
    const state = await sh(["inspect", "--format", "{{.State.Status}} {{.State.Pid}}", "survivor"]);
    const [status, pid] = state.stdout.trim().split(" ");
    expect(status).toBe("running");
    expect(() => process.kill(Number(pid), 0)).not.toThrow();
    expect((await sh(["rm", "-f", "survivor"])).code).toBe(0);
  });
});
