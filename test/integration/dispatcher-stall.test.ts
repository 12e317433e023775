// A stall of the manager is not the death of its nodes: a real one-node cluster whose shoald is
// stopped (SIGSTOP) for longer than the heartbeat timeout and then continued. When it runs
// again its dispatcher's check comes before the heartbeats are read; it must see that it was
// late itself, not mark the node down, and leave the task running where it was (before, the
// node was marked down and every task on it replaced).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { tasksOf, until } from "../helpers/cluster.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";

let d: TestDaemon | undefined;

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
}, 60_000);

afterAll(async () => {
  if (d?.process.exitCode === null) d.process.kill("SIGCONT");
  await d?.destroy();
});

describe("a manager whose event loop stalls", () => {
  it("marks no node down and moves no task when it runs again", async () => {
    const daemon = d as TestDaemon;
    const dk = (args: string[]) => docker(daemon.socket, args);
    expect((await dk(["swarm", "init"])).code).toBe(0);
    const created = await dk(["service", "create", "-d", "--name", "steady", "busybox", "sleep", "600"]);
    expect(created.code, created.stderr).toBe(0);
    const task = await until("the task to run", async () =>
      (await tasksOf(daemon.socket, "steady")).find((t) => t.Status.State === "running"),
    );

    // The default heartbeat period is 1 s, so a node is down after 3 s without one: hold the
    // whole daemon (dispatcher and its own agent) for twice that.
    daemon.process.kill("SIGSTOP");
    await sleep(6000);
    daemon.process.kill("SIGCONT");
    const late = /heartbeat check ran late/;
    const markedDown = /missed its heartbeats; marked down/;
    await until("the dispatcher's first check after the stall", async () =>
      late.test(daemon.logs()) || markedDown.test(daemon.logs()) ? true : undefined,
    );
    // A few heartbeats later the node is still ready and the task is the same one, running.
    await until("the node ready", async () => {
      const r = await dk(["node", "ls", "--format", "{{.Status}}"]);
      return r.stdout.trim() === "Ready" ? true : undefined;
    });
    expect(daemon.logs()).not.toMatch(markedDown);
    const now = (await tasksOf(daemon.socket, "steady")).filter((t) => t.DesiredState === "running");
    expect(now.map((t) => t.ID)).toEqual([task.ID]);
    expect(now[0].Status.State).toBe("running");
  }, 90_000);
});
