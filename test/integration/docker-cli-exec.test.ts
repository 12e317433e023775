// `docker exec` with the real docker CLI against a private shoald: output and exit codes, -e,
// -u, -w, --privileged, -d, -i with piped stdin, -it under a real pseudo-terminal (tmux with a
// private socket) with a window resize reaching the process, a container started before a
// daemon restart, and the refusals (stopped container, unknown exec, missing command) leaving
// nothing behind.
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";

const run = promisify(execFile);
let d: TestDaemon;
let tmp: string;
let tmuxSocket: string;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input);

beforeAll(async () => {
  d = await startDaemon();
  tmp = await mkdtemp("/tmp/shoal-exec-");
  tmuxSocket = join(tmp, "tmux.sock");
  await loadBusybox(d.socket);
  const r = await dk(["run", "-d", "--name", "ex1", "busybox", "sleep", "1000"]);
  expect(r.code).toBe(0);
}, 60_000);

afterAll(async () => {
  if (tmuxSocket) await run("tmux", ["-S", tmuxSocket, "kill-server"]).catch(() => undefined);
  await d?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Processes of this daemon's exec sessions (conmon in exec mode) still running. */
async function execConmons(): Promise<number[]> {
  const out: number[] = [];
  for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmd.includes("conmon") && cmd.includes("--exec-process-spec") && cmd.includes(d.execRoot))
      out.push(Number(pid));
  }
  return out;
}

async function sessionFolders(): Promise<string[]> {
  return readdir(join(d.execRoot, "exec")).catch(() => []);
}

/** Poll until `check` holds (the process under test acts asynchronously); fail with the last value. */
async function eventually<T>(get: () => Promise<T>, check: (v: T) => boolean, tries = 100): Promise<T> {
  let v = await get();
  for (let i = 0; i < tries && !check(v); i++) {
    await sleep(100);
    v = await get();
  }
  return v;
}

