// Logging drivers through the real docker CLI: json-file/local rotation at max-size into at most
// max-file files (conmon switches files, shoald keeps and prunes them), `docker logs` reading the
// rotated files in order, --log-driver none keeping nothing, and refused drivers and options.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lstat, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
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

/** The real (distinct) log files of a container and their sizes. */
async function logFilesOf(id: string): Promise<number[]> {
  const dir = join(d.dataRoot, "containers", id);
  const sizes = new Map<number, number>();
  for (const name of await readdir(join(dir, "logs")).catch(() => [] as string[])) {
    // shoald may recycle a file between the listing and this look at it: it is then gone.
    const s = await stat(join(dir, "logs", name)).catch(() => undefined);
    if (s) sizes.set(s.ino, s.size);
  }
  const cur = await lstat(join(dir, "container.log")).catch(() => undefined);
  if (cur?.isFile()) sizes.set(cur.ino, cur.size);
  return [...sizes.values()];
}

/** Complete records (whole lines) in a container's log files. */
async function recordsIn(id: string): Promise<number> {
  const dir = join(d.dataRoot, "containers", id, "logs");
  let n = 0;
  for (const name of await readdir(dir)) {
    const text = await readFile(join(dir, name), "utf8");
    n += text.split("\n").filter((l) => / stdout F line \d{5} /.test(l)).length;
  }
  return n;
}

const LINE = (i: number): string => `line ${String(i).padStart(5, "0")} ${"x".repeat(80)}`;

/**
 * A script printing `n` numbered lines of ~95 bytes, pausing now and then like a real service:
 * a writer that fills a file faster than shoald re-arms (docs/engine-logs.md) can make conmon
 * start one plain file more for a moment, which is not what these tests look at.
 */
const printer = (n: number): string =>
  `i=0; while [ $i -lt ${n} ]; do echo "line $(printf %05d $i) ${"x".repeat(80)}"; ` +
  `[ $((i % 5)) -eq 0 ] && usleep 50000; i=$((i+1)); done`;

