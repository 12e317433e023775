// The swarm API's ServiceSpec from `service create` and `service update` flags, as the docker
// CLI builds it. Pure functions, so that tests can pin the mapping down; the service command
// handlers (commands/service.ts) import this module when they run.

import { parseBytes, parseDurationMs, parseNanoCpus } from "../shared/units.js";
import { UsageError } from "./errors.js";
import { parseLabels } from "./options.js";

/** The flags `service create` and `service update` share (commands/service.ts). */
interface ResourceAndRestartFlags {
  reserveCpu?: string;
  reserveMemory?: string;
  limitCpu?: string;
  limitMemory?: string;
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string;
}

export interface ServiceCreateFlags extends ResourceAndRestartFlags {
  name?: string;
  replicas?: string;
  mode?: string;
  constraint?: string[];
  restartWindow?: string;
  env?: string[];
  label?: string[];
  containerLabel?: string[];
  stopGracePeriod?: string;
  publish?: string[];
  network?: string[];
  endpointMode?: string;
  detach?: boolean;
}

/** `--network NAME` or `--network name=NAME,alias=A[,alias=B]`, as docker takes them. */
function parseServiceNetwork(value: string): { Target: string; Aliases?: string[] } {
  if (!value.includes("=")) return { Target: value };
  let target = "";
  const aliases: string[] = [];
  for (const part of value.split(",")) {
    const [k, v = ""] = part.split("=", 2);
    if (k === "name" || k === "target") target = v;
    else if (k === "alias") aliases.push(v);
    else throw new UsageError(`invalid --network field "${k}": use name and alias`);
  }
  if (!target) throw new UsageError(`invalid --network "${value}": name=NETWORK is missing`);
  return { Target: target, ...(aliases.length > 0 ? { Aliases: aliases } : {}) };
}

function endpointMode(v: string): "vip" | "dnsrr" {
  if (v !== "vip" && v !== "dnsrr") throw new UsageError(`invalid --endpoint-mode "${v}": use vip or dnsrr`);
  return v;
}

