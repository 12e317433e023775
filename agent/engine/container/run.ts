import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { conflict, errnoCode, messageOf, notFound } from "../../../shared/errors.js";
import { containerModeTarget } from "../network/endpoints.js";
import { writeInPlace } from "../dns/etc-files.js";
import type { Spec } from "../runtime/oci-types.js";
import { isUp } from "./filters.js";
import { cgroupSawOomKill, removeCgroupDirs } from "../runtime/cgroup-cleanup.js";
import { conmonCreate, conmonPidFile } from "../runtime/conmon.js";
import { readPidFile } from "../runtime/pid-file.js";
import { resizeTerminal } from "../runtime/attach-socket.js";
import { logPolicy } from "../runtime/log-config.js";
import { prepareRotatedLog, unwatchRotatedLog, watchRotatedLog } from "../runtime/log-files.js";
import { isMounted } from "../snapshot/rootfs.js";
import { containerPaths, type EngineContext } from "./context.js";
import { mountContainerRootfs } from "./create.js";
import { joinNamespaces, releaseShm } from "./namespace-join.js";
import { applyLinks } from "./links.js";
import type { ContainerRecord } from "./types.js";
import { pathExists } from "../../../shared/fsutil.js";
import { stdioGone, stdioReady } from "./attach.js";

// One run of a container: from conmon + `runtime create` + `runtime start` to the cleanup after it
// exited. The engine decides when; this file knows how.

/** Whether a process still runs; a zombie (dead, not yet reaped by a slow init) counts as gone. */
export async function pidAlive(pid: number): Promise<boolean> {
  if (pid <= 0) return false;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return errnoCode(err) === "EPERM";
    }
  }
}

/** The exit code conmon recorded, or undefined when there is no (complete) exit file yet. */
export async function readExitCode(ctx: EngineContext, id: string): Promise<number | undefined> {
  try {
    const text = (await readFile(containerPaths(ctx, id).exitFile, "utf8")).trim();
    if (!/^-?\d+$/.test(text)) return undefined;
    const code = Number(text);
    // conmon writes -1 when it could not tell; Docker shows unknown exits as 255.
    return code < 0 ? 255 : code;
  } catch {
    return undefined;
  }
}

export function readConmonPid(ctx: EngineContext, id: string): Promise<number> {
  return readPidFile(conmonPidFile(containerPaths(ctx, id).run));
}

/** Whether the last run ended by the kernel's OOM killer: conmon's marker, else the cgroup's counter. */
export async function wasOomKilled(ctx: EngineContext, id: string): Promise<boolean> {
  const p = containerPaths(ctx, id);
  if (await pathExists(join(p.run, "oom"))) return true;
  return cgroupSawOomKill(p.cgroupsPath);
}

/** Wait for a process to go away (conmon writing its last file), up to a limit. */
async function waitPidGone(pid: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await pidAlive(pid)) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

/**
 * Remove what a run leaves: the runtime's state (killing what is left), the network namespace,
 * cgroup folders, conmon's files. Each step is tried even if an earlier one failed.
 */
export async function cleanupRun(ctx: EngineContext, id: string): Promise<void> {
  const p = containerPaths(ctx, id);
  const rec = ctx.store.find(id);
  unwatchRotatedLog(id);
  stdioGone(ctx, id);
  const steps: Array<[string, () => Promise<void>]> = [
    ["network release", async () => (rec && rec.Id === id ? ctx.network.release(rec) : undefined)],
    ["runtime delete", () => ctx.runtime.delete(id, true)],
    ["cgroup", () => removeCgroupDirs(p.cgroupsPath)],
    ["shm", () => releaseShm(ctx, id)],
    ["exit file", () => rm(p.exitFile, { force: true })],
    ["conmon files", () => rm(p.run, { recursive: true, force: true })],
    ["attach link", () => rm(join(p.socketDir, p.attachName), { force: true })],
  ];
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (e) {
      ctx.log.warn({ id, err: messageOf(e) }, `cleanup after container run: ${what} failed`);
    }
  }
}

/**
 * The network side of a start. `container:<id>` joins that container's namespace (written into
 * the spec now, since its pid changes per run) and shares its /etc files; every other mode
 * gets its addresses, ports and files from the host's networks (network/host-networks.ts).
 */
