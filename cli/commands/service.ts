// Service commands: service create/ls/ps/inspect/scale/update/rm/logs (node and cluster
// commands live in node.ts and cluster.ts). Requests and tables follow the docker CLI's, so
// either CLI drives the same cluster; create, update and scale wait for the service to
// converge (cli/service-progress.ts) unless --detach.

import { clientFor, type ApiClient } from "../client.js";
import { out, type CommandContext } from "../context.js";
import { UsageError } from "../errors.js";
import { parseBytes, parseDurationMs, parseNanoCpus } from "../../shared/units.js";
import { humanDuration } from "../../shared/human.js";
import { parseLabels } from "../options.js";
import { filtersJson } from "./container.js";
import { printInspected } from "./inspect.js";

const enc = encodeURIComponent;

interface ServiceView {
  ID: string;
  Version: { Index: number };
  Spec: {
    Name: string;
    TaskTemplate: { ContainerSpec?: { Image?: string } };
    Mode: { Replicated?: { Replicas: number }; Global?: object };
  };
  ServiceStatus?: { RunningTasks: number; DesiredTasks: number };
}

interface TaskView {
  ID: string;
  ServiceID: string;
  Slot: number;
  NodeID: string;
  DesiredState: string;
  CreatedAt: string;
  Spec: { ContainerSpec?: { Image?: string } };
  Status: { Timestamp: string; State: string; Message: string; Err?: string };
}

interface NodeView {
  ID: string;
  Spec: { Role: string; Availability: string };
  Description: { Hostname: string };
  Status: { State: string };
  ManagerStatus?: { Leader?: boolean; Reachability: string };
}

const cap = (s: string): string => (s === "" ? s : s[0].toUpperCase() + s.slice(1));

export interface ServiceCreateFlags {
  name?: string;
  replicas?: string;
  mode?: string;
  constraint?: string[];
  reserveCpu?: string;
  reserveMemory?: string;
  limitCpu?: string;
  limitMemory?: string;
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string;
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
export function parseServicePort(value: string): Record<string, unknown> {
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
  const reservations = {
    ...(f.reserveCpu ? { NanoCPUs: wrap(() => parseNanoCpus(f.reserveCpu as string, "--reserve-cpu")) } : {}),
    ...(f.reserveMemory
      ? { MemoryBytes: wrap(() => parseBytes(f.reserveMemory as string, "--reserve-memory")) }
      : {}),
  };
  const limits = {
    ...(f.limitCpu ? { NanoCPUs: wrap(() => parseNanoCpus(f.limitCpu as string, "--limit-cpu")) } : {}),
    ...(f.limitMemory
      ? { MemoryBytes: wrap(() => parseBytes(f.limitMemory as string, "--limit-memory")) }
      : {}),
  };
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
      Resources: { Reservations: reservations, Limits: limits },
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

/** Wait for the service to converge, showing progress (service-progress.ts). */
async function converge(client: ApiClient, id: string): Promise<void> {
  const { waitForConvergence } = await import("../service-progress.js");
  await waitForConvergence(client, id);
}

export async function serviceCreate(ctx: CommandContext<ServiceCreateFlags>): Promise<number> {
  const [image, args] = ctx.args as [string, string[]];
  const client = clientFor(ctx.host);
  const r = await client.json<{ ID: string }>("POST", "/services/create", {
    body: serviceSpec(image, args ?? [], ctx.flags),
  });
  out(`${r.ID}\n`);
  if (!ctx.flags.detach) await converge(client, r.ID);
  return 0;
}

export async function serviceLs(
  ctx: CommandContext<{ quiet?: boolean; format?: string; filter?: string[] }>,
): Promise<number> {
  const list = await clientFor(ctx.host).json<ServiceView[]>("GET", "/services", {
    query: { status: 1, filters: filtersJson(ctx.flags.filter) },
  });
  const { renderList } = await import("../format/table.js");
  const rows = [...list]
    .sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name))
    .map((s) => ({
      ID: s.ID.slice(0, 12),
      Name: s.Spec.Name,
      Mode: s.Spec.Mode.Global ? "global" : "replicated",
      Replicas: `${s.ServiceStatus?.RunningTasks ?? 0}/${s.ServiceStatus?.DesiredTasks ?? 0}`,
      Image: s.Spec.TaskTemplate.ContainerSpec?.Image ?? "",
      Ports: "",
    }));
  out(
    renderList(rows, ctx.flags.quiet ? "{{.ID}}" : ctx.flags.format, {
      defaultFormat: "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}",
      headers: { ID: "ID", Name: "NAME", Mode: "MODE", Replicas: "REPLICAS", Image: "IMAGE", Ports: "PORTS" },
    }),
  );
  return 0;
}

