// Cluster commands: cluster init/leave, service create/ls/ps/inspect/scale/update/rm, node ls.
// Requests and tables follow the docker CLI's, so either CLI drives the same cluster.

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

export async function clusterInit(
  ctx: CommandContext<{ advertiseAddr?: string; listenAddr?: string }>,
): Promise<number> {
  const id = await clientFor(ctx.host).json<string>("POST", "/swarm/init", {
    body: {
      ListenAddr: ctx.flags.listenAddr ?? "0.0.0.0:2377",
      AdvertiseAddr: ctx.flags.advertiseAddr ?? "",
    },
  });
  out(`Cluster initialized: current node (${id}) is now a manager.\n`);
  return 0;
}

export async function clusterLeave(ctx: CommandContext<{ force?: boolean }>): Promise<number> {
  await clientFor(ctx.host).call("POST", "/swarm/leave", {
    query: { force: ctx.flags.force ? 1 : undefined },
  });
  out("Node left the cluster.\n");
  return 0;
}

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
  detach?: boolean;
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
    },
    Mode: mode === "global" ? { Global: {} } : { Replicated: { Replicas: replicas } },
    ...(f.publish?.length ? { EndpointSpec: { Ports: f.publish.map(parseServicePort) } } : {}),
  };
}

/** Wait until the service's running tasks match what it wants, showing progress. */
async function converge(client: ApiClient, id: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < until) {
    const list = await client.json<ServiceView[]>("GET", "/services", {
      query: { status: 1, filters: JSON.stringify({ id: [id] }) },
    });
    const s = list.find((x) => x.ID === id);
    if (!s) return;
    const status = s.ServiceStatus ?? { RunningTasks: 0, DesiredTasks: 0 };
    const line = `${s.Spec.Name}: ${status.RunningTasks}/${status.DesiredTasks} running`;
    if (line !== last) {
      out(`${line}\n`);
      last = line;
    }
    if (status.RunningTasks === status.DesiredTasks) {
      out("verify: Service converged\n");
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  out("the service did not converge in time: see `shoal service ps` for why\n");
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
    // Newest first within a slot, slots in order, as docker shows the history.
    tasks.sort((a, b) => a.Slot - b.Slot || Date.parse(b.CreatedAt) - Date.parse(a.CreatedAt));
    let previousSlot = -1;
    for (const t of tasks) {
      const name = `${svc.Spec.Name}.${t.Slot > 0 ? t.Slot : t.NodeID}`;
      const since = humanDuration(Date.now() - Date.parse(t.Status.Timestamp));
      const err = t.Status.Err ?? "";
      rows.push({
        ID: ctx.flags.trunc === false ? t.ID : t.ID.slice(0, 12),
        Name: t.Slot === previousSlot ? ` \\_ ${name}` : name,
        Image: t.Spec.ContainerSpec?.Image ?? "",
        Node: hostOf.get(t.NodeID) ?? "",
        DesiredState: cap(t.DesiredState),
        CurrentState: `${cap(t.Status.State)} ${since} ago`,
        Error: ctx.flags.trunc === false || err.length <= 30 ? err : `${err.slice(0, 29)}…`,
        Ports: "",
      });
      previousSlot = t.Slot;
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

export async function serviceRm(ctx: CommandContext): Promise<number> {
  const [refs] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  for (const ref of refs) {
    await client.call("DELETE", `/services/${enc(ref)}`);
    out(`${ref}\n`);
  }
  return 0;
}

export async function nodeLs(ctx: CommandContext<{ quiet?: boolean; format?: string }>): Promise<number> {
  const nodes = await clientFor(ctx.host).json<NodeView[]>("GET", "/nodes");
  const { renderList } = await import("../format/table.js");
  const rows = nodes
    .sort((a, b) => a.Description.Hostname.localeCompare(b.Description.Hostname))
    .map((n) => ({
      ID: n.ID,
      Hostname: n.Description.Hostname,
      Status: cap(n.Status.State),
      Availability: cap(n.Spec.Availability),
      ManagerStatus: n.ManagerStatus
        ? n.ManagerStatus.Leader
          ? "Leader"
          : cap(n.ManagerStatus.Reachability)
        : "",
    }));
  out(
    renderList(rows, ctx.flags.quiet ? "{{.ID}}" : ctx.flags.format, {
      defaultFormat: "table {{.ID}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}",
      headers: {
        ID: "ID",
        Hostname: "HOSTNAME",
        Status: "STATUS",
        Availability: "AVAILABILITY",
        ManagerStatus: "MANAGER STATUS",
      },
    }),
  );
  return 0;
}

/** "self" names the node the CLI talks to, as in the docker CLI. */
async function nodeRef(client: ApiClient, ref: string): Promise<string> {
  if (ref !== "self") return ref;
  const info = await client.json<{ Swarm?: { NodeID?: string } }>("GET", "/info");
  return info.Swarm?.NodeID || ref;
}

export async function nodeInspect(ctx: CommandContext<{ format?: string }>): Promise<number> {
  const [refs] = ctx.args as [string[]];
  const client = clientFor(ctx.host);
  const found: unknown[] = [];
  for (const ref of refs)
    found.push(await client.json<unknown>("GET", `/nodes/${enc(await nodeRef(client, ref))}`));
  await printInspected(found, ctx.flags.format);
  return 0;
}

/** `node update --availability drain --label-add zone=east NODE`: one versioned update. */
export async function nodeUpdate(
  ctx: CommandContext<{ availability?: string; labelAdd?: string[]; labelRm?: string[] }>,
): Promise<number> {
  const [ref] = ctx.args as [string];
  const f = ctx.flags;
  const client = clientFor(ctx.host);
  const node = await client.json<
    NodeView & { Version: { Index: number }; Spec: { Labels?: Record<string, string> } }
  >("GET", `/nodes/${enc(await nodeRef(client, ref))}`);
  const labels = { ...(node.Spec.Labels ?? {}), ...parseLabels(f.labelAdd ?? []) };
  for (const k of f.labelRm ?? []) {
    if (!(k in labels)) throw new UsageError(`node ${ref} has no label ${k} to remove`);
    delete labels[k];
  }
  await client.call("POST", `/nodes/${enc(node.ID)}/update`, {
    query: { version: node.Version.Index },
    body: { ...node.Spec, Availability: f.availability ?? node.Spec.Availability, Labels: labels },
  });
  out(`${ref}\n`);
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
  const { StdcopyDemuxer, STDERR } = await import("../stdcopy.js");
  const demuxer = new StdcopyDemuxer();
  for await (const chunk of res) {
    for (const frame of demuxer.push(chunk as Buffer)) {
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
  return 0;
}