/** `--publish mode=host,published=8080,target=80[,protocol=udp]` or `8080:80[/udp]` (routing mesh). */
function parseServicePort(value: string): Record<string, unknown> {
  if (value.includes("=")) {
    const fields = Object.fromEntries(value.split(",").map((kv) => kv.split("=") as [string, string]));
    const known = new Set(["mode", "published", "target", "protocol"]);
    for (const k of Object.keys(fields))
      if (!known.has(k))
        throw new UsageError(`invalid --publish field "${k}": use mode, published, target and protocol`);
    const target = Number(fields.target);
    if (!Number.isInteger(target) || target < 1 || target > 65535)
      throw new UsageError(`invalid --publish "${value}": target must be a port from 1 to 65535`);
    return {
      Protocol: fields.protocol ?? "tcp",
      TargetPort: target,
      ...(fields.published ? { PublishedPort: Number(fields.published) } : {}),
      PublishMode: fields.mode ?? "ingress",
    };
  }
  const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(value);
  if (!m)
    throw new UsageError(
      `invalid --publish "${value}": use PUBLISHED:TARGET or mode=host,published=N,target=N`,
    );
  return {
    Protocol: m[3] ?? "tcp",
    PublishedPort: Number(m[1]),
    TargetPort: Number(m[2]),
    PublishMode: "ingress",
  };
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** --reserve-cpu, --reserve-memory, --limit-cpu and --limit-memory: where each goes, and how it is read. */
const resourceFlags = [
  ["reserveCpu", "Reservations", "NanoCPUs", parseNanoCpus, "--reserve-cpu"],
  ["reserveMemory", "Reservations", "MemoryBytes", parseBytes, "--reserve-memory"],
  ["limitCpu", "Limits", "NanoCPUs", parseNanoCpus, "--limit-cpu"],
  ["limitMemory", "Limits", "MemoryBytes", parseBytes, "--limit-memory"],
] as const;

/** The swarm API's ServiceSpec from `service create` flags, as the docker CLI builds it. */
export function serviceSpec(image: string, args: string[], f: ServiceCreateFlags): Record<string, unknown> {
  if (!f.name) throw new UsageError("a service needs a name: pass --name");
  const mode = f.mode ?? "replicated";
  if (mode !== "replicated" && mode !== "global")
    throw new UsageError(`invalid --mode "${mode}": use replicated or global`);
  if (mode === "global" && f.replicas !== undefined)
    throw new UsageError("--replicas goes with --mode replicated only");
  const replicas = f.replicas === undefined ? 1 : Number(f.replicas);
  if (!Number.isInteger(replicas) || replicas < 0)
    throw new UsageError(`invalid --replicas "${f.replicas}": use a whole number of 0 or more`);
  const condition = f.restartCondition ?? "any";
  if (!["none", "on-failure", "any"].includes(condition))
    throw new UsageError(`invalid --restart-condition "${condition}": use none, on-failure or any`);
  const ns = (v: string | undefined, flag: string): number | undefined =>
    v === undefined ? undefined : wrap(() => parseDurationMs(v, flag)) * 1e6;
  const resources = { Reservations: {} as Record<string, number>, Limits: {} as Record<string, number> };
  for (const [key, kind, field, parse, flag] of resourceFlags) {
    const value = f[key];
    if (value) resources[kind][field] = wrap(() => parse(value, flag));
  }
  return {
    Name: f.name,
    Labels: parseLabels(f.label ?? []),
    TaskTemplate: {
      ContainerSpec: {
        Image: image,
        ...(args.length > 0 ? { Args: args } : {}),
        Env: f.env ?? [],
        Labels: parseLabels(f.containerLabel ?? []),
        ...(f.stopGracePeriod ? { StopGracePeriod: ns(f.stopGracePeriod, "--stop-grace-period") } : {}),
      },
      Resources: resources,
      RestartPolicy: {
        Condition: condition,
        ...(f.restartDelay ? { Delay: ns(f.restartDelay, "--restart-delay") } : {}),
        ...(f.restartMaxAttempts ? { MaxAttempts: Number(f.restartMaxAttempts) } : {}),
        ...(f.restartWindow ? { Window: ns(f.restartWindow, "--restart-window") } : {}),
      },
      Placement: { Constraints: f.constraint ?? [] },
      ...(f.network?.length ? { Networks: f.network.map(parseServiceNetwork) } : {}),
    },
    Mode: mode === "global" ? { Global: {} } : { Replicated: { Replicas: replicas } },
    ...(f.publish?.length || f.endpointMode
      ? {
          EndpointSpec: {
            ...(f.endpointMode ? { Mode: endpointMode(f.endpointMode) } : {}),
            ...(f.publish?.length ? { Ports: f.publish.map(parseServicePort) } : {}),
          },
        }
      : {}),
  };
}

export interface ServiceUpdateFlags extends ResourceAndRestartFlags {
  image?: string;
  replicas?: string;
  envAdd?: string[];
  envRm?: string[];
  labelAdd?: string[];
  labelRm?: string[];
  constraintAdd?: string[];
  constraintRm?: string[];
  updateParallelism?: string;
  force?: boolean;
  rollback?: boolean;
  detach?: boolean;
}

export type ServiceSpec = Record<string, unknown> & {
  Name: string;
  Labels?: Record<string, string>;
  Mode: { Replicated?: { Replicas: number }; Global?: object };
  TaskTemplate: Record<string, unknown> & {
    ContainerSpec?: Record<string, unknown> & { Image?: string; Env?: string[] };
    Resources?: { Reservations?: Record<string, number>; Limits?: Record<string, number> };
    RestartPolicy?: Record<string, unknown>;
    Placement?: Record<string, unknown> & { Constraints?: string[] };
    ForceUpdate?: number;
  };
};

/**
 * The spec after `service update` flags, from the current one (as the docker CLI does it):
 * only what the flags name changes; `--force` bumps TaskTemplate.ForceUpdate so every task is
 * replaced even when nothing else changed.
 */
export function updatedServiceSpec(current: ServiceSpec, f: ServiceUpdateFlags): ServiceSpec {
  const spec = structuredClone(current);
  const t = spec.TaskTemplate;
  const cs = (t.ContainerSpec ??= {});
  if (f.image !== undefined) {
    if (f.image === "") throw new UsageError("invalid --image: give an image reference");
    cs.Image = f.image;
  }
  if (f.replicas !== undefined) {
    if (spec.Mode.Global !== undefined)
      throw new UsageError(`service ${spec.Name} is global: --replicas goes with replicated services only`);
    const n = Number(f.replicas);
    if (!/^\d+$/.test(f.replicas) || !Number.isInteger(n))
      throw new UsageError(`invalid --replicas "${f.replicas}": use a whole number of 0 or more`);
    spec.Mode = { Replicated: { Replicas: n } };
  }
  if (f.envAdd?.length || f.envRm?.length) {
    const keyOf = (e: string): string => (e.includes("=") ? e.slice(0, e.indexOf("=")) : e);
    const drop = new Set([...(f.envRm ?? []), ...(f.envAdd ?? []).map(keyOf)].map(keyOf));
    cs.Env = [...(cs.Env ?? []).filter((e) => !drop.has(keyOf(e))), ...(f.envAdd ?? [])];
  }
  if (f.labelAdd?.length || f.labelRm?.length) {
    const labels = { ...(spec.Labels ?? {}) };
    for (const k of f.labelRm ?? []) delete labels[k];
    spec.Labels = { ...labels, ...parseLabels(f.labelAdd ?? []) };
  }
  if (f.constraintAdd?.length || f.constraintRm?.length) {
    const placement = (t.Placement ??= {});
    const rm = new Set((f.constraintRm ?? []).map((c) => c.replace(/\s+/g, "")));
    const kept = (placement.Constraints ?? []).filter((c) => !rm.has(c.replace(/\s+/g, "")));
    placement.Constraints = [...new Set([...kept, ...(f.constraintAdd ?? [])])];
  }
  const resources = (t.Resources ??= {});
  const set = (kind: "Reservations" | "Limits", key: string, value: number): void => {
    resources[kind] = { ...(resources[kind] ?? {}), [key]: value };
  };
  for (const [key, kind, field, parse, flag] of resourceFlags) {
    const value = f[key];
    if (value !== undefined)
      set(
        kind,
        field,
        wrap(() => parse(value, flag)),
      );
  }
  if (
    f.restartCondition !== undefined ||
    f.restartDelay !== undefined ||
    f.restartMaxAttempts !== undefined
  ) {
    const policy = (t.RestartPolicy ??= {});
    if (f.restartCondition !== undefined) {
      if (!["none", "on-failure", "any"].includes(f.restartCondition))
        throw new UsageError(
          `invalid --restart-condition "${f.restartCondition}": use none, on-failure or any`,
        );
      policy.Condition = f.restartCondition;
    }
    if (f.restartDelay !== undefined)
      policy.Delay = wrap(() => parseDurationMs(f.restartDelay as string, "--restart-delay")) * 1e6;
    if (f.restartMaxAttempts !== undefined) {
      if (!/^\d+$/.test(f.restartMaxAttempts))
        throw new UsageError(`invalid --restart-max-attempts "${f.restartMaxAttempts}": use a whole number`);
      policy.MaxAttempts = Number(f.restartMaxAttempts);
    }
  }
  if (f.updateParallelism !== undefined) {
    if (!/^\d+$/.test(f.updateParallelism))
      throw new UsageError(
        `invalid --update-parallelism "${f.updateParallelism}": use a whole number (0 = all at once)`,
      );
    spec.UpdateConfig = {
      ...((spec.UpdateConfig as object) ?? {}),
      Parallelism: Number(f.updateParallelism),
    };
  }
  if (f.force) t.ForceUpdate = (t.ForceUpdate ?? 0) + 1;
  return spec;
}