export async function servicePs(
  ctx: CommandContext<{ quiet?: boolean; format?: string; trunc?: boolean }>,
): Promise<number> {
  const [services] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  const nodes = await client.json<NodeView[]>("GET", "/nodes");
  const hostOf = new Map(nodes.map((n) => [n.ID, n.Description.Hostname]));
  const rows: Array<Record<string, string>> = [];
  for (const ref of services) {
    const svc = await client.json<ServiceView>("GET", `/services/${enc(ref)}`);
    const tasks = await client.json<TaskView[]>("GET", "/tasks", {
      query: { filters: JSON.stringify({ service: [svc.ID] }) },
    });
    // Newest first within a slot (a global service's slot is its node), slots in order, as
    // docker shows the history.
    const slotOf = (t: TaskView): string => (t.Slot > 0 ? String(t.Slot).padStart(8, "0") : t.NodeID);
    tasks.sort(
      (a, b) => slotOf(a).localeCompare(slotOf(b)) || Date.parse(b.CreatedAt) - Date.parse(a.CreatedAt),
    );
    let previousSlot = "";
    for (const t of tasks) {
      const name = `${svc.Spec.Name}.${t.Slot > 0 ? t.Slot : t.NodeID}`;
      const since = humanDuration(Date.now() - Date.parse(t.Status.Timestamp));
      const err = t.Status.Err ?? "";
      rows.push({
        ID: ctx.flags.trunc === false ? t.ID : t.ID.slice(0, 12),
        Name: slotOf(t) === previousSlot ? ` \\_ ${name}` : name,
        Image: t.Spec.ContainerSpec?.Image ?? "",
        Node: hostOf.get(t.NodeID) ?? "",
        DesiredState: cap(t.DesiredState),
        CurrentState: `${cap(t.Status.State)} ${since} ago`,
        Error: ctx.flags.trunc === false || err.length <= 30 ? err : `${err.slice(0, 29)}…`,
        Ports: "",
      });
      previousSlot = slotOf(t);
    }
  }
  const { renderList } = await import("../format/table.js");
  out(
    renderList(rows, ctx.flags.quiet ? "{{.ID}}" : ctx.flags.format, {
      defaultFormat:
        "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}",
      headers: {
        ID: "ID",
        Name: "NAME",
        Image: "IMAGE",
        Node: "NODE",
        DesiredState: "DESIRED STATE",
        CurrentState: "CURRENT STATE",
        Error: "ERROR",
        Ports: "PORTS",
      },
    }),
  );
  return 0;
}

export async function serviceInspect(ctx: CommandContext<{ format?: string }>): Promise<number> {
  const [refs] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  const found: unknown[] = [];
  for (const ref of refs) found.push(await client.json<unknown>("GET", `/services/${enc(ref)}`));
  await printInspected(found, ctx.flags.format);
  return 0;
}

/** `scale web=3 api=1`: one versioned update per service; a stale version is retried once. */
export async function serviceScale(ctx: CommandContext<{ detach?: boolean }>): Promise<number> {
  const [pairs] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  for (const pair of pairs) {
    const m = /^([^=]+)=(\d+)$/.exec(pair);
    if (!m) throw new UsageError(`invalid scale "${pair}": use SERVICE=REPLICAS, for example web=3`);
    const [, ref, n] = m;
    for (let attempt = 0; ; attempt++) {
      const svc = await client.json<ServiceView>("GET", `/services/${enc(ref)}`);
      if (svc.Spec.Mode.Global)
        throw new UsageError(`service ${ref} is global: only replicated services scale`);
      try {
        await client.call("POST", `/services/${enc(svc.ID)}/update`, {
          query: { version: svc.Version.Index },
          body: { ...svc.Spec, Mode: { Replicated: { Replicas: Number(n) } } },
        });
        break;
      } catch (e) {
        if (attempt > 0 || !(e instanceof Error) || !/out of sequence/.test(e.message)) throw e;
      }
    }
    out(`${ref} scaled to ${n}\n`);
    if (!ctx.flags.detach) {
      const svc = await client.json<ServiceView>("GET", `/services/${enc(ref)}`);
      await converge(client, svc.ID);
    }
  }
  return 0;
}

export interface ServiceUpdateFlags {
  image?: string;
  replicas?: string;
  envAdd?: string[];
  envRm?: string[];
  labelAdd?: string[];
  labelRm?: string[];
  constraintAdd?: string[];
  constraintRm?: string[];
  reserveCpu?: string;
  reserveMemory?: string;
  limitCpu?: string;
  limitMemory?: string;
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string;
  updateParallelism?: string;
  force?: boolean;
  rollback?: boolean;
  detach?: boolean;
}

