// The health monitor inside the engine, with real containers (runc + conmon): the check runs as
// the container's process does, its events reach the event log, its output is capped, a check
// that cannot start is a failure, an exit stops the monitor and a restarted engine resumes it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ContainerEngine } from "../../agent/engine/container/engine.js";
import type { HealthState } from "../../agent/engine/container/types.js";
import { makeContainerEnv, type ContainerEnv } from "../helpers/container-env.js";

let env: ContainerEnv;

beforeAll(async () => {
  env = await makeContainerEnv();
});
afterAll(async () => {
  await env?.cleanup();
});

const SECOND = 1e9;

async function until(
  engine: ContainerEngine,
  id: string,
  done: (h: HealthState | undefined) => boolean,
): Promise<HealthState | undefined> {
  let h = engine.get(id).State.Health;
  for (let i = 0; i < 80 && !done(h); i++) {
    await sleep(250);
    h = engine.get(id).State.Health;
  }
  if (!done(h)) throw new Error(`health never got there: ${JSON.stringify(h)}`);
  return h;
}

describe("health monitor", () => {
  it("runs the check as the container's process (user, env, cwd) and logs health_status events", async () => {
    const engine = await env.open();
    const { Id } = await engine.create({
      name: "checked",
      config: {
        Image: "busybox",
        Cmd: ["sleep", "1000"],
        User: "1000:1000",
        Env: ["FOO=bar"],
        WorkingDir: "/tmp",
        Labels: { team: "blue" },
        Healthcheck: { Test: ["CMD-SHELL", 'echo "$FOO $(id -u) $(pwd)"'], Interval: SECOND },
      },
      hostConfig: {},
    });
    try {
      await engine.start(Id);
      expect(engine.get(Id).State.Health).toEqual({ Status: "starting", FailingStreak: 0, Log: [] });
      const h = await until(engine, Id, (x) => x?.Status === "healthy");
      expect(h?.Log[0].Output).toBe("bar 1000 /tmp\n");
      const events = engine.events.history().filter((e) => e.Action.startsWith("health_status"));
      expect(events.map((e) => [e.Type, e.Action, e.Actor.ID])).toEqual([
        ["container", "health_status: healthy", Id],
      ]);
      expect(events[0].Actor.Attributes).toEqual({ team: "blue", image: "busybox", name: "checked" });

      // An exit ends the monitor: "unhealthy" as dockerd shows a stopped monitor, no more results.
      await engine.kill(Id, "SIGKILL");
      expect(engine.get(Id).State.Status).toBe("exited");
      const after = engine.get(Id).State.Health;
      expect(after?.Status).toBe("unhealthy");
      await sleep(2200);
      expect(engine.get(Id).State.Health?.Log.length).toBe(after?.Log.length);

      // A new run starts over with the earlier results kept.
      await engine.start(Id);
      const again = engine.get(Id).State.Health;
      expect(again?.Status).toBe("starting");
      expect(again?.Log.length).toBe(after?.Log.length);
    } finally {
      await engine.remove(Id, { force: true });
    }
  });

  it("runs the check in the container's namespaces and cgroup", async () => {
    const engine = await env.open();
    const script =
      "for n in pid net mnt uts ipc; do readlink /proc/self/ns/$n; done; grep -E '^0::|(memory|pids):' /proc/self/cgroup | sort";
    const { Id } = await engine.create({
      config: {
        Image: "busybox",
        Cmd: ["sleep", "1000"],
        Healthcheck: { Test: ["CMD-SHELL", script], Interval: SECOND },
      },
      hostConfig: {},
    });
    try {
      await engine.start(Id);
      const h = await until(engine, Id, (x) => x?.Status === "healthy");
      const pid = engine.get(Id).State.Pid;
      const ns = await Promise.all(
        ["pid", "net", "mnt", "uts", "ipc"].map((n) => readlink(`/proc/${pid}/ns/${n}`)),
      );
      const cgroups = (await readFile(`/proc/${pid}/cgroup`, "utf8"))
        .split("\n")
        // cgroup v1: the memory and pids hierarchies; v2: the one line.
        .filter((l) => /^0::|(memory|pids):/.test(l))
        .sort();
      expect(h?.Log[0].Output).toBe([...ns, ...cgroups].join("\n") + "\n");
    } finally {
      await engine.remove(Id, { force: true });
    }
  });

  it("counts a check that cannot start and caps the output at 4 KiB", async () => {
    const engine = await env.open();
    const missing = await engine.create({
      config: {
        Image: "busybox",
        Cmd: ["sleep", "1000"],
        Healthcheck: { Test: ["CMD", "/no/such/binary"], Interval: SECOND, Retries: 1 },
      },
      hostConfig: {},
    });
    const chatty = await engine.create({
      config: {
        Image: "busybox",
        Cmd: ["sleep", "1000"],
        Healthcheck: { Test: ["CMD", "sh", "-c", "head -c 6000 /dev/zero | tr '\\0' x"], Interval: SECOND },
      },
      hostConfig: {},
    });
    try {
      await engine.start(missing.Id);
      await engine.start(chatty.Id);
      const m = await until(engine, missing.Id, (x) => x?.Status === "unhealthy");
      expect(m?.Log[0].ExitCode).toBe(-1);
      expect(m?.Log[0].Output).toMatch(/^OCI runtime exec failed: .*\/no\/such\/binary/);
      expect(m?.FailingStreak).toBe(1);
      const c = await until(engine, chatty.Id, (x) => x?.Status === "healthy");
      expect(c?.Log[0].Output).toBe(`${"x".repeat(4096)}...`);
    } finally {
      await engine.remove(missing.Id, { force: true });
      await engine.remove(chatty.Id, { force: true });
    }
  });

  it("checks every start interval while starting inside the start period, then every interval", async () => {
    const engine = await env.open();
    const { Id } = await engine.create({
      config: {
        Image: "busybox",
        Cmd: ["sleep", "1000"],
        Healthcheck: {
          Test: ["CMD-SHELL", "test -f /tmp/ok"],
          Interval: 3600 * SECOND,
          StartPeriod: 3600 * SECOND,
          StartInterval: SECOND,
        },
      },
      hostConfig: {},
    });
    try {
      await engine.start(Id);
      // An hour's interval, yet checks come every second while starting: failures without a streak.
      const failing = await until(engine, Id, (x) => (x?.Log.length ?? 0) >= 2);
      expect(failing?.Status).toBe("starting");
      expect(failing?.FailingStreak).toBe(0);
      await writeFile(join(engine.get(Id).RootfsPath, "tmp/ok"), "");
      const healthy = await until(engine, Id, (x) => x?.Status === "healthy");
      // Healthy: the next check is an interval (an hour) away.
      await sleep(2500);
      expect(engine.get(Id).State.Health?.Log.length).toBe(healthy?.Log.length);
    } finally {
      await engine.remove(Id, { force: true });
    }
  });

  it("resumes the monitor of a running container when a new engine recovers it", async () => {
    const first = await env.open();
    const { Id } = await first.create({
      config: {
        Image: "busybox",
        Cmd: ["sleep", "1000"],
        Healthcheck: { Test: ["CMD", "true"], Interval: SECOND },
      },
      hostConfig: {},
    });
    await first.start(Id);
    await until(first, Id, (x) => x?.Status === "healthy");
    await first.close();
    // Written down at close, so the next engine has every result so far.
    const seen = first.get(Id).State.Health?.Log.length ?? 0;
    const second = await env.open();
    try {
      // dockerd's restore: starting again, earlier results kept; then the checks go on.
      expect(second.get(Id).State.Health?.Status).toBe("starting");
      expect(second.get(Id).State.Health?.Log.length).toBe(seen);
      const h2 = await until(second, Id, (x) => x?.Status === "healthy");
      expect(h2?.Log.length).toBeGreaterThan(seen);
      expect(second.events.history().map((e) => e.Action)).toContain("health_status: healthy");
    } finally {
      await second.remove(Id, { force: true });
    }
  });
});
