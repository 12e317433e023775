// Service commands: service create/ls/ps/inspect/scale/update/rm/logs (node and cluster
// commands live in node.ts and cluster.ts). Requests and tables follow the docker CLI's, so
// either CLI drives the same cluster; create, update and scale wait for the service to
// converge (cli/service-progress.ts) unless --detach.

import type { Command } from "commander";
import type { ApiClient } from "../client.js";
import { act, add, apiClient, collect, filtersJson, out, type CommandContext } from "../command.js";
import { UsageError } from "../errors.js";
import type { ServiceCreateFlags, ServiceSpec, ServiceUpdateFlags } from "../service-spec.js";

const enc = encodeURIComponent;

/** `shoal service ...`. */
export function serviceCommands(parent: Command): void {
  const create = add(parent, "create")
    ?.description("Create a new service")
    .argument("<image>")
    .argument("[command...]")
    .passThroughOptions()
    .option("--name <string>", "Service name")
    .option("--replicas <uint>", "Number of tasks")
    .option("--mode <string>", "Service mode (replicated or global)", "replicated")
    .option("--constraint <list>", "Placement constraints", collect);
  if (create)
    resourceAndRestartFlags(create)
      .option("--restart-window <duration>", "Window used to evaluate the restart policy")
      .option("-e, --env <list>", "Set environment variables", collect)
      .option("-l, --label <list>", "Service labels", collect)
      .option("--container-label <list>", "Container labels", collect)
      .option("--stop-grace-period <duration>", "Time to wait before force killing a container")
      .option(
        "-p, --publish <port>",
        "Publish a port: PUBLISHED:TARGET (routing mesh) or mode=host,...",
        collect,
      )
      .option("--network <network>", "Network attachments (NAME or name=NAME,alias=A)", collect)
      .option("--endpoint-mode <mode>", "Endpoint mode (vip or dnsrr)")
      .option("-d, --detach", "Exit immediately instead of waiting for the service to converge")
      .action(act(serviceCreate));
  add(parent, "ls", ["list"])
    ?.aliases(["list"])
    .description("List services")
    .option("-q, --quiet", "Only display IDs")
    .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
    .option("--format <string>", "Format output using a custom template")
    .action(act(serviceLs));
  add(parent, "ps")
    ?.description("List the tasks of one or more services")
    .argument("<service...>")
    .option("-q, --quiet", "Only display task IDs")
    .option("--format <string>", "Format output using a custom template")
    .option("--no-trunc", "Do not truncate output")
    .action(act(servicePs));
  add(parent, "inspect")
    ?.description("Display detailed information on one or more services")
    .argument("<service...>")
    .option("-f, --format <string>", "Format output using a custom template")
    .action(act(serviceInspect));
  add(parent, "scale")
    ?.description("Scale one or multiple replicated services")
    .argument("<service=replicas...>")
    .option("-d, --detach", "Exit immediately instead of waiting for the service to converge")
    .action(act(serviceScale));
  const update = add(parent, "update")
    ?.description("Update a service (a changed task template replaces its tasks, one at a time by default)")
    .argument("<service>")
    .option("--image <string>", "Service image tag")
    .option("--replicas <uint>", "Number of tasks")
    .option("--env-add <list>", "Add or update an environment variable", collect)
    .option("--env-rm <list>", "Remove an environment variable", collect)
    .option("--label-add <list>", "Add or update a service label", collect)
    .option("--label-rm <list>", "Remove a label by its key", collect)
    .option("--constraint-add <list>", "Add or update a placement constraint", collect)
    .option("--constraint-rm <list>", "Remove a constraint", collect);
  if (update)
    resourceAndRestartFlags(update)
      .option(
        "--update-parallelism <uint>",
        "Maximum number of tasks updated simultaneously (0 to update all at once)",
      )
      .option("--force", "Force update even if no changes require it")
      .option("--rollback", "Rollback to previous specification")
      .option("-d, --detach", "Exit immediately instead of waiting for the service to converge")
      .action(act(serviceUpdate));
  add(parent, "logs")
    ?.description("Fetch the logs of a service's tasks")
    .argument("<service>")
    .option("-f, --follow", "Follow log output")
    .option("-n, --tail <string>", "Number of lines to show from the end of the logs", "all")
    .option("-t, --timestamps", "Show timestamps")
    .action(act(serviceLogs));
  add(parent, "rm", ["remove"])
    ?.aliases(["remove"])
    .description("Remove one or more services")
    .argument("<service...>")
    .action(act(serviceRm));
}