type Spec = Record<string, unknown> & {
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
export function updatedServiceSpec(current: Spec, f: ServiceUpdateFlags): Spec {
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
  if (f.reserveCpu !== undefined)
    set(
      "Reservations",
      "NanoCPUs",
      wrap(() => parseNanoCpus(f.reserveCpu as string, "--reserve-cpu")),
    );
  if (f.reserveMemory !== undefined)
    set(
      "Reservations",
      "MemoryBytes",
      wrap(() => parseBytes(f.reserveMemory as string, "--reserve-memory")),
    );
  if (f.limitCpu !== undefined)
    set(
      "Limits",
      "NanoCPUs",
      wrap(() => parseNanoCpus(f.limitCpu as string, "--limit-cpu")),
    );
  if (f.limitMemory !== undefined)
    set(
      "Limits",
      "MemoryBytes",
      wrap(() => parseBytes(f.limitMemory as string, "--limit-memory")),
    );
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

/** `service update [flags] SERVICE`: one versioned update (a stale version is retried once), then progress. */
export async function serviceUpdate(ctx: CommandContext<ServiceUpdateFlags>): Promise<number> {
  const [ref] = ctx.args as [string];
  const client = clientFor(ctx.host);
  let id: string;
  for (let attempt = 0; ; attempt++) {
    const svc = await client.json<{ ID: string; Version: { Index: number }; Spec: Spec }>(
      "GET",
      `/services/${enc(ref)}`,
    );
    id = svc.ID;
    const body = ctx.flags.rollback ? svc.Spec : updatedServiceSpec(svc.Spec, ctx.flags);
    try {
      await client.call("POST", `/services/${enc(svc.ID)}/update`, {
        query: { version: svc.Version.Index, rollback: ctx.flags.rollback ? "previous" : undefined },
        body,
      });
      break;
    } catch (e) {
      if (attempt > 0 || !(e instanceof Error) || !/out of sequence/.test(e.message)) throw e;
    }
  }
  out(`${ref}\n`);
  if (!ctx.flags.detach) await converge(client, id);
  return 0;
}

export async function serviceRm(ctx: CommandContext): Promise<number> {
  const [refs] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  for (const ref of refs) {
    await client.call("DELETE", `/services/${enc(ref)}`);
    out(`${ref}\n`);
  }
  return 0;
}

/** `service logs [-f] [--tail N] [-t] SERVICE`: each line prefixed by its task, as docker prints it. */
export async function serviceLogs(
  ctx: CommandContext<{ follow?: boolean; tail?: string; timestamps?: boolean }>,
): Promise<number> {
  const [ref] = ctx.args as [string];
  const f = ctx.flags;
  const client = clientFor(ctx.host);
  const svc = await client.json<ServiceView>("GET", `/services/${enc(ref)}`);
  const names = new Map<string, string>();
  const nameOf = async (taskId: string, nodeId: string): Promise<string> => {
    const known = names.get(taskId);
    if (known) return known;
    const task = await client.json<TaskView>("GET", `/tasks/${enc(taskId)}`).catch(() => undefined);
    const node = await client.json<NodeView>("GET", `/nodes/${enc(nodeId)}`).catch(() => undefined);
    const name = `${svc.Spec.Name}.${task && task.Slot > 0 ? task.Slot : nodeId}.${taskId.slice(0, 12)}@${node?.Description.Hostname ?? nodeId}`;
    names.set(taskId, name);
    return name;
  };
  const res = await client.stream("GET", `/services/${enc(svc.ID)}/logs`, {
    query: {
      stdout: 1,
      stderr: 1,
      details: 1,
      follow: f.follow ? 1 : undefined,
      tail: f.tail === undefined || f.tail === "all" ? undefined : f.tail,
      timestamps: f.timestamps ? 1 : undefined,
    },
  });
  const { StdcopyDemuxer, STDERR, SYSTEMERR } = await import("../stdcopy.js");
  const demuxer = new StdcopyDemuxer();
  let failed = false;
  for await (const chunk of res) {
    for (const frame of demuxer.push(chunk as Buffer)) {
      // The daemon's own error (a node that could not be reached), as docker prints it.
      if (frame.stream === SYSTEMERR) {
        process.stderr.write(`error from daemon in stream: ${frame.data.toString("utf8")}\n`);
        failed = true;
        continue;
      }
      let text = frame.data.toString("utf8");
      let stamp = "";
      if (f.timestamps) {
        const sp = text.indexOf(" ");
        stamp = `${text.slice(0, sp)} `;
        text = text.slice(sp + 1);
      }
      const sp = text.indexOf(" ");
      const context = Object.fromEntries(
        text
          .slice(0, sp)
          .split(",")
          .map((kv) => kv.split("=") as [string, string]),
      );
      const prefix = await nameOf(
        context["com.docker.swarm.task.id"] ?? "",
        context["com.docker.swarm.node.id"] ?? "",
      );
      const line = `${stamp}${prefix}    | ${text.slice(sp + 1)}`;
      (frame.stream === STDERR ? process.stderr : process.stdout).write(line);
    }
  }
  return failed ? 1 : 0;
}
