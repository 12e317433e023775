// --pid container:<x> and --ipc container:<x>: the other container is named at create (stored
// by id, so a rename does not break it) and joined at each start through /proc/<pid>/ns/*,
// since its pid changes per run. An IPC join also shares the other's /dev/shm, which holds
// POSIX shared memory. As in dockerd, a shareable container's /dev/shm is a tmpfs the daemon
// mounts on the host (<container>/shm) and binds in, so a joiner can bind the same one: a
// mount made by runc inside the donor's mount namespace cannot be bind-mounted from outside.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { conflict, invalid } from "../../../shared/errors.js";
import { runCommand } from "../runtime/command.js";
import { DEFAULT_SHM_SIZE } from "../runtime/spec-mounts.js";
import { isMounted, unmountRootfs } from "../snapshot/rootfs.js";
import type { HostConfig } from "../../../shared/engine-api.js";
import type { Mount, NamespaceType, Spec } from "../runtime/oci-types.js";
import { containerPaths, type EngineContext } from "./context.js";
import { isUp } from "./filters.js";
import type { ContainerRecord } from "./types.js";

const target = (mode: string | undefined): string | undefined =>
  mode?.startsWith("container:") ? mode.slice("container:".length) : undefined;

const KINDS = [
  { field: "PidMode", flag: "--pid", ns: "pid", what: "PID" },
  { field: "IpcMode", flag: "--ipc", ns: "ipc", what: "IPC" },
] as const;

/** At create: container:<name> → container:<id>; a container that does not exist is a 400, as in dockerd. */
export function resolveNamespaceTargets(ctx: EngineContext, hc: HostConfig): void {
  for (const k of KINDS) {
    const ref = target(hc[k.field]);
    if (ref === undefined) continue;
    const other = ctx.store.find(ref);
    if (!other)
      throw invalid(
        `${k.flag} container:${ref}: No such container: ${ref}; start that container first or fix the name`,
      );
    if (k.ns === "ipc" && !["shareable", "host"].includes(other.HostConfig.IpcMode ?? ""))
      throw invalid(
        `${k.flag} container:${ref}: container ${other.Name}: non-shareable IPC (hint: use IpcMode:shareable for the donor container, --ipc shareable)`,
      );
    hc[k.field] = `container:${other.Id}`;
  }
}

function donor(ctx: EngineContext, id: string, flag: string, what: string): ContainerRecord {
  const other = ctx.store.find(id);
  if (!other || other.Id !== id)
    throw invalid(`${flag} container:${id}: No such container: ${id}; recreate this container`);
  if (!isUp(other) || other.State.Pid <= 0)
    throw conflict(`cannot join ${what} of a non running container: ${other.Name}; start it first`);
  return other;
}

/** The host-side /dev/shm of a shareable container. */
const shmDir = (ctx: EngineContext, id: string): string => join(containerPaths(ctx, id).dir, "shm");

/** A shareable container's /dev/shm: a tmpfs of --shm-size mounted on the host for this run. */
async function mountShm(ctx: EngineContext, rec: ContainerRecord): Promise<string> {
  const dir = shmDir(ctx, rec.Id);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  if (await isMounted(dir)) return dir;
  const size =
    rec.HostConfig.ShmSize !== undefined && rec.HostConfig.ShmSize > 0
      ? rec.HostConfig.ShmSize
      : DEFAULT_SHM_SIZE;
  await runCommand("mount", ["-t", "tmpfs", "-o", `nosuid,nodev,noexec,mode=1777,size=${size}`, "shm", dir]);
  return dir;
}

/** At the end of a run (cleanupRun): the host-side /dev/shm goes, if there is one. */
export async function releaseShm(ctx: EngineContext, id: string): Promise<void> {
  const dir = shmDir(ctx, id);
  if (await isMounted(dir)) await unmountRootfs(dir);
}

const bindShm = (source: string): Mount => ({
  destination: "/dev/shm",
  type: "bind",
  source,
  options: ["rbind", "rprivate", "nosuid", "nodev", "noexec"],
});

/**
 * At start: write the donors' namespace paths into the spec, and bind /dev/shm from the host:
 * the container's own for a shareable one, the donor's for a joiner.
 */
export async function joinNamespaces(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  const joins: Array<{ ns: NamespaceType; pid: number; donor: ContainerRecord }> = [];
  for (const k of KINDS) {
    const id = target(rec.HostConfig[k.field]);
    if (id === undefined) continue;
    const other = donor(ctx, id, k.flag, k.what);
    joins.push({ ns: k.ns, pid: other.State.Pid, donor: other });
  }
  const shareable = rec.HostConfig.IpcMode === "shareable";
  if (joins.length === 0 && !shareable) return;
  const p = containerPaths(ctx, rec.Id);
  const spec = JSON.parse(await readFile(p.spec, "utf8")) as Spec;
  let shm: Mount | undefined = shareable ? bindShm(await mountShm(ctx, rec)) : undefined;
  for (const j of joins) {
    spec.linux.namespaces = [
      ...spec.linux.namespaces.filter((n) => n.type !== j.ns),
      { type: j.ns, path: `/proc/${j.pid}/ns/${j.ns}` },
    ];
    if (j.ns !== "ipc") continue;
    // A donor in the host's IPC namespace has the host's /dev/shm.
    const dir = j.donor.HostConfig.IpcMode === "host" ? "/dev/shm" : shmDir(ctx, j.donor.Id);
    if (dir !== "/dev/shm" && !(await isMounted(dir)))
      throw conflict(`cannot join IPC of container ${j.donor.Name}: its /dev/shm is gone; restart it first`);
    shm = bindShm(dir);
  }
  if (shm) {
    const at = spec.mounts.findIndex((m) => m.destination === "/dev/shm");
    if (at >= 0) spec.mounts[at] = shm;
    else spec.mounts.push(shm);
  }
  await writeFile(p.spec, JSON.stringify(spec, null, 1));
}
