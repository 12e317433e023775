// --volumes-from <container>[:ro|:rw]: the other container's volumes and bind mounts, at the
// same paths, as dockerd's registerMountPoints does: they come first, a -v or --mount of this
// container at the same path wins, and they replace the image's anonymous volumes there. The
// mode given replaces the other's read-write flag; without one it is kept.
import { invalid } from "../../../shared/errors.js";
import type { EngineContext } from "./context.js";
import type { PlannedMount } from "./mounts.js";

function parseSpec(spec: string): { ref: string; rw?: boolean } {
  const at = spec.lastIndexOf(":");
  if (at <= 0) return { ref: spec };
  const mode = spec.slice(at + 1);
  if (mode !== "ro" && mode !== "rw")
    throw invalid(
      `invalid --volumes-from ${spec}: invalid mode: ${mode} (use ${spec.slice(0, at)}:ro or :rw)`,
    );
  return { ref: spec.slice(0, at), rw: mode === "rw" };
}

/** The mounts --volumes-from asks for; a container that does not exist is a 400. */
export function volumesFromMounts(ctx: EngineContext, specs: string[] | null | undefined): PlannedMount[] {
  const out = new Map<string, PlannedMount>();
  for (const spec of specs ?? []) {
    if (typeof spec !== "string" || spec === "")
      throw invalid("invalid --volumes-from: name a container (--volumes-from NAME[:ro|:rw])");
    const { ref, rw } = parseSpec(spec);
    // A 400, not a 404: the docker CLI answers a 404 at create by pulling the image again.
    const other = ctx.store.find(ref);
    if (!other)
      throw invalid(`--volumes-from ${spec}: No such container: ${ref}; name an existing container`);
    for (const m of other.Mounts ?? []) {
      // tmpfs mounts belong to the other container's run; dockerd does not share them either.
      if (m.Type === "tmpfs") continue;
      const writable = rw ?? m.RW;
      out.set(m.Destination, {
        Type: m.Type,
        Source: m.Type === "volume" ? (m.Name ?? "") : m.Source,
        Destination: m.Destination,
        RW: writable,
        Mode: rw === undefined ? m.Mode : writable ? "rw" : "ro",
        Propagation: m.Propagation,
        CopyData: false,
        CreateSource: false,
        ...(m.Driver ? { Driver: m.Driver } : {}),
      });
    }
  }
  return [...out.values()];
}

/** Merge: this container's own mounts win; its anonymous (image) volumes give way. */
export function withVolumesFrom(own: PlannedMount[], from: PlannedMount[]): PlannedMount[] {
  if (from.length === 0) return own;
  const fromPaths = new Set(from.map((m) => m.Destination));
  const kept = own.filter((m) => !(m.Type === "volume" && m.Source === "" && fromPaths.has(m.Destination)));
  const ownPaths = new Set(kept.map((m) => m.Destination));
  return [...kept, ...from.filter((m) => !ownPaths.has(m.Destination))].sort((a, b) =>
    a.Destination < b.Destination ? -1 : a.Destination > b.Destination ? 1 : 0,
  );
}