async function prepareNetwork(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  const p = containerPaths(ctx, rec.Id);
  const target = containerModeTarget(rec.HostConfig.NetworkMode);
  if (target === undefined) {
    await ctx.network.prepare(rec, p.etc);
    return;
  }
  const other = ctx.store.find(target);
  if (!other || other.Id !== target)
    throw notFound(
      `cannot join the network of container ${target}: it no longer exists; recreate this container`,
    );
  if (!isUp(other) || other.State.Pid <= 0)
    throw conflict(`cannot join the network of container ${other.Name}: it is not running; start it first`);
  const spec = JSON.parse(await readFile(p.spec, "utf8")) as Spec;
  const netns = `/proc/${other.State.Pid}/ns/net`;
  spec.linux.namespaces = [
    ...spec.linux.namespaces.filter((n) => n.type !== "network"),
    { type: "network", path: netns },
  ];
  await writeFile(p.spec, JSON.stringify(spec, null, 1));
  const from = containerPaths(ctx, other.Id).etc;
  for (const key of ["hosts", "resolvConf", "hostname"] as const)
    await writeInPlace(p.etc[key], await readFile(from[key], "utf8").catch(() => ""));
}

/** Keep a running container's rotated log within max-file (log-files.ts); a no-op otherwise. */
export function watchLogRotation(ctx: EngineContext, rec: ContainerRecord): void {
  const policy = logPolicy(rec.HostConfig.LogConfig);
  watchRotatedLog(rec.Id, containerPaths(ctx, rec.Id).log, policy, (e) =>
    ctx.log.warn({ id: rec.Id, err: messageOf(e) }, "rotating a container log failed"),
  );
}

/** conmon's files in the bundle from an earlier run; it refuses to start when they exist. */
async function clearBundleLeftovers(bundle: string): Promise<void> {
  await Promise.all(["attach", "ctl", "winsz"].map((f) => rm(join(bundle, f), { force: true })));
}

/**
 * Start one run: make sure the root filesystem is mounted (a reboot unmounts it), let conmon run
 * `runtime create`, then `runtime start`. The runtime makes the container's network namespace
 * and brings its loopback up (runc does for a new namespace); networks will be wired into it
 * between create and start, while the container's init still waits. On failure
 * everything of the run is cleaned up and the error (with the runtime's message) is thrown.
 */
export async function startRun(
  ctx: EngineContext,
  rec: ContainerRecord,
): Promise<{ pid: number; conmonPid: number }> {
  const id = rec.Id;
  const p = containerPaths(ctx, id);
  await cleanupRun(ctx, id);
  let conmonPid = 0;
  try {
    if (!(await isMounted(p.rootfs))) await mountContainerRootfs(ctx, id, ctx.images.resolve(rec.ImageId));
    await clearBundleLeftovers(p.bundle);
    await mkdir(p.run, { recursive: true, mode: 0o700 });
    await mkdir(p.socketDir, { recursive: true, mode: 0o700 });
    await mkdir(ctx.paths.exitsDir, { recursive: true, mode: 0o700 });
    await mkdir(ctx.paths.runtimeRoot, { recursive: true, mode: 0o700 });
    await applyLinks(ctx, rec);
    await prepareNetwork(ctx, rec);
    await joinNamespaces(ctx, rec);
    const logs = logPolicy(rec.HostConfig.LogConfig);
    if (logs.kind === "file") await prepareRotatedLog(p.log, logs);
    // Saved before wiring: a daemon that dies now still knows which addresses and ports are held.
    await ctx.store.save(rec);
    const started = await conmonCreate({
      conmonPath: ctx.config.conmonPath,
      runtimePath: ctx.config.runtimePath,
      runtimeRoot: ctx.paths.runtimeRoot,
      id,
      name: rec.Name,
      bundlePath: p.bundle,
      logPath: logs.kind === "file" ? p.log : undefined,
      logSizeMax: logs.maxSize,
      exitDir: ctx.paths.exitsDir,
      runDir: p.run,
      socketDir: p.socketDir,
      attachName: p.attachName,
      tty: rec.Config.Tty,
      stdin: rec.Config.OpenStdin,
      stdinOnce: rec.Config.StdinOnce === true,
    });
    conmonPid = started.conmonPid;
    watchLogRotation(ctx, rec);
    await ctx.network.wire(rec, started.pid);
    // Attaches made before the start (docker run, start -a) connect now, before any output.
    await stdioReady(ctx, id);
    // The terminal starts at the client's size (HostConfig.ConsoleSize), as dockerd sizes it.
    const size = rec.HostConfig.ConsoleSize;
    if (rec.Config.Tty && size)
      await resizeTerminal(p.bundle, size[0], size[1]).catch((e: unknown) =>
        ctx.log.warn({ id, err: messageOf(e) }, "setting the terminal's first size failed"),
      );
    await ctx.runtime.start(id);
    return started;
  } catch (e) {
    if (conmonPid === 0) conmonPid = await readConmonPid(ctx, id);
    await ctx.runtime.delete(id, true).catch(() => undefined);
    // conmon writes its exit file as it goes; wait so a late file cannot end the next run.
    if (conmonPid > 0) await waitPidGone(conmonPid, 5000);
    await cleanupRun(ctx, id);
    throw e;
  }
}
