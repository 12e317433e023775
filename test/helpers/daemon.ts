// Starts a real shoald (the built one in dist/) with its own folders, socket and cgroup parent,
// and takes everything it made away again, also when a test failed halfway.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, rmdir, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

const run = promisify(execFile);
export const repoRoot = resolve(import.meta.dirname, "../..");
export const shoaldPath = join(repoRoot, "dist/daemon/main.js");
export const shoalPath = join(repoRoot, "dist/cli/main.js");

export interface TestDaemon {
  root: string;
  /** The daemon's own network namespace (/run/netns/<netns>): its bridges, veths and nftables live there. */
  netns: string;
  dataRoot: string;
  execRoot: string;
  socket: string;
  cgroupParent: string;
  /** The daemon's --certs-dir: a registry's CA goes to <certsDir>/<host:port>/ca.crt. */
  certsDir: string;
  process: ChildProcess;
  logs: () => string;
  /** Stop the daemon with SIGTERM (containers keep running). */
  stop: (signal?: NodeJS.Signals) => Promise<void>;
  /** Start a new daemon process on the same folders. */
  restart: () => Promise<void>;
  /** Stop the daemon, remove every container, mount, cgroup and folder it made. */
  destroy: () => Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: <T = unknown>() => T;
}

export function api(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  return new Promise((resolveP, reject) => {
    const payload =
      body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        headers: {
          ...(payload
            ? { "Content-Type": Buffer.isBuffer(body) ? "application/x-tar" : "application/json" }
            : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const buf = Buffer.concat(chunks);
          resolveP({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: buf,
            json: <T>() => JSON.parse(buf.toString()) as T,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

async function waitForSocket(socket: string, child: ChildProcess, logs: () => string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`shoald exited with ${child.exitCode}:\n${logs()}`);
    try {
      const r = await api(socket, "GET", "/_ping");
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`shoald did not answer on ${socket} within 20 s:\n${logs()}`);
}

export interface StartDaemonOptions {
  /** More shoald flags (e.g. --insecure-registry). */
  args?: string[];
}

export async function startDaemon(options: StartDaemonOptions = {}): Promise<TestDaemon> {
  const root = await mkdtemp("/tmp/shoal-test-");
  const tag = root
    .slice(-6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "x");
  const netns = `shoal-t-${tag}`;
  const d = {
    netns,
    root,
    dataRoot: join(root, "data"),
    execRoot: join(root, "run"),
    socket: join(root, "shoal.sock"),
    cgroupParent: `shoal-test-${tag}`,
    // Its own certs dir, so /etc/shoal/certs.d on the machine cannot leak in.
    certsDir: join(root, "certs.d"),
  };
  // An empty config file of its own, so a /etc/shoal/daemon.json on the machine cannot leak in.
  const configFile = join(root, "daemon.json");
  await writeFile(configFile, "{}\n");
  // The host's resolvers are outside the lab; forwarded names go to 127.0.0.1 in the daemon's
  // namespace, where a test that needs external names runs its own upstream.
  const resolvConf = join(root, "host-resolv.conf");
  await writeFile(resolvConf, "nameserver 127.0.0.1\nsearch lab.test\n");
  await makeNetns(netns);
  let output = "";
  let child: ChildProcess;
  const launch = async () => {
    child = spawn(
      "nsenter",
      [
        `--net=/run/netns/${netns}`,
        process.execPath,
        shoaldPath,
        "--data-root",
        d.dataRoot,
        "--exec-root",
        d.execRoot,
        "-H",
        `unix://${d.socket}`,
        "--cgroup-parent",
        d.cgroupParent,
        "--config-file",
        configFile,
        "--log-level",
        "debug",
        "--resolv-conf",
        resolvConf,
        "--certs-dir",
        d.certsDir,
        ...(options.args ?? []),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
    await waitForSocket(d.socket, child, () => output);
  };
  try {
    await launch();
  } catch (e) {
    await cleanupEngineState(d.dataRoot, d.execRoot, d.cgroupParent);
    await deleteNetns(netns);
    await rm(root, { recursive: true, force: true });
    throw e;
  }
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(signal);
    await exited;
  };
  const daemon: TestDaemon = {
    ...d,
    get process() {
      return child;
    },
    logs: () => output,
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    destroy: async () => {
      await stop("SIGKILL").catch(() => undefined);
      await cleanupEngineState(d.dataRoot, d.execRoot, d.cgroupParent);
      await deleteNetns(netns);
      await rm(root, { recursive: true, force: true });
    },
  };
  return daemon;
}

/** A fresh network namespace with its loopback up. */
export async function makeNetns(name: string): Promise<void> {
  await run("ip", ["netns", "add", name]);
  await run("ip", ["-n", name, "link", "set", "lo", "up"]);
}

/** Deleting the namespace takes every link, address and nftables table in it along. */
export async function deleteNetns(name: string): Promise<void> {
  await run("ip", ["netns", "del", name]).catch(() => undefined);
}

/** Run a command in a daemon's (or any test) network namespace, without changing mount namespace. */
export function inNetns(
  netns: string,
  cmd: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ stdout: string; stderr: string; code: number }> {
  return inNetnsAt(`/run/netns/${netns}`, cmd, args, timeoutMs);
}

/** The same for a namespace by path (a container's: /proc/<pid>/ns/net). */
export async function inNetnsAt(
  path: string,
  cmd: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run("nsenter", [`--net=${path}`, cmd, ...args], { timeout: timeoutMs });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; code?: number };
    return {
      stdout: err.stdout ?? "",
      stderr: err.stderr ?? "",
      code: typeof err.code === "number" ? err.code : 1,
    };
  }
}

/**
 * Run a node fixture (test/fixtures/*.mjs) in a network namespace with one JSON object on its
 * stdin; resolves with the JSON it printed.
 */
export function runFixtureIn<T>(netns: string, fixture: string, input: object): Promise<T> {
  return new Promise((resolveP, reject) => {
    const child = spawn("nsenter", [`--net=/run/netns/${netns}`, process.execPath, fixture], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (err += c.toString()));
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0
        ? resolveP(JSON.parse(out) as T)
        : reject(new Error(`${fixture} in ${netns} exited ${code}: ${err}`)),
    );
    child.stdin?.end(JSON.stringify(input));
  });
}

/** Remove what a daemon (or a test that crashed) left: runc containers, conmon, mounts, cgroups. */
export async function cleanupEngineState(
  dataRoot: string,
  execRoot: string,
  cgroupParent: string,
): Promise<void> {
  const runtimeRoot = join(execRoot, "runtime");
  const list = await run("runc", ["--root", runtimeRoot, "list", "-q"]).catch(() => ({ stdout: "" }));
  for (const id of list.stdout.split("\n").filter(Boolean)) {
    await run("runc", ["--root", runtimeRoot, "delete", "-f", id]).catch(() => undefined);
  }
  // conmon processes whose command line names this daemon's folders
  const procs = await readdir("/proc").catch(() => [] as string[]);
  for (const pid of procs.filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmd.startsWith("/usr/bin/conmon") || cmd.includes("conmon\0")) {
      if (cmd.includes(execRoot) || cmd.includes(dataRoot)) process.kill(Number(pid), "SIGKILL");
    }
  }
  const mounts = await readFile("/proc/mounts", "utf8");
  const targets = mounts
    .split("\n")
    .map((l) => l.split(" ")[1])
    .filter((t): t is string => !!t && (t.startsWith(dataRoot) || t.startsWith(execRoot)))
    .sort((a, b) => b.length - a.length);
  for (const t of targets) await run("umount", ["-l", t]).catch(() => undefined);
  await removeCgroups(cgroupParent);
}

async function removeCgroupTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  for (let i = 0; i < 20; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      await sleep(50);
    }
  }
}

export async function removeCgroups(parent: string): Promise<void> {
  const hierarchies = await readdir("/sys/fs/cgroup").catch(() => [] as string[]);
  const candidates = [
    join("/sys/fs/cgroup", parent),
    ...hierarchies.map((h) => join("/sys/fs/cgroup", h, parent)),
  ];
  // memory is nested under this process's own cgroup on some machines
  const self = await readFile("/proc/self/cgroup", "utf8").catch(() => "");
  for (const line of self.split("\n")) {
    const [, ctrls, path] = line.split(":");
    if (!path || path === "/" || !ctrls) continue;
    for (const c of ctrls.split(",")) candidates.push(join("/sys/fs/cgroup", c, path, parent));
  }
  for (const c of candidates) await removeCgroupTree(c);
}

/** Cgroup folders named after the parent that still exist, anywhere under /sys/fs/cgroup. */
export async function leftoverCgroups(parent: string): Promise<string[]> {
  const { stdout } = await run("find", [
    "/sys/fs/cgroup",
    "-maxdepth",
    "4",
    "-type",
    "d",
    "-name",
    parent,
  ]).catch(() => ({ stdout: "" }));
  return stdout.split("\n").filter(Boolean);
}
