// What the benchmarks share: a shoald in a network namespace of its own, requests on its
// socket, medians, and the clean-up of what its containers left.
import { spawn, execFile } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { request } from "node:http";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

export const run = promisify(execFile);
export const repo = resolve(import.meta.dirname, "..");

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** An Engine API request on a unix socket; a Buffer body goes as a tar, anything else as JSON. */
export function unixRequest(sock, method, path, body) {
  return new Promise((ok, fail) => {
    const payload =
      body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        socketPath: sock,
        method,
        path,
        headers: payload
          ? {
              "Content-Type": Buffer.isBuffer(body) ? "application/x-tar" : "application/json",
              "Content-Length": payload.length,
            }
          : {},
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => ok({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", fail);
    if (payload) req.write(payload);
    req.end();
  });
}

/** A fresh network namespace with its loopback up. */
export async function makeNetns(name) {
  await run("ip", ["netns", "add", name]);
  try {
    await run("ip", ["-n", name, "link", "set", "lo", "up"]);
  } catch (e) {
    await run("ip", ["netns", "del", name]).catch(() => {});
    throw e;
  }
}

/**
 * Start the built shoald inside `netns` (nsenter --net only, so it shares the machine's mounts)
 * on `dir`'s data and exec roots; resolves with the process once its socket answers.
 */
export async function startShoald({ netns, dir, sock, cgroupParent, configFile, resolvConf, args = [] }) {
  const child = spawn(
    "nsenter",
    [
      `--net=/run/netns/${netns}`,
      process.execPath,
      join(repo, "dist/daemon/main.js"),
      "--data-root",
      join(dir, "data"),
      "--exec-root",
      join(dir, "run"),
      "-H",
      `unix://${sock}`,
      "--cgroup-parent",
      cgroupParent,
      "--config-file",
      configFile,
      "--log-level",
      "warn",
      "--resolv-conf",
      resolvConf,
      ...args,
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  child.once("error", (e) => console.error(`cannot start shoald: ${e.message}`));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error("shoald exited at start");
    try {
      if ((await unixRequest(sock, "GET", "/_ping")).status === 200) return child;
    } catch {
      // not listening yet
    }
    if (i > 200) {
      child.kill("SIGKILL");
      throw new Error("shoald did not start");
    }
    await sleep(50);
  }
}

/** Stop a child process and wait for it; one already gone is fine. */
export async function stopProcess(child, signal = "SIGTERM") {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  await exited;
}

/** Unmount whatever is still mounted under `root` and remove the cgroup parent everywhere. */
export async function cleanupUnder(root, cgroupParent) {
  const mounts = (await readFile("/proc/mounts", "utf8"))
    .split("\n")
    .map((l) => l.split(" ")[1])
    .filter((m) => m && m.startsWith(root));
  for (const m of mounts.reverse()) await run("umount", ["-l", m]).catch(() => {});
  for (const h of await readdir("/sys/fs/cgroup").catch(() => [])) {
    await run("find", [
      join("/sys/fs/cgroup", h, cgroupParent),
      "-depth",
      "-type",
      "d",
      "-exec",
      "rmdir",
      "{}",
      ";",
    ]).catch(() => {});
  }
}
