// --pid container:<x> and --ipc container:<x>: the other container is named at create (stored
// by id, so a rename does not break it) and joined at each start through /proc/<pid>/ns/*,
// since its pid changes per run. An IPC join also shares the other's /dev/shm, which holds
// POSIX shared memory, as dockerd does by bind-mounting the donor's shm folder.
import { readFile, writeFile } from "node:fs/promises";
import { conflict, invalid } from "../../../shared/errors.js";
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

/** At start: write the donors' namespace paths (and the IPC donor's /dev/shm) into the spec. */
export async function joinNamespaces(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  const joins: Array<{ ns: NamespaceType; pid: number }> = [];
  for (const k of KINDS) {
    const id = target(rec.HostConfig[k.field]);
    if (id !== undefined) joins.push({ ns: k.ns, pid: donor(ctx, id, k.flag, k.what).State.Pid });
  }
  if (joins.length === 0) return;
  const p = containerPaths(ctx, rec.Id);
  const spec = JSON.parse(await readFile(p.spec, "utf8")) as Spec;
  for (const j of joins) {
    spec.linux.namespaces = [
      ...spec.linux.namespaces.filter((n) => n.type !== j.ns),
      { type: j.ns, path: `/proc/${j.pid}/ns/${j.ns}` },
    ];
    if (j.ns !== "ipc") continue;
    const shm: Mount = {
      destination: "/dev/shm",
      type: "bind",
      source: `/proc/${j.pid}/root/dev/shm`,
      options: ["rbind", "rprivate", "nosuid", "nodev"],
    };
    const at = spec.mounts.findIndex((m) => m.destination === "/dev/shm");
    if (at >= 0) spec.mounts[at] = shm;
    else spec.mounts.push(shm);
  }
  await writeFile(p.spec, JSON.stringify(spec, null, 1));
}
