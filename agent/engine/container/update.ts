// POST /containers/{id}/update: new cgroup limits and restart policy. A running (or paused)
// container gets them at once through `runc update`; every container keeps them on its record
// (inspect shows them) and in its bundle's config.json (the next start uses them). A field the
// body sets that shoal cannot change is refused by name, never dropped.
import { availableParallelism } from "node:os";
import { readFile } from "node:fs/promises";
import type { HostConfig, RestartPolicy } from "../../../shared/engine-api.js";
import { invalid } from "../../../shared/errors.js";
import { writeFileAtomic } from "../../../shared/fsutil.js";
import { checkHostLimits, readCgroupHostFacts } from "../runtime/cgroup-host.js";
import type { Spec } from "../runtime/oci-types.js";
import { limitResources } from "../runtime/resource-limits.js";
import { updateRuntime } from "../runtime/runtime-resources.js";
import { throttlesOf } from "../runtime/blkio-devices.js";
import { validateResources } from "../runtime/spec-resources.js";
import { containerPaths, type EngineContext } from "./context.js";
import { containerEvent } from "./events.js";
import type { ContainerRecord } from "./types.js";
import { validateSettings } from "./validate.js";

/** Docker's UpdateConfig: the Resources fields plus RestartPolicy, as the docker CLI sends them. */
export type UpdateRequest = Record<string, unknown>;

/** Fields shoal changes, with the flag that sets each. */
const SUPPORTED: Record<string, string> = {
  Memory: "--memory",
  MemorySwap: "--memory-swap",
  MemoryReservation: "--memory-reservation",
  NanoCpus: "--cpus",
  CpuShares: "--cpu-shares",
  CpuPeriod: "--cpu-period",
  CpuQuota: "--cpu-quota",
  CpusetCpus: "--cpuset-cpus",
  CpusetMems: "--cpuset-mems",
  PidsLimit: "--pids-limit",
  BlkioWeight: "--blkio-weight",
  RestartPolicy: "--restart",
};

/** The flags of fields the docker CLI can send that update cannot change. */
const FLAGS: Record<string, string> = {
  CpuRealtimePeriod: "--cpu-rt-period",
  CpuRealtimeRuntime: "--cpu-rt-runtime",
  KernelMemory: "--kernel-memory",
  KernelMemoryTCP: "--kernel-memory-tcp",
  MemorySwappiness: "--memory-swappiness",
  OomKillDisable: "--oom-kill-disable",
  BlkioWeightDevice: "--blkio-weight-device",
  BlkioDeviceReadBps: "--device-read-bps",
  BlkioDeviceWriteBps: "--device-write-bps",
  BlkioDeviceReadIOps: "--device-read-iops",
  BlkioDeviceWriteIOps: "--device-write-iops",
  Devices: "--device",
  DeviceCgroupRules: "--device-cgroup-rule",
  DeviceRequests: "--gpus",
  Ulimits: "--ulimit",
  CgroupParent: "--cgroup-parent",
};

/** What the docker CLI sends for a flag not given: the field's zero value. */
function unset(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.values(v as object).every(unset);
  return false;
}

function refuseUnsupported(body: UpdateRequest): void {
  const bad = Object.entries(body)
    .filter(([k, v]) => !(k in SUPPORTED) && !unset(v))
    .map(([k]) => (FLAGS[k] ? `${FLAGS[k]} (${k})` : k));
  if (bad.length > 0)
    throw invalid(
      `${bad.join(", ")} cannot be changed by update in shoal: nothing was changed; update takes ${Object.values(SUPPORTED).join(", ")}`,
    );
}

function numberField(body: UpdateRequest, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v))
    throw invalid(`invalid value ${JSON.stringify(v)} for ${SUPPORTED[key]} (${key}): must be a number`);
  return v;
}

function stringField(body: UpdateRequest, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string")
    throw invalid(`invalid value ${JSON.stringify(v)} for ${SUPPORTED[key]} (${key}): must be text`);
  return v;
}

