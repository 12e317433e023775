// Node commands: node ls/inspect/update, promote/demote (the node's desired role: its daemon
// joins or leaves the managers' Raft group), rm. Requests follow the docker CLI's.

import type { Command } from "commander";
import type { ApiClient } from "../client.js";
import { act, add, collect, apiClient, err, out, type CommandContext } from "../command.js";
import { CliError, DaemonError, UsageError } from "../errors.js";

const enc = encodeURIComponent;

/** `shoal node ...`. */
export function nodeCommands(parent: Command): void {
  add(parent, "ls", ["list"])
    ?.aliases(["list"])
    .description("List nodes in the cluster")
    .option("-q, --quiet", "Only display IDs")
    .option("--format <string>", "Format output using a custom template")
    .action(act(nodeLs));
  add(parent, "inspect")
    ?.description("Display detailed information on one or more nodes")
    .argument("<node...>", "node id, hostname or self")
    .option("-f, --format <string>", "Format output using a custom template")
    .action(act(nodeInspect));
  add(parent, "update")
    ?.description("Update a node")
    .argument("<node>")
    .option("--availability <string>", 'Availability of the node ("active", "pause", "drain")')
    .option("--label-add <list>", "Add or update a node label (key=value)", collect)
    .option("--label-rm <list>", "Remove a node label if exists", collect)
    .action(act(nodeUpdate));
  add(parent, "promote")
    ?.description("Promote one or more nodes to manager in the cluster")
    .argument("<node...>", "node id, hostname or self")
    .action(act(nodePromote));
  add(parent, "demote")
    ?.description("Demote one or more nodes from manager in the cluster")
    .argument("<node...>", "node id, hostname or self")
    .action(act(nodeDemote));
  add(parent, "rm", ["remove"])
    ?.aliases(["remove"])
    .description("Remove one or more nodes from the cluster")
    .argument("<node...>")
    .option("-f, --force", "Force remove a node from the cluster")
    .action(act(nodeRm));
}

interface NodeView {
  ID: string;
  Version: { Index: number };
  Spec: { Role: string; Availability: string; Labels?: Record<string, string>; Name?: string };
  Description: { Hostname: string };
  Status: { State: string };
  ManagerStatus?: { Leader?: boolean; Reachability: string; Addr?: string };
}

const cap = (s: string): string => (s === "" ? s : s[0].toUpperCase() + s.slice(1));

async function nodeLs(ctx: CommandContext<{ quiet?: boolean; format?: string }>): Promise<number> {
  const nodes = await (await apiClient(ctx.host)).json<NodeView[]>("GET", "/nodes");
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

async function nodeInspect(ctx: CommandContext<{ format?: string }>): Promise<number> {
  const [refs] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  const found: unknown[] = [];
  for (const ref of refs)
    found.push(await client.json<unknown>("GET", `/nodes/${enc(await nodeRef(client, ref))}`));
  const { printInspected } = await import("./inspect.js");
  await printInspected(found, ctx.flags.format);
  return 0;
}

/** `node update --availability drain --label-add zone=east NODE`: one versioned update. */
async function nodeUpdate(
  ctx: CommandContext<{ availability?: string; labelAdd?: string[]; labelRm?: string[] }>,
): Promise<number> {
  const [ref] = ctx.args as [string];
  const f = ctx.flags;
  const client = await apiClient(ctx.host);
  const node = await client.json<
    NodeView & { Version: { Index: number }; Spec: { Labels?: Record<string, string> } }
  >("GET", `/nodes/${enc(await nodeRef(client, ref))}`);
  const { parseLabels } = await import("../options.js");
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

/** Set each node's role; one versioned update per node, a stale version retried once. */
async function setRole(ctx: CommandContext, role: "manager" | "worker"): Promise<number> {
  const [refs] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  let failed = 0;
  for (const ref of refs) {
    try {
      for (let attempt = 0; ; attempt++) {
        const node = await client.json<NodeView>("GET", `/nodes/${enc(await nodeRef(client, ref))}`);
        if (node.Spec.Role === role) {
          out(`Node ${ref} is already a ${role}.\n`);
          break;
        }
        try {
          await client.call("POST", `/nodes/${enc(node.ID)}/update`, {
            query: { version: node.Version.Index },
            body: { ...node.Spec, Role: role },
          });
        } catch (e) {
          if (attempt > 0 || !(e instanceof Error) || !/out of sequence/.test(e.message)) throw e;
          continue;
        }
        out(
          role === "manager"
            ? `Node ${ref} promoted to a manager in the cluster.\n`
            : `Manager ${ref} demoted in the cluster.\n`,
        );
        break;
      }
    } catch (e) {
      if (!(e instanceof DaemonError)) throw e;
      err(`${e.display}\n`);
      failed++;
    }
  }
  return failed > 0 ? 1 : 0;
}

const nodePromote = (ctx: CommandContext): Promise<number> => setRole(ctx, "manager");
const nodeDemote = (ctx: CommandContext): Promise<number> => setRole(ctx, "worker");

/** `node rm [--force] NODE...`: a worker that is down (any worker with --force) leaves the cluster. */
async function nodeRm(ctx: CommandContext<{ force?: boolean }>): Promise<number> {
  const [refs] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  const errors: string[] = [];
  for (const ref of refs) {
    try {
      await client.call("DELETE", `/nodes/${enc(await nodeRef(client, ref))}`, {
        query: { force: ctx.flags.force ? 1 : undefined },
      });
      out(`${ref}\n`);
    } catch (e) {
      if (!(e instanceof DaemonError)) throw e;
      errors.push(e.display);
    }
  }
  if (errors.length > 0) throw new CliError(errors.join("\n"));
  return 0;
}