describe("docker logging drivers against shoald", () => {
  it("json-file with max-size=10k max-file=2 keeps at most 2 files of 10k and logs shows the latest lines", async () => {
    const run = await dk([
      "run",
      "-d",
      "--name",
      "rotating",
      "--log-opt",
      "max-size=10k",
      "--log-opt",
      "max-file=2",
      "busybox",
      "sh",
      "-c",
      printer(1500),
    ]);
    expect(run.stderr).toBe("");
    const id = run.stdout.trim();
    try {
      let most = 0;
      // Watch the folder while the output is written: never more than two files.
      for (;;) {
        const files = await logFilesOf(id);
        most = Math.max(most, files.length);
        // max-file, plus the one conmon may start for a moment when shoald re-arms late (docs/engine-logs.md).
        expect(files.length).toBeLessThanOrEqual(3);
        for (const size of files) expect(size).toBeLessThanOrEqual(10 * 1024);
        const state = await dk(["inspect", "-f", "{{.State.Status}}", id]);
        if (state.stdout.trim() !== "running") break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const files = await logFilesOf(id);
      expect(files.length).toBe(2);
      expect(most).toBeGreaterThanOrEqual(2);
      for (const size of files) expect(size).toBeLessThanOrEqual(10 * 1024);
      // 1500 lines are ~140k: the log holds only the last ~20k of them, the newest at the end.
      const logs = await dk(["logs", id]);
      expect(logs.code).toBe(0);
      const lines = logs.stdout.trimEnd().split("\n");
      expect(lines[lines.length - 1]).toBe(LINE(1499));
      // Every line both files hold, and nothing else (a file holds ~80 of these records).
      expect(lines.length).toBe(await recordsIn(id));
      expect(lines.length).toBeGreaterThan(80);
      expect(lines.length).toBeLessThan(170);
      // The kept lines follow each other: the older file is read first, then the current one.
      const first = Number(lines[0].slice(5, 10));
      expect(lines).toEqual(Array.from({ length: lines.length }, (_, k) => LINE(first + k)));
      // --tail counts across the two files.
      const tail = await dk(["logs", "--tail", "150", id]);
      expect(tail.stdout.trimEnd().split("\n")).toEqual(lines.slice(-150));
      const inspect = await dk([
        "inspect",
        "-f",
        '{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config "max-size"}}',
        id,
      ]);
      expect(inspect.stdout.trim()).toBe("json-file 10k");
    } finally {
      await dk(["rm", "-f", id]);
    }
  });

  it("logs -f follows the output across file switches", async () => {
    const run = await dk([
      "run",
      "-d",
      "--log-driver",
      "local",
      "--log-opt",
      "max-size=8k",
      "--log-opt",
      "max-file=3",
      "busybox",
      "sh",
      "-c",
      `sleep 1; ${printer(600)}`,
    ]);
    expect(run.stderr).toBe("");
    const id = run.stdout.trim();
    try {
      const follow = await dk(["logs", "-f", id]);
      expect(follow.code).toBe(0);
      // Started before the output: every line comes through, though the files were pruned.
      expect(follow.stdout.trimEnd().split("\n")).toEqual(Array.from({ length: 600 }, (_, k) => LINE(k)));
      expect((await logFilesOf(id)).length).toBeLessThanOrEqual(3);
    } finally {
      await dk(["rm", "-f", id]);
    }
  });

  it("rotation goes on across a daemon restart: conmon keeps the size, shoald prunes again", async () => {
    const run = await dk([
      "run",
      "-d",
      "--log-opt",
      "max-size=6k",
      "--log-opt",
      "max-file=2",
      "busybox",
      "sh",
      "-c",
      // Waits for a file the test writes, so the daemon is back before the last lines.
      `${printer(300)}; while [ ! -e /tmp/go ]; do usleep 50000; done; echo last-line`,
    ]);
    expect(run.stderr).toBe("");
    const id = run.stdout.trim();
    try {
      await d.stop();
      // conmon goes on writing and switching files while shoald is away.
      await new Promise((r) => setTimeout(r, 1500));
      await d.restart();
      const exec = join(d.dataRoot, "containers", id, "rootfs", "tmp", "go");
      await writeFile(exec, "");
      expect((await dk(["wait", id])).stdout.trim()).toBe("0");
      const deadline = Date.now() + 10_000;
      while ((await logFilesOf(id)).length > 2 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const files = await logFilesOf(id);
      expect(files.length).toBeLessThanOrEqual(2);
      for (const size of files) expect(size).toBeLessThanOrEqual(6 * 1024);
      const lines = (await dk(["logs", id])).stdout.trimEnd().split("\n");
      expect(lines[lines.length - 1]).toBe("last-line");
      expect(lines[lines.length - 2]).toBe(LINE(299));
    } finally {
      await dk(["rm", "-f", id]);
    }
  });

  it("max-file=1 truncates at max-size: one file, the latest lines", async () => {
    const run = await dk([
      "run",
      "--name",
      "trunc",
      "--log-opt",
      "max-size=4k",
      "busybox",
      "sh",
      "-c",
      printer(300),
    ]);
    expect(run.code).toBe(0);
    try {
      const files = await logFilesOf((await dk(["inspect", "-f", "{{.Id}}", "trunc"])).stdout.trim());
      expect(files.length).toBe(1);
      const logs = (await dk(["logs", "trunc"])).stdout.trimEnd().split("\n");
      expect(logs[logs.length - 1]).toBe(LINE(299));
      expect(logs.length).toBeLessThanOrEqual(45);
    } finally {
      await dk(["rm", "-f", "trunc"]);
    }
  });

  it("--log-driver none keeps no log and logs answers Docker's error", async () => {
    const run = await dk([
      "run",
      "-d",
      "--name",
      "quiet",
      "--log-driver",
      "none",
      "busybox",
      "sh",
      "-c",
      printer(50),
    ]);
    expect(run.stderr).toBe("");
    const id = run.stdout.trim();
    try {
      await dk(["wait", id]);
      const dir = join(d.dataRoot, "containers", id);
      const names = await readdir(dir);
      expect(names.filter((n) => n.startsWith("container.log") || n === "logs")).toEqual([]);
      const logs = await dk(["logs", id]);
      expect(logs.code).not.toBe(0);
      expect(logs.stderr).toMatch(/configured logging driver does not support reading/);
    } finally {
      await dk(["rm", "-f", id]);
    }
  });

  it("--log-driver none still shows an attached run's output, as Docker does", async () => {
    const run = await dk([
      "run",
      "--rm",
      "--log-driver",
      "none",
      "busybox",
      "sh",
      "-c",
      "echo seen-out; echo seen-err >&2; exit 4",
    ]);
    expect(run.stdout).toBe("seen-out\n");
    expect(run.stderr).toBe("seen-err\n");
    expect(run.code).toBe(4);
  });

  it("refuses other drivers and options with a 400 naming them", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--log-driver", "syslog"], /--log-driver syslog is not supported/],
      [["--log-driver", "journald"], /--log-driver journald is not supported/],
      [["--log-opt", "tag=web"], /--log-opt tag is not supported/],
      [
        ["--log-opt", "max-size=1m", "--log-opt", "max-file=3", "--log-opt", "compress=true"],
        /compress=true is not supported/,
      ],
      [["--log-opt", "max-size=lots"], /invalid --log-opt max-size=lots/],
      [["--log-opt", "max-file=3"], /max-file=3 needs --log-opt max-size/],
    ];
    for (const [flags, message] of cases) {
      const r = await dk(["create", "--name", "refused", ...flags, "busybox", "true"]);
      expect(r.code, flags.join(" ")).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/Error response from daemon/);
    }
    const ps = await dk(["ps", "-a", "--filter", "name=refused", "-q"]);
    expect(ps.stdout).toBe("");
  });
});