/** The HostConfig after the update; a zero value leaves a field as it is (Docker's rule). */
export function mergeUpdate(
  current: HostConfig,
  body: UpdateRequest,
): { next: HostConfig; pidsTouched: boolean } {
  refuseUnsupported(body);
  const next: HostConfig = structuredClone(current);
  const positive = (
    key: "Memory" | "MemoryReservation" | "NanoCpus" | "CpuShares" | "CpuPeriod" | "BlkioWeight",
  ): void => {
    const v = numberField(body, key);
    if (v !== undefined && v !== 0) next[key] = v;
  };
  positive("Memory");
  positive("MemoryReservation");
  positive("NanoCpus");
  positive("CpuShares");
  positive("CpuPeriod");
  positive("BlkioWeight");
  const quota = numberField(body, "CpuQuota");
  if (quota !== undefined && quota !== 0) next.CpuQuota = quota;
  const swap = numberField(body, "MemorySwap");
  if (swap !== undefined && swap !== 0) next.MemorySwap = swap;
  const cpus = stringField(body, "CpusetCpus");
  if (cpus !== undefined) next.CpusetCpus = cpus;
  const mems = stringField(body, "CpusetMems");
  if (mems !== undefined) next.CpusetMems = mems;
  const pids = numberField(body, "PidsLimit");
  // 0 and -1 both mean unlimited here (the CLI sends the field only when --pids-limit is given).
  if (pids !== undefined) next.PidsLimit = pids <= 0 ? 0 : pids;

  const memory = numberField(body, "Memory") ?? 0;
  if (memory > 0 && (swap ?? 0) === 0 && current.MemorySwap > 0 && memory > current.MemorySwap)
    throw invalid(
      "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time (--memory-swap)",
    );

  const policy = body.RestartPolicy as Partial<RestartPolicy> | undefined | null;
  if (policy && typeof policy === "object" && policy.Name) {
    if (current.AutoRemove && policy.Name !== "no")
      throw invalid("Restart policy cannot be updated because AutoRemove is enabled for the container");
    next.RestartPolicy = { Name: policy.Name, MaximumRetryCount: policy.MaximumRetryCount ?? 0 };
  }
  return { next, pidsTouched: pids !== undefined };
}

/** Run under the container's lock. */
export async function updateContainer(
  ctx: EngineContext,
  rec: ContainerRecord,
  body: UpdateRequest,
): Promise<{ Warnings: string[] }> {
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw invalid("the update body must be a JSON object of the fields to change");
  const { next, pidsTouched } = mergeUpdate(rec.HostConfig, body);
  validateSettings(rec.Config, next);
  const limitCtx = { hostCpus: availableParallelism(), swapAccounting: ctx.swapAccounting };
  validateResources(next, limitCtx);
  checkHostLimits(next, await readCgroupHostFacts(ctx.cgroupVersion));

  const limits = limitResources(next, limitCtx);
  const s = rec.State.Status;
  if (s === "running" || s === "paused") {
    // "Unlimited" is a value runc must write; a field it is not given keeps its old one.
    const live = pidsTouched && !limits.pids ? { ...limits, pids: { limit: -1 } } : limits;
    await updateRuntime(ctx.runtime, rec.Id, live);
  }
  const specPath = containerPaths(ctx, rec.Id).spec;
  const spec = JSON.parse(await readFile(specPath, "utf8")) as Spec;
  // Device throttles are not updatable: they stay as create resolved them.
  const old = spec.linux.resources;
  const blockIO = { ...throttlesOf(old.blockIO), ...limits.blockIO };
  spec.linux.resources = { ...limits, devices: old.devices };
  if (Object.keys(blockIO).length > 0) spec.linux.resources.blockIO = blockIO;
  await writeFileAtomic(specPath, JSON.stringify(spec, null, 1));
  rec.HostConfig = next;
  await ctx.store.save(rec);
  containerEvent(ctx, rec, "update");
  ctx.log.info({ id: rec.Id }, "container updated");
  return { Warnings: [] };
}
