// Interactive containers with the real docker CLI: `run -it` in a real terminal (tmux), window
// resizes reaching the container, detach keys and `docker attach` back in, `run -i` with piped
// input, `start -ai`, and the refusals (bad detach keys, stopped containers, bad resizes).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Socket } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { api, shoalPath, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";
import { startTmux, type Tmux } from "../helpers/tmux.js";

let d: TestDaemon;
let tmux: Tmux;
let tmp: string;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input);
const dockerEnv = (): Record<string, string> => ({
  DOCKER_HOST: `unix://${d.socket}`,
  DOCKER_CONFIG: "/tmp/shoal-docker-config",
});

beforeAll(async () => {
  d = await startDaemon();
  tmux = await startTmux();
  tmp = await mkdtemp("/tmp/shoal-interactive-");
  await loadBusybox(d.socket);
}, 120_000);
afterAll(async () => {
  await tmux?.destroy();
  await d?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Poll until `test` holds (generous limit, no timing assumptions). */
async function until<T>(
  what: string,
  probe: () => Promise<T>,
  test: (v: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await probe();
  while (!test(v)) {
    if (Date.now() > end) throw new Error(`no ${what} within ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await sleep(100);
    v = await probe();
  }
  return v;
}

const running = async (name: string): Promise<string> =>
  (await dk(["inspect", "-f", "{{.State.Running}}", name])).stdout.trim();

/** Attach with stdin over a raw connection, send `input`, half-close; resolves when the daemon ends the stream. */
async function rawAttach(name: string, input: string): Promise<{ ended: boolean; body: string }> {
  const sock = connect(d.socket);
  await new Promise<void>((r) => sock.once("connect", () => r()));
  let text = "";
  let sent = false;
  sock.on("data", (c: Buffer) => {
    text += c.toString("latin1");
    if (!sent && text.includes("\r\n\r\n")) {
      sent = true;
      sock.end(input);
    }
  });
  sock.write(
    `POST /containers/${name}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`,
  );
  await new Promise<void>((r) => sock.once("end", () => r()));
  sock.destroy();
  return { ended: true, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

/** Press Enter until the attached shell answers with a prompt: the attach is connected then. */
async function attached(name: string): Promise<void> {
  await until(
    `a prompt in ${name}`,
    async () => {
      await tmux.send(name, ["Enter"]);
      await sleep(300);
      return tmux.capture(name);
    },
    (p) => p.includes("/ # "),
  );
}

/** Lines of the pane that are exactly `text` (a command's output, not the typed command line). */
const hasLine = (text: string) => (pane: string) => pane.split("\n").some((l) => l.trimEnd() === text);

describe("docker run -it in a terminal", () => {
  it("reads typed commands, follows resizes, detaches with ctrl-p ctrl-q and attaches again", async () => {
    await tmux.start("run", ["docker", "run", "-it", "--name", "term", "busybox", "sh"], dockerEnv());
    await tmux.waitFor("run", (p) => p.includes("/ # "), "shell prompt");
    await tmux.send("run", ["echo $((6*7))"], true);
    await tmux.send("run", ["Enter"]);
    await tmux.waitFor("run", hasLine("42"), "output 42");

    // The CLI sends its window size at start and again on SIGWINCH.
    await tmux.send("run", ["stty size"], true);
    await tmux.send("run", ["Enter"]);
    await tmux.waitFor("run", hasLine("24 80"), "size 24 80");
    await tmux.resize("run", 100, 30);
    await tmux.send("run", ["clear; stty size"], true);
    await tmux.send("run", ["Enter"]);
    await tmux.waitFor("run", hasLine("30 100"), "size 30 100 after the resize");

    // Detach: the CLI ends, the container keeps running.
    await tmux.send("run", ["C-p"]);
    await tmux.send("run", ["C-q"]);
    const exit = await until(
      "docker run to end after detaching",
      () => tmux.exited("run"),
      (e) => e.dead,
    );
    expect(exit.status).toBe(0);
    expect(await running("term")).toBe("true");

    // docker attach gets back into the same shell.
    await tmux.start("attach", ["docker", "attach", "term"], dockerEnv());
    await attached("attach");
    await tmux.send("attach", ["echo again$((1+1))"], true);
    await tmux.send("attach", ["Enter"]);
    await tmux.waitFor("attach", hasLine("again2"), "output from the re-attached shell");
    // Detach once more with the keys docker attach was given.
    await tmux.send("attach", ["C-p"]);
    await tmux.send("attach", ["C-q"]);
    const pane = await tmux.waitFor("attach", (p) => p.includes("read escape sequence"), "detach message");
    expect(pane).toContain("read escape sequence");
    expect(await running("term")).toBe("true");

    // Typing exit in a new attach ends the container with the shell's status.
    await tmux.start("attach2", ["docker", "attach", "--detach-keys", "ctrl-a,x", "term"], dockerEnv());
    await attached("attach2");
    await tmux.send("attach2", ["exit 3"], true);
    await tmux.send("attach2", ["Enter"]);
    const done = await until(
      "docker attach to end with the shell",
      () => tmux.exited("attach2"),
      (e) => e.dead,
    );
    expect(done.status).toBe(3);
    expect(await running("term")).toBe("false");
    expect((await dk(["inspect", "-f", "{{.State.ExitCode}}", "term"])).stdout.trim()).toBe("3");
    await dk(["rm", "-f", "term"]);
  });

  it("docker start -ai runs a created -it container in the terminal", async () => {
    expect((await dk(["create", "-it", "--name", "later", "busybox", "sh"])).code).toBe(0);
    await tmux.start("start", ["docker", "start", "-ai", "later"], dockerEnv());
    await tmux.waitFor("start", (p) => p.includes("/ # "), "shell prompt");
    await tmux.send("start", ["echo started$((2+3))"], true);
    await tmux.send("start", ["Enter"]);
    await tmux.waitFor("start", hasLine("started5"), "output of the started shell");
    await tmux.send("start", ["exit"], true);
    await tmux.send("start", ["Enter"]);
    const done = await until(
      "docker start -ai to end",
      () => tmux.exited("start"),
      (e) => e.dead,
    );
    expect(done.status).toBe(0);
    await dk(["rm", "-f", "later"]);
  });
});

describe("docker run -i with piped input", () => {
  it("echo data | docker run -i busybox cat prints data", async () => {
    const r = await dk(["run", "-i", "--rm", "busybox", "cat"], Buffer.from("data\n"));
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("data\n");
    expect(r.code).toBe(0);
  });

  it("a file piped in reaches the process whole and its end ends the process", async () => {
    const file = join(tmp, "input.bin");
    const body = Buffer.alloc(300_000, "abcdefghij\n");
    await writeFile(file, body);
    const r = await dk(["run", "-i", "--rm", "busybox", "sh", "-c", "wc -c; echo bye >&2; exit 7"], body);
    expect(r.stdout.trim()).toBe("300000");
    expect(r.stderr).toBe("bye\n");
    expect(r.code).toBe(7);
  });

  it("docker start -ai with piped input", async () => {
    expect((await dk(["create", "-i", "--name", "catter", "busybox", "cat"])).code).toBe(0);
    const r = await dk(["start", "-ai", "catter"], Buffer.from("one\ntwo\n"));
    expect(r.stdout).toBe("one\ntwo\n");
    expect(r.code).toBe(0);
    await dk(["rm", "-f", "catter"]);
  });

  it("a -di container keeps its stdin after a client's input ended", async () => {
    expect((await dk(["run", "-di", "--name", "keeper", "busybox", "sh"])).code).toBe(0);
    // A client sends a command, then half-closes: the attach ends, the shell lives on with its
    // stdin open (dockerd's behaviour without StdinOnce), so a second client can still type.
    for (const word of ["first", "second"]) {
      const out = await rawAttach("keeper", `echo ${word}\n`);
      expect(out.ended).toBe(true);
      await until(
        `the ${word} output`,
        async () => (await dk(["logs", "keeper"])).stdout,
        (s) => s.includes(word),
      );
      expect(await running("keeper")).toBe("true");
    }
    expect((await dk(["logs", "keeper"])).stdout).toBe("first\nsecond\n");
    await dk(["rm", "-f", "keeper"]);
  });
});

describe("refusals", () => {
  it("bad detach keys are a 400 naming them", async () => {
    expect((await dk(["run", "-dit", "--name", "keys", "busybox", "sh"])).code).toBe(0);
    const r = await api(
      d.socket,
      "POST",
      "/containers/keys/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-",
      undefined,
      {
        Upgrade: "tcp",
        Connection: "Upgrade",
      },
    );
    expect(r.status).toBe(400);
    expect(r.json<{ message: string }>().message).toContain("Invalid detach keys (ctrl-) provided");
    const cli = await dk(["attach", "--no-stdin", "--detach-keys", "ctrl-Q", "keys"]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain("400");
    expect(await running("keys")).toBe("true");
    await dk(["rm", "-f", "keys"]);
  });

  it("attaching to a stopped container is refused", async () => {
    expect((await dk(["create", "--name", "stopped", "busybox", "true"])).code).toBe(0);
    const r = await dk(["attach", "stopped"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("You cannot attach to a stopped container, start it first");
    await dk(["rm", "-f", "stopped"]);
  });

  it("resize: 404 no such container, 409 not running, 400 bad size", async () => {
    expect((await api(d.socket, "POST", "/containers/nosuch/resize?h=10&w=10")).status).toBe(404);
    expect((await dk(["create", "-t", "--name", "idle", "busybox", "sh"])).code).toBe(0);
    const stopped = await api(d.socket, "POST", "/containers/idle/resize?h=10&w=10");
    expect(stopped.status).toBe(409);
    expect(stopped.json<{ message: string }>().message).toMatch(/not running/);
    const bad = await api(d.socket, "POST", "/containers/idle/resize?h=abc&w=10");
    expect(bad.status).toBe(400);
    expect(bad.json<{ message: string }>().message).toMatch(/height/);
    const ws = await api(d.socket, "GET", "/containers/idle/attach/ws");
    expect(ws.status).toBe(400);
    await dk(["rm", "-f", "idle"]);
  });
});

describe("the first terminal size", () => {
  it("a TTY container starts at HostConfig.ConsoleSize; a bad size is a 400 and makes nothing", async () => {
    const create = await api(d.socket, "POST", "/containers/create?name=sized", {
      Image: "busybox",
      Cmd: ["stty", "size"],
      Tty: true,
      OpenStdin: true,
      HostConfig: { ConsoleSize: [33, 77] },
    });
    expect(create.status).toBe(201);
    expect((await api(d.socket, "POST", "/containers/sized/start")).status).toBe(204);
    await dk(["wait", "sized"]);
    expect((await dk(["logs", "sized"])).stdout.trim()).toBe("33 77");
    await dk(["rm", "-f", "sized"]);
    const bad = await api(d.socket, "POST", "/containers/create?name=badsize", {
      Image: "busybox",
      Tty: true,
      HostConfig: { ConsoleSize: [-1, 80] },
    });
    expect(bad.status).toBe(400);
    expect(bad.json<{ message: string }>().message).toContain("ConsoleSize");
    expect((await api(d.socket, "GET", "/containers/badsize/json")).status).toBe(404);
  });
});

describe("bounded attach", () => {
  it("a client that stops reading is dropped; the container is not held back", async () => {
    const id = (
      await dk([
        "run",
        "-di",
        "--name",
        "flood",
        "busybox",
        "sh",
        "-c",
        // 30 MB in lines of 1000 bytes (the log stays near that size), then idle.
        "read go; yes $(head -c 999 /dev/zero | tr '\\0' x) | head -c 30000000; sleep 100000",
      ])
    ).stdout.trim();
    expect(id).not.toBe("");
    const sock: Socket = connect(d.socket);
    await new Promise<void>((r) => sock.once("connect", () => r()));
    let head = "";
    let stalled = false;
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    sock.on("data", (c: Buffer) => {
      if (stalled) return;
      head += c.toString("latin1");
      // Stop reading after the 101: from here on the daemon can only buffer or drop us.
      if (head.includes("\r\n\r\n")) {
        stalled = true;
        sock.pause();
      }
    });
    sock.on("error", () => undefined);
    sock.write(
      "POST /containers/flood/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    );
    await until(
      "the 101",
      async () => head,
      (h) => h.includes("101 UPGRADED"),
    );
    sock.write("go\n");
    await until(
      "the daemon to drop the stalled client",
      async () => d.logs(),
      (l) => l.includes("stopped reading its output"),
      120_000,
    );
    sock.resume();
    await closed;
    // conmon was never held back: the whole output reached the log, and the container runs.
    await until(
      "the whole output in the log",
      async () => (await dk(["logs", "flood"])).stdout.length,
      (n) => n >= 30_000_000,
      120_000,
    );
    expect(await running("flood")).toBe("true");
    await dk(["rm", "-f", "flood"]);
  }, 180_000);
});

describe("the shoal CLI", () => {
  const sh = (args: string[], input?: Buffer) => shoal(d.socket, args, input);
  const shoalArgv = (args: string[]) => [process.execPath, shoalPath, "-H", `unix://${d.socket}`, ...args];

  it("shoal run -it: typed commands, resize, detach, shoal attach back in", async () => {
    await tmux.start("srun", shoalArgv(["run", "-it", "--name", "sterm", "busybox", "sh"]));
    await tmux.waitFor("srun", (p) => p.includes("/ # "), "shell prompt");
    await tmux.send("srun", ["echo $((5*5))"], true);
    await tmux.send("srun", ["Enter"]);
    await tmux.waitFor("srun", hasLine("25"), "output 25");
    await tmux.resize("srun", 90, 20);
    await tmux.send("srun", ["clear; stty size"], true);
    await tmux.send("srun", ["Enter"]);
    await tmux.waitFor("srun", hasLine("20 90"), "size 20 90 after the resize");
    await tmux.send("srun", ["C-p"]);
    await tmux.send("srun", ["C-q"]);
    const exit = await until(
      "shoal run to end after detaching",
      () => tmux.exited("srun"),
      (e) => e.dead,
    );
    expect(exit.status).toBe(0);
    expect(await running("sterm")).toBe("true");

    await tmux.start("sattach", shoalArgv(["attach", "sterm"]));
    await attached("sattach");
    await tmux.send("sattach", ["echo back$((3+4))"], true);
    await tmux.send("sattach", ["Enter"]);
    await tmux.waitFor("sattach", hasLine("back7"), "output from the re-attached shell");
    await tmux.send("sattach", ["exit 5"], true);
    await tmux.send("sattach", ["Enter"]);
    const done = await until(
      "shoal attach to end with the shell",
      () => tmux.exited("sattach"),
      (e) => e.dead,
    );
    expect(done.status).toBe(5);
    await dk(["rm", "-f", "sterm"]);
  });

  it("echo data | shoal run -i busybox cat, and shoal start -ai", async () => {
    const r = await sh(["run", "-i", "--rm", "busybox", "cat"], Buffer.from("data\n"));
    expect(r.stdout).toBe("data\n");
    expect(r.code).toBe(0);
    expect((await sh(["create", "-i", "--name", "scat", "busybox", "cat"])).code).toBe(0);
    const s = await sh(["start", "-ai", "scat"], Buffer.from("again\n"));
    expect(s.stdout).toBe("again\n");
    expect(s.code).toBe(0);
    const stopped = await sh(["attach", "scat"]);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain("You cannot attach to a stopped container, start it first");
    await dk(["rm", "-f", "scat"]);
  });
});
