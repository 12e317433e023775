import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContainerEngine } from "../../agent/engine/container/engine.js";
import { collectLogs, logOptions, makeContainerEnv, type ContainerEnv } from "../helpers/container-env.js";

let env: ContainerEnv;
let engine: ContainerEngine;

beforeAll(async () => {
  env = await makeContainerEnv();
  engine = await env.open();
});

afterAll(async () => {
  await env?.cleanup();
});

describe("resource limits", () => {
  it("a 16m memory limit OOM-kills a memory hog (137, OOMKilled)", async () => {
    const { Id } = await engine.create({
      // Doubling a shell variable eats memory fast; busybox has no other allocator at hand.
      config: { Image: "busybox", Cmd: ["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"] },
      hostConfig: { Memory: 16 * 1024 * 1024 },
    });
    await engine.start(Id);
    const res = await engine.wait(Id, "not-running");
    expect(res.StatusCode).toBe(137);
    expect(engine.get(Id).State.OOMKilled).toBe(true);
    await engine.remove(Id, { force: false });
  });

  it("a pids limit of 10 makes a fork bomb fail to fork", async () => {
    const { Id } = await engine.create({
      config: {
        Image: "busybox",
        Cmd: ["sh", "-c", "for i in $(seq 1 30); do sleep 30 & done; echo done"],
      },
      hostConfig: { PidsLimit: 10 },
    });
    await engine.start(Id);
    await engine.wait(Id, "not-running");
    const out = await collectLogs(engine.logs(Id, logOptions()));
    expect(out.stderr).toMatch(/can't fork|Resource temporarily unavailable/i);
    await engine.remove(Id, { force: true });
  });
});
