// GET /containers/{id}/top: the host's `ps` with the user's options, keeping the rows whose PID
// is in the container's cgroup (cgroup.procs of its folder and every folder below), as dockerd.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { conflict, invalid } from "../../../shared/errors.js";
import { cgroupDirs } from "../runtime/cgroup-dirs.js";
import { CommandError, runCommand } from "../runtime/command.js";
import { readSmall } from "../runtime/read-small.js";
import { containerPaths, type EngineContext } from "./context.js";
import type { ContainerRecord } from "./types.js";

export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/** Bounds the walk of a container's cgroup folders (a container with more is unusual). */
const MAX_CGROUP_DIRS = 1000;

/** Every pid in a cgroup folder and below. */
export async function cgroupPids(dir: string): Promise<Set<number>> {
  const pids = new Set<number>();
  const queue = [dir];
  let seen = 0;
  while (queue.length > 0 && seen++ < MAX_CGROUP_DIRS) {
    const d = queue.shift()!;
    for (const line of ((await readSmall(join(d, "cgroup.procs"))) ?? "").split("\n"))
      if (/^\d+$/.test(line.trim())) pids.add(Number(line.trim()));
    try {
      for (const e of await readdir(d, { withFileTypes: true }))
        if (e.isDirectory()) queue.push(join(d, e.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** dockerd's check: "-o user=PID..." would hide the PID column under another name. */
export function validatePsArgs(psArgs: string): void {
  for (const m of ` ${psArgs}`.matchAll(/\s+([^\s]*)=\s*(PID[^\s]*)/g)) {
    if (m[1] !== "pid") throw invalid(`specifying "${m[1]}=${m[2]}" is not allowed in ps options`);
  }
}

/** dockerd's parsePSOutput: the PID column picks rows; the last column keeps its spaces. */
export function parsePsOutput(output: string, pids: Set<number>): TopResult {
  const lines = output.split("\n");
  const titles = (lines[0] ?? "").trim().split(/\s+/).filter(Boolean);
  const pidIndex = titles.indexOf("PID");
  if (pidIndex < 0)
    throw invalid("Couldn't find PID field in ps output: keep the pid column in the ps options (-o pid,...)");
  const processes: string[][] = [];
  const add = (fields: string[]): void => {
    processes.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(" ")]);
  };
  // A thread row (ps -m) has "-" as its PID and belongs to the process above it.
  let previousKept = false;
  for (const line of lines.slice(1)) {
    if (line.trim() === "") continue;
    const fields = line.trim().split(/\s+/);
    const field = fields[pidIndex];
    if (field === "-") {
      if (previousKept) add(fields);
      continue;
    }
    if (field === undefined || !/^\d+$/.test(field))
      throw invalid(`Unexpected pid '${field ?? ""}' in ps output`);
    previousKept = pids.has(Number(field));
    if (previousKept) add(fields);
  }
  return { Titles: titles, Processes: processes };
}

async function runPs(args: string[]): Promise<string> {
  return (await runCommand("ps", args, { timeoutMs: 30_000 })).stdout;
}

export async function topContainer(
  ctx: EngineContext,
  rec: ContainerRecord,
  psArgs: string,
): Promise<TopResult> {
  const s = rec.State.Status;
  if (s === "restarting")
    throw conflict(`Container ${rec.Id} is restarting, wait until the container is running`);
  if ((s !== "running" && s !== "paused") || rec.State.Pid <= 0)
    throw conflict(`Container ${rec.Id} is not running`);
  const args = (psArgs.trim() || "-ef").split(/\s+/);
  validatePsArgs(args.join(" "));
  const dirs = cgroupDirs(containerPaths(ctx, rec.Id).cgroupsPath, ctx.cgroupVersion);
  const pids = await cgroupPids(ctx.cgroupVersion === "v2" ? dirs.unified : dirs.pids);
  // The cgroup may be out of reach (no pids hierarchy): the init's pid is the least we know.
  if (pids.size === 0) pids.add(rec.State.Pid);
  let output: string;
  try {
    // Asking ps for just these pids keeps the output small; some options (f) refuse -q.
    output = await runPs([...args, "-q", [...pids].join(",")]).catch(() => runPs(args));
  } catch (e) {
    const reason = e instanceof CommandError ? e.stderr.trim() || e.message : String(e);
    throw invalid(`Error running ps ${args.join(" ")}: ${reason}`);
  }
  return parsePsOutput(output, pids);
}
