import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectLogs, logOptions, makeContainerEnv, type ContainerEnv } from "../helpers/container-env.js";

let env: ContainerEnv;

beforeAll(async () => {
  env = await makeContainerEnv();
});

afterAll(async () => {
  await env?.cleanup();
});

describe("container recovery after a daemon restart", () => {
  it("keeps running containers running and picks up exits that happened while it was down", async () => {
    const first = await env.open();
    const runner = await first.create({
      name: "runner",
      config: { Image: "busybox", Cmd: ["sh", "-c", "echo up; trap 'exit 0' TERM; sleep 1000 & wait"] },
      hostConfig: {},
    });
    const quitter = await first.create({
      name: "quitter",
      config: { Image: "busybox", Cmd: ["sh", "-c", "echo bye; sleep 1; exit 5"] },
      hostConfig: {},
    });
    const finished = await first.create({
      name: "finished",
      config: { Image: "busybox", Cmd: ["sh", "-c", "exit 4"] },
      hostConfig: {},
    });
    await first.start(runner.Id);
    await first.start(finished.Id);
    await first.wait(finished.Id, "not-running");
    await first.start(quitter.Id);
    const runnerPid = first.get(runner.Id).State.Pid;
    await first.close();

    // The quitter exits while no engine watches.
    await new Promise((r) => setTimeout(r, 1800));

    const second = await env.open();
    const q = second.get("quitter");
    expect(q.State.Status).toBe("exited");
    expect(q.State.ExitCode).toBe(5);
    expect((await collectLogs(second.logs("quitter", logOptions()))).stdout).toBe("bye\n");

    const r = second.get("runner");
    expect(r.State.Status).toBe("running");
    expect(r.State.Pid).toBe(runnerPid);
    expect((await collectLogs(second.logs("runner", logOptions()))).stdout).toBe("up\n");

    const f = second.get("finished");
    expect(f.State.Status).toBe("exited");
    expect(f.State.ExitCode).toBe(4);

    // The recovered container is fully managed: stop works and records the exit.
    await second.stop("runner", { timeoutSec: 5 });
    expect(second.get("runner").State.Status).toBe("exited");
    expect(second.get("runner").State.ExitCode).toBe(0);

    // and can run again
    await second.start("runner");
    expect(second.get("runner").State.Status).toBe("running");
    await second.remove("runner", { force: true });
    await second.remove("quitter", { force: false });
    await second.remove("finished", { force: false });
    expect(second.list({ all: true })).toEqual([]);
  });

  it("a restart policy applies to an exit seen on recovery", async () => {
    const first = await env.open();
    const { Id } = await first.create({
      config: { Image: "busybox", Cmd: ["sh", "-c", "sleep 0.5; exit 1"] },
      hostConfig: { RestartPolicy: { Name: "on-failure", MaximumRetryCount: 1 } },
    });
    await first.start(Id);
    await first.close();
    await new Promise((r) => setTimeout(r, 1200));
    const second = await env.open();
    const deadline = Date.now() + 15_000;
    while (second.get(Id).RestartCount < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(second.get(Id).RestartCount).toBe(1);
    await second.wait(Id, "not-running");
    await second.remove(Id, { force: true });
  });
});