/** The resource and restart flags `service create` and `service update` share. */
function resourceAndRestartFlags(cmd: Command): Command {
  return cmd
    .option("--reserve-cpu <decimal>", "Reserve CPUs")
    .option("--reserve-memory <bytes>", "Reserve Memory")
    .option("--limit-cpu <decimal>", "Limit CPUs")
    .option("--limit-memory <bytes>", "Limit Memory")
    .option("--restart-condition <string>", 'Restart when condition is met ("none", "on-failure", "any")')
    .option("--restart-delay <duration>", "Delay between restart attempts")
    .option("--restart-max-attempts <uint>", "Maximum number of restarts before giving up");
}

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

/** Wait for the service to converge, showing progress (service-progress.ts). */
async function converge(client: ApiClient, id: string): Promise<void> {
  const { waitForConvergence } = await import("../service-progress.js");
  await waitForConvergence(client, id);
}

async function serviceCreate(ctx: CommandContext<ServiceCreateFlags>): Promise<number> {
  const [image, args] = ctx.args as [string, string[]];
  const { serviceSpec } = await import("../service-spec.js");
  const client = await apiClient(ctx.host);
  const r = await client.json<{ ID: string }>("POST", "/services/create", {
    body: serviceSpec(image, args ?? [], ctx.flags),
  });
  out(`${r.ID}\n`);
  if (!ctx.flags.detach) await converge(client, r.ID);
  return 0;
}

async function serviceLs(
  ctx: CommandContext<{ quiet?: boolean; format?: string; filter?: string[] }>,
): Promise<number> {
  const list = await (
    await apiClient(ctx.host)
  ).json<ServiceView[]>("GET", "/services", {
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

async function servicePs(
  ctx: CommandContext<{ quiet?: boolean; format?: string; trunc?: boolean }>,
): Promise<number> {
  const [services] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  const nodes = await client.json<NodeView[]>("GET", "/nodes");
  const { humanDuration } = await import("../../shared/human.js");
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

async function serviceInspect(ctx: CommandContext<{ format?: string }>): Promise<number> {
  const [refs] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  const found: unknown[] = [];
  for (const ref of refs) found.push(await client.json<unknown>("GET", `/services/${enc(ref)}`));
  const { printInspected } = await import("./inspect.js");
  await printInspected(found, ctx.flags.format);
  return 0;
}

/** `scale web=3 api=1`: one versioned update per service; a stale version is retried once. */
async function serviceScale(ctx: CommandContext<{ detach?: boolean }>): Promise<number> {
  const [pairs] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
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

/** `service update [flags] SERVICE`: one versioned update (a stale version is retried once), then progress. */
async function serviceUpdate(ctx: CommandContext<ServiceUpdateFlags>): Promise<number> {
  const [ref] = ctx.args as [string];
  const { updatedServiceSpec } = await import("../service-spec.js");
  const client = await apiClient(ctx.host);
  let id: string;
  for (let attempt = 0; ; attempt++) {
    const svc = await client.json<{ ID: string; Version: { Index: number }; Spec: ServiceSpec }>(
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

async function serviceRm(ctx: CommandContext): Promise<number> {
  const [refs] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  for (const ref of refs) {
    await client.call("DELETE", `/services/${enc(ref)}`);
    out(`${ref}\n`);
  }
  return 0;
}

/** `service logs [-f] [--tail N] [-t] SERVICE`: each line prefixed by its task, as docker prints it. */
async function serviceLogs(
  ctx: CommandContext<{ follow?: boolean; tail?: string; timestamps?: boolean }>,
): Promise<number> {
  const [ref] = ctx.args as [string];
  const f = ctx.flags;
  const client = await apiClient(ctx.host);
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
  const { StdcopyDemuxer, STDERR, SYSTEMERR } = await import("../../shared/stdcopy.js");
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
