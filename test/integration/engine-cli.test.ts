// shoal run and friends against a real shoald: runc + conmon containers, real limits.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, readFile, readdir, rm } from "node:fs/promises";
import { hostileArchive, hostileLayerTars } from "../fixtures/hostile-tars.mjs";
import { join } from "node:path";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
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

describe("shoal run", () => {
  it("prints the container's stdout and stderr and exits with its code", async () => {
    const r = await sh(["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toBe("err\n");
    expect(r.code).toBe(3);
  });

  it("removes a --rm container after it exits", async () => {
    await sh(["run", "--rm", "--name", "gone", "busybox", "true"]);
    const ps = await sh(["ps", "-a", "--format", "{{.Names}}"]);
    expect(ps.stdout.split("\n")).not.toContain("gone");
  });

  it("gives the container its own hostname, pid 1 and root filesystem", async () => {
    const r = await sh([
      "run",
      "--rm",
      "--hostname",
      "fishbowl",
      "busybox",
      "sh",
      "-c",
      "hostname; echo $$; ls /",
    ]);
    const [host, pid, ...root] = r.stdout.trim().split("\n");
    expect(host).toBe("fishbowl");
    expect(pid).toBe("1");
    expect(root).toContain("bin");
    expect(root).not.toContain("work"); // the host's folders are not there
    expect(root).not.toContain("node_modules");
  });

  it("uses Docker's default capability set", async () => {
    const r = await sh(["run", "--rm", "busybox", "grep", "CapEff", "/proc/self/status"]);
    expect(r.stdout.trim()).toBe("CapEff:\t00000000a80425fb");
    const dropped = await sh([
      "run",
      "--rm",
      "--cap-drop",
      "ALL",
      "--cap-add",
      "NET_RAW",
      "busybox",
      "grep",
      "CapEff",
      "/proc/self/status",
    ]);
    expect(dropped.stdout.trim()).toBe("CapEff:\t0000000000002000");
  });

  it("kills a process that goes over its memory limit", async () => {
    const r = await sh([
      "run",
      "--rm",
      "--memory",
      "16m",
      "busybox",
      "sh",
      "-c",
      'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo survived',
    ]);
    expect(r.stdout).not.toContain("survived");
    expect(r.code).toBe(137);
  });

  it("refuses forks over the pids limit", async () => {
    const script = "for i in $(seq 1 20); do sleep 5 & done; echo all-started";
    const limited = await sh(["run", "--rm", "--pids-limit", "8", "busybox", "sh", "-c", script]);
    expect(limited.stdout).not.toContain("all-started");
    expect(limited.stderr).toMatch(/fork/i);
    const free = await sh(["run", "--rm", "busybox", "sh", "-c", script.replace("sleep 5", "sleep 0.1")]);
    expect(free.stdout).toContain("all-started");
  });

  it("keeps writes to the root filesystem out of the image", async () => {
    await sh(["run", "--name", "writer", "busybox", "sh", "-c", "echo scribble > /etc/scribble; rm /bin/ls"]);
    const fresh = await sh([
      "run",
      "--rm",
      "busybox",
      "sh",
      "-c",
      "cat /etc/scribble; ls / > /dev/null && echo ls-still-here",
    ]);
    expect(fresh.stdout).toContain("ls-still-here");
    expect(fresh.stdout).not.toContain("scribble");
    const layers = await readdir(join(d.dataRoot, "image", "layers"));
    for (const l of layers) {
      await expect(
        readFile(join(d.dataRoot, "image", "layers", l, "diff", "etc", "scribble")),
      ).rejects.toThrow();
    }
    await sh(["rm", "writer"]);
  });
});

describe("lifecycle", () => {
  it("stops with the signal, then kills after the timeout", async () => {
    const c = await sh([
      "run",
      "-d",
      "--name",
      "stubborn",
      "busybox",
      "sh",
      "-c",
      "trap '' TERM; echo ready; while true; do sleep 1; done",
    ]);
    expect(c.code).toBe(0);
    const id = c.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const stop = await sh(["stop", "-t", "1", "stubborn"]);
    expect(stop.code).toBe(0);
    const state = await sh(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "stubborn"]);
    expect(state.stdout.trim()).toBe("exited 137");
    const rm = await sh(["rm", "stubborn"]);
    expect(rm.code).toBe(0);
    const gone = await sh(["inspect", "stubborn"]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/No such (container|object): stubborn/);
  });

  it("refuses to remove a running container unless forced", async () => {
    await sh(["run", "-d", "--name", "busy", "busybox", "sleep", "1000"]);
    const refused = await sh(["rm", "busy"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/running container/i);
    expect((await sh(["rm", "-f", "busy"])).code).toBe(0);
  });

  it("keeps logs with stdout and stderr apart, with --tail and -t", async () => {
    const c = await sh([
      "run",
      "-d",
      "--name",
      "talker",
      "busybox",
      "sh",
      "-c",
      "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done",
    ]);
    expect(c.code).toBe(0);
    await sh(["wait", "talker"]);
    const logs = await sh(["logs", "talker"]);
    expect(logs.stdout).toBe("out1\nout2\nout3\nout4\nout5\n");
    expect(logs.stderr).toBe("err1\nerr2\nerr3\nerr4\nerr5\n");
    const tail = await sh(["logs", "--tail", "2", "talker"]);
    expect(tail.stdout + tail.stderr).toMatch(/5\n/);
    expect(
      tail.stdout.split("\n").filter(Boolean).length + tail.stderr.split("\n").filter(Boolean).length,
    ).toBe(2);
    const ts = await sh(["logs", "-t", "talker"]);
    expect(ts.stdout.split("\n")[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z out1$/);
    await sh(["rm", "talker"]);
  });

  it("logs -f follows a running container until it exits; --since skips older lines", async () => {
    await sh([
      "run",
      "-d",
      "--name",
      "follower",
      "busybox",
      "sh",
      "-c",
      "echo one; sleep 1; echo two; sleep 1; echo three",
    ]);
    const followed = await sh(["logs", "-f", "follower"]);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toBe("one\ntwo\nthree\n");
    const since = await sh(["logs", "--since", `${Math.floor(Date.now() / 1000) + 5}`, "follower"]);
    expect(since.stdout).toBe("");
    await sh(["rm", "follower"]);
  });

  it("wait prints the exit code; ps filters and formats", async () => {
    await sh(["run", "-d", "--name", "seven", "-l", "team=fish", "busybox", "sh", "-c", "exit 7"]);
    const w = await sh(["wait", "seven"]);
    expect(w.stdout.trim()).toBe("7");
    const ps = await sh(["ps", "-a", "--filter", "label=team=fish", "--format", "{{.Names}} {{.Status}}"]);
    expect(ps.stdout.trim()).toMatch(/^seven Exited \(7\) /);
    const q = await sh(["ps", "-aq", "--filter", "name=seven"]);
    expect(q.stdout.trim()).toMatch(/^[0-9a-f]{12}$/);
    const renamed = await sh(["rename", "seven", "eight"]);
    expect(renamed.code).toBe(0);
    expect((await sh(["ps", "-a", "--filter", "name=eight", "--format", "{{.Names}}"])).stdout.trim()).toBe(
      "eight",
    );
    const pruned = await sh(["container", "prune", "-f"]);
    expect(pruned.code).toBe(0);
    expect((await sh(["ps", "-aq"])).stdout.trim()).toBe("");
  });
});

describe("bad input", () => {
  it("answers 404 naming an unknown image or container", async () => {
    const r = await sh(["run", "--rm", "nosuchimage:1", "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("nosuchimage");
    const c = await api(d.socket, "POST", "/containers/nosuch/start");
    expect(c.status).toBe(404);
    expect(c.json<{ message: string }>().message).toContain("nosuch");
  });

  it("answers 409 on a name already in use", async () => {
    await sh(["create", "--name", "twin", "busybox", "true"]);
    const r = await api(d.socket, "POST", "/containers/create?name=twin", { Image: "busybox" });
    expect(r.status).toBe(409);
    expect(r.json<{ message: string }>().message).toContain("twin");
    await sh(["rm", "twin"]);
  });

  it("rejects invalid flag values, naming the flag, and leaves nothing behind", async () => {
    const before = await readdir(join(d.dataRoot, "containers"));
    const mem = await sh(["run", "--memory", "12q", "busybox", "true"]);
    expect(mem.code).toBe(125);
    expect(mem.stderr).toContain("--memory");
    const cpus = await sh(["run", "--cpus", "-1", "busybox", "true"]);
    expect(cpus.code).toBe(125);
    expect(cpus.stderr).toContain("--cpus");
    const name = await api(d.socket, "POST", "/containers/create?name=a/b", { Image: "busybox" });
    expect(name.status).toBe(400);
    expect(name.json<{ message: string }>().message).toMatch(/name/i);
    const badCmd = await sh(["run", "--name", "nocmd", "busybox", "/no/such/binary"]);
    expect(badCmd.code).toBe(127);
    expect(badCmd.stderr).toMatch(/no such file|not found/i);
    await sh(["rm", "-f", "nocmd"]);
    const after = await readdir(join(d.dataRoot, "containers"));
    expect(after.sort()).toEqual(before.sort());
    const mounts = await readFile("/proc/mounts", "utf8");
    expect(mounts.split("\n").filter((l) => l.includes(d.root)).length).toBe(
      (await sh(["ps", "-aq"])).stdout.split("\n").filter(Boolean).length,
    );
  });

  it("refuses a hostile layer tar with 400 and writes nothing", async () => {
    const sentinel = join(d.root, "sentinel");
    await mkdir(sentinel);
    const layersBefore = await readdir(join(d.dataRoot, "image", "layers"));
    const imagesBefore = (await sh(["images", "-q", "--no-trunc"])).stdout;
    try {
      for (const [name, layer] of Object.entries(await hostileLayerTars(sentinel))) {
        const r = await api(d.socket, "POST", "/images/load", await hostileArchive(layer, `evil-${name}:1`));
        expect(r.status, name).toBe(400);
        expect(await readdir(sentinel), name).toEqual([]);
      }
      expect(await readdir(join(d.dataRoot, "image", "layers"))).toEqual(layersBefore);
      expect((await sh(["images", "-q", "--no-trunc"])).stdout).toBe(imagesBefore);
      const cli = await sh(["load", "-i", "/dev/null"]);
      expect(cli.code).not.toBe(0);
    } finally {
      await rm(sentinel, { recursive: true, force: true });
    }
  });

  it("fails -it without a terminal at once with docker's message instead of hanging", async () => {
    const r = await sh(["run", "-it", "busybox", "sh"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the input device is not a TTY/);
  });
});