describe("docker exec", () => {
  it("prints a command's output and passes its exit code through", async () => {
    const hi = await dk(["exec", "ex1", "echo", "hi"]);
    expect(hi).toMatchObject({ code: 0, stdout: "hi\n", stderr: "" });
    const both = await dk(["exec", "ex1", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    expect(both).toMatchObject({ code: 7, stdout: "out\n", stderr: "err\n" });
  });

  it("shows the exit code in /exec/{id}/json", async () => {
    const created = await api(d.socket, "POST", "/v1.44/containers/ex1/exec", {
      Cmd: ["sh", "-c", "exit 7"],
      AttachStdout: true,
    });
    expect(created.status).toBe(201);
    const id = created.json<{ Id: string }>().Id;
    const before = (await api(d.socket, "GET", `/exec/${id}/json`)).json<Record<string, unknown>>();
    expect(before).toMatchObject({ ID: id, Running: false, ExitCode: null, Pid: 0 });
    const start = await api(d.socket, "POST", `/exec/${id}/start`, { Detach: true });
    expect(start.status).toBe(200);
    const after = await eventually(
      async () => (await api(d.socket, "GET", `/exec/${id}/json`)).json<Record<string, unknown>>(),
      (v) => v.Running === false && v.ExitCode !== null,
    );
    expect(after).toMatchObject({
      ExitCode: 7,
      Running: false,
      ProcessConfig: { entrypoint: "sh", arguments: ["-c", "exit 7"], tty: false, privileged: false },
      OpenStdout: true,
      OpenStdin: false,
    });
    // Started once only.
    const again = await api(d.socket, "POST", `/exec/${id}/start`, { Detach: true });
    expect(again.status).toBe(409);
    expect(again.json<{ message: string }>().message).toBe(`exec command ${id} has already run`);
  });

  it("-e, -u (uid and name), -w", async () => {
    const env = await dk(["exec", "-e", "FOO=bar", "-e", "PATH=/bin", "ex1", "sh", "-c", "echo $FOO:$PATH"]);
    expect(env.stdout).toBe("bar:/bin\n");
    const uid = await dk(["exec", "-u", "1000", "ex1", "sh", "-c", "id -u; id -g; echo $HOME"]);
    expect(uid.stdout).toBe("1000\n1000\n/home/app\n");
    const name = await dk(["exec", "-u", "app", "ex1", "id", "-un"]);
    expect(name.stdout).toBe("app\n");
    const group = await dk(["exec", "-u", "nobody:app", "ex1", "sh", "-c", "id -u; id -g"]);
    expect(group.stdout).toBe("65534\n1000\n");
    const unknown = await dk(["exec", "-u", "nosuchuser", "ex1", "true"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("unable to find user nosuchuser");
    const wd = await dk(["exec", "-w", "/tmp", "ex1", "pwd"]);
    expect(wd.stdout).toBe("/tmp\n");
    const rel = await dk(["exec", "-w", "tmp", "ex1", "pwd"]);
    expect(rel.code).not.toBe(0);
    expect(rel.stderr).toContain("needs to be an absolute path");
  });

  it("--privileged gives every capability the daemon holds", async () => {
    const capEff = (s: string): string | undefined => /^CapEff:\s*([0-9a-f]+)$/m.exec(s)?.[1];
    const plain = await dk(["exec", "ex1", "cat", "/proc/self/status"]);
    expect(capEff(plain.stdout)).toBe("00000000a80425fb");
    const priv = await dk(["exec", "--privileged", "ex1", "cat", "/proc/self/status"]);
    const ours = capEff(await readFile("/proc/self/status", "utf8"));
    expect(capEff(priv.stdout)).toBe(ours);
    // A non-root exec gets no effective capabilities (as its container would).
    const user = await dk(["exec", "-u", "1000", "ex1", "cat", "/proc/self/status"]);
    expect(capEff(user.stdout)).toBe("0000000000000000");
  });

  it("-d leaves the process running in the container", async () => {
    const r = await dk(["exec", "-d", "ex1", "sleep", "321"]);
    expect(r).toMatchObject({ code: 0, stdout: "" });
    const ps = await eventually(
      () => dk(["exec", "ex1", "ps", "-o", "args"]),
      (v) => v.stdout.includes("sleep 321"),
    );
    expect(ps.stdout).toContain("sleep 321");
    // A running exec is listed in the container's ExecIDs.
    const ids = await dk(["inspect", "--format", "{{json .ExecIDs}}", "ex1"]);
    expect(JSON.parse(ids.stdout)).toHaveLength(1);
    // It joined the container's cgroup: runc exec puts it there.
    const cg = await dk(["exec", "ex1", "cat", "/proc/1/cgroup"]);
    const mine = await dk(["exec", "ex1", "cat", "/proc/self/cgroup"]);
    expect(mine.stdout).toBe(cg.stdout);
  });

  it("-i pipes stdin to the process and closes it at the end", async () => {
    const r = await dk(["exec", "-i", "ex1", "cat"], Buffer.from("data\nmore data\n"));
    expect(r).toMatchObject({ code: 0, stdout: "data\nmore data\n" });
    const wc = await dk(["exec", "-i", "ex1", "wc", "-c"], Buffer.alloc(200_000, "x"));
    expect(wc.stdout.trim()).toBe("200000");
  });

  it("-it runs typed commands in a real terminal that follows the window size", async () => {
    const tmux = (...args: string[]) => run("tmux", ["-S", tmuxSocket, ...args]);
    const pane = async () => (await tmux("capture-pane", "-p", "-t", "x")).stdout;
    const cmd =
      `env DOCKER_HOST=unix://${d.socket} DOCKER_CONFIG=/tmp/shoal-docker-config docker exec -it ex1 sh; ` +
      `echo EXITED=$?; sleep 600`;
    await tmux("new-session", "-d", "-s", "x", "-x", "80", "-y", "24", cmd);
    await eventually(pane, (p) => p.includes("#"));
    await tmux("send-keys", "-t", "x", "echo typed-$((6*7))", "Enter");
    expect(await eventually(pane, (p) => p.includes("typed-42"))).toContain("typed-42");
    await tmux("send-keys", "-t", "x", "stty size", "Enter");
    expect(await eventually(pane, (p) => p.includes("24 80"))).toContain("24 80");
    await tmux("resize-window", "-t", "x", "-x", "100", "-y", "30");
    // The CLI sends the new size on SIGWINCH; stty reads it from the exec's terminal.
    const resized = await eventually(
      async () => {
        await tmux("send-keys", "-t", "x", "clear; stty size", "Enter");
        await sleep(200);
        return pane();
      },
      (p) => p.includes("30 100"),
      30,
    );
    expect(resized).toContain("30 100");
    await tmux("send-keys", "-t", "x", "exit 3", "Enter");
    expect(await eventually(pane, (p) => p.includes("EXITED="))).toContain("EXITED=3");
    await tmux("kill-session", "-t", "x");
  });

  it("-it: the detach keys leave the process running", async () => {
    const tmux = (...args: string[]) => run("tmux", ["-S", tmuxSocket, ...args]);
    const pane = async () => (await tmux("capture-pane", "-p", "-t", "y")).stdout;
    const cmd =
      `env DOCKER_HOST=unix://${d.socket} DOCKER_CONFIG=/tmp/shoal-docker-config ` +
      `docker exec -it ex1 sh -c 'echo ready; exec sleep 777'; echo EXITED=$?; sleep 600`;
    await tmux("new-session", "-d", "-s", "y", "-x", "80", "-y", "24", cmd);
    await eventually(pane, (p) => p.includes("ready"));
    await tmux("send-keys", "-t", "y", "C-p", "C-q");
    // The docker CLI's own answer to a detach: this message and status 1, as against dockerd.
    const detached = await eventually(pane, (p) => p.includes("EXITED="));
    expect(detached).toContain("read escape sequence");
    expect(detached).toContain("EXITED=1");
    const ps = await dk(["exec", "ex1", "ps", "-o", "args"]);
    expect(ps.stdout).toContain("sleep 777");
    await tmux("kill-session", "-t", "y");
  });

  it("refuses a stopped container (409) and an unknown exec (404)", async () => {
    await dk(["create", "--name", "stopped", "busybox", "true"]);
    const r = await dk(["exec", "stopped", "echo", "hi"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/container [0-9a-f]{64} is not running/);
    const api409 = await api(d.socket, "POST", "/containers/stopped/exec", { Cmd: ["true"] });
    expect(api409.status).toBe(409);
    const unknown = await api(d.socket, "GET", "/exec/nosuch/json");
    expect(unknown.status).toBe(404);
    expect(unknown.json<{ message: string }>().message).toBe("No such exec instance: nosuch");
    const start404 = await api(d.socket, "POST", "/exec/nosuch/start", { Detach: true });
    expect(start404.status).toBe(404);
    const bad = await api(d.socket, "POST", "/containers/ex1/exec", { Cmd: ["true"], Bogus: true });
    expect(bad.status).toBe(400);
    expect(bad.json<{ message: string }>().message).toContain("Bogus");
    const none = await api(d.socket, "POST", "/containers/ex1/exec", { Cmd: [] });
    expect(none.json<{ message: string }>().message).toBe("No exec command specified");
    await dk(["rm", "stopped"]);
  });

  it("a missing or non-executable command exits 127/126 and leaves nothing behind", async () => {
    const before = await execConmons();
    const folders = await sessionFolders();
    const missing = await dk(["exec", "ex1", "nosuchcommand"]);
    expect(missing.code).toBe(127);
    expect(missing.stdout + missing.stderr).toContain("executable file not found");
    const notExec = await dk(["exec", "ex1", "/etc/passwd"]);
    expect(notExec.code).toBe(126);
    expect(await execConmons()).toEqual(before);
    expect(await sessionFolders()).toEqual(folders);
    const ps = await dk(["exec", "ex1", "ps", "-o", "args"]);
    expect(ps.stdout).not.toContain("nosuchcommand");
  });

  it("stopping the container ends its exec processes; removing it drops its sessions", async () => {
    const before = await execConmons();
    await dk(["run", "-d", "--name", "short", "busybox", "sleep", "1000"]);
    const created = await api(d.socket, "POST", "/containers/short/exec", { Cmd: ["sleep", "999"] });
    const id = created.json<{ Id: string }>().Id;
    expect((await api(d.socket, "POST", `/exec/${id}/start`, { Detach: true })).status).toBe(200);
    await dk(["stop", "-t", "0", "short"]);
    const info = await eventually(
      async () => (await api(d.socket, "GET", `/exec/${id}/json`)).json<Record<string, unknown>>(),
      (v) => v.Running === false,
    );
    expect(info).toMatchObject({ Running: false, ExitCode: 137 });
    expect(await execConmons()).toEqual(before);
    await dk(["rm", "short"]);
    expect((await api(d.socket, "GET", `/exec/${id}/json`)).status).toBe(404);
  });

  it("shoal exec: the same flags", async () => {
    const sh = (args: string[], input?: Buffer) => shoal(d.socket, args, input);
    const plain = await sh([
      "exec",
      "-e",
      "FOO=bar",
      "-u",
      "app",
      "-w",
      "/tmp",
      "ex1",
      "sh",
      "-c",
      "echo $FOO $(id -un) $(pwd); echo e >&2; exit 4",
    ]);
    expect(plain).toMatchObject({ code: 4, stdout: "bar app /tmp\n", stderr: "e\n" });
    const piped = await sh(["exec", "-i", "ex1", "cat"], Buffer.from("piped\n"));
    expect(piped).toMatchObject({ code: 0, stdout: "piped\n" });
    const detached = await sh(["exec", "-d", "ex1", "sleep", "654"]);
    expect(detached.code).toBe(0);
    const ps = await eventually(
      () => dk(["exec", "ex1", "ps", "-o", "args"]),
      (v) => v.stdout.includes("sleep 654"),
    );
    expect(ps.stdout).toContain("sleep 654");
    const missing = await sh(["exec", "ex1", "nosuchcommand"]);
    expect(missing.code).toBe(127);
    const tmux = (...args: string[]) => run("tmux", ["-S", tmuxSocket, ...args]);
    const pane = async () => (await tmux("capture-pane", "-p", "-t", "z")).stdout;
    await tmux(
      "new-session",
      "-d",
      "-s",
      "z",
      "-x",
      "90",
      "-y",
      "20",
      `${process.execPath} ${join(import.meta.dirname, "../../dist/cli/main.js")} -H unix://${d.socket} exec -it ex1 sh; echo EXITED=$?; sleep 600`,
    );
    await eventually(pane, (p) => p.includes("#"));
    await tmux("send-keys", "-t", "z", "stty size; exit 6", "Enter");
    const done = await eventually(pane, (p) => p.includes("EXITED="));
    expect(done).toContain("20 90");
    expect(done).toContain("EXITED=6");
    await tmux("kill-session", "-t", "z");
  });

  it("works on a container started before a daemon restart", async () => {
    await d.restart();
    const r = await dk(["exec", "ex1", "sh", "-c", "echo after-restart; exit 5"]);
    expect(r).toMatchObject({ code: 5, stdout: "after-restart\n" });
    const piped = await dk(["exec", "-i", "ex1", "cat"], Buffer.from("still\n"));
    expect(piped.stdout).toBe("still\n");
  });
});
