import { readFile } from "node:fs/promises";
import { cpus, hostname, release, totalmem } from "node:os";
import { join } from "node:path";
import { newId } from "../shared/ids.js";
import { readJsonIfExists, writeJsonAtomic } from "../shared/fsutil.js";
import type { DaemonInfo } from "../api/deps.js";
import type { DaemonOptions } from "./options.js";

async function operatingSystem(): Promise<string> {
  const text = await readFile("/etc/os-release", "utf8").catch(() => "");
  return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1] ?? "Linux";
}

/** The engine id survives restarts, like dockerd's engine-id file. */
async function engineId(dataRoot: string): Promise<string> {
  const path = join(dataRoot, "engine-id.json");
  const existing = await readJsonIfExists<{ id: string }>(path);
  if (existing?.id) return existing.id;
  const id = newId();
  await writeJsonAtomic(path, { id });
  return id;
}

export async function gatherDaemonInfo(
  options: DaemonOptions,
  version: string,
  cgroupVersion: "1" | "2",
): Promise<DaemonInfo> {
  return {
    version,
    gitCommit: process.env.SHOAL_GIT_COMMIT ?? "unknown",
    id: await engineId(options.dataRoot),
    name: hostname(),
    dataRoot: options.dataRoot,
    execRoot: options.execRoot,
    runtimePath: options.runtimePath,
    cgroupVersion,
    kernelVersion: release(),
    operatingSystem: await operatingSystem(),
    ncpu: cpus().length,
    memTotal: totalmem(),
    startedAt: new Date().toISOString(),
    insecureRegistries: options.insecureRegistries,
  };
}
