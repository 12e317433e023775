// pause, unpause and update leave Docker's events in the engine's event log.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContainerEngine } from "../../agent/engine/container/engine.js";
import { makeContainerEnv, type ContainerEnv } from "../helpers/container-env.js";

let env: ContainerEnv;
let engine: ContainerEngine;

beforeAll(async () => {
  env = await makeContainerEnv();
  engine = await env.open();
});
afterAll(async () => {
  await env?.cleanup();
});

describe("resource events", () => {
  it("emits pause, unpause and update with the container's name, image and labels", async () => {
    const { Id } = await engine.create({
      name: "evented",
      config: { Image: "busybox", Cmd: ["sleep", "300"], Labels: { team: "blue" } },
      hostConfig: {},
    });
    try {
      await engine.start(Id);
      const from = engine.events.history().length;
      await engine.pause(Id);
      await engine.unpause(Id);
      await engine.update(Id, { Memory: 64 * 1024 * 1024 });
      const mine = engine.events
        .history()
        .slice(from)
        .filter((e) => e.Actor.ID === Id && ["pause", "unpause", "update"].includes(e.Action));
      expect(mine.map((e) => e.Action)).toEqual(["pause", "unpause", "update"]);
      for (const e of mine) {
        expect(e.Type).toBe("container");
        expect(e.Actor.Attributes).toEqual({ team: "blue", image: "busybox", name: "evented" });
      }
      expect(engine.get(Id).HostConfig.Memory).toBe(64 * 1024 * 1024);
    } finally {
      await engine.remove(Id, { force: true });
    }
  });
});
