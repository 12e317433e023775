// Network commands: network create/ls/inspect/rm/prune/connect/disconnect, and `port`.

import type { Command } from "commander";
import {
  act,
  add,
  collect,
  apiClient,
  filtersJson,
  forEachTarget,
  out,
  type CommandContext,
} from "../command.js";
import { UsageError } from "../errors.js";
import { inspectSubcommand } from "./inspect.js";
import { deletedList, prune, type PruneFlags } from "./prune.js";

const enc = encodeURIComponent;

export function networkCommands(parent: Command): void {
  add(parent, "create")
    ?.description("Create a network")
    .argument("<name>")
    .option("-d, --driver <string>", "Driver to manage the Network", "bridge")
    .option("--subnet <list>", "Subnet in CIDR format that represents a network segment", collect)
    .option("--gateway <list>", "IPv4 Gateway for the master subnet", collect)
    .option("--ip-range <list>", "Allocate container ip from a sub-range", collect)
    .option("--internal", "Restrict external access to the network")
    .option("--attachable", "Enable manual container attachment")
    .option("--ipv6", "Enable IPv6 networking (not supported yet)")
    .option("--label <list>", "Set metadata on a network", collect)
    .option("-o, --opt <list>", "Set driver specific options", collect)
    .action(act(create));

  add(parent, "ls", ["list"])
    ?.aliases(["list"])
    .description("List networks")
    .option("-q, --quiet", "Only display network IDs")
    .option("-f, --filter <filter>", "Provide filter values (e.g. 'driver=bridge')", collect)
    .option("--format <string>", "Format output using a custom template")
    .option("--no-trunc", "Do not truncate the output")
    .action(act(ls));

  inspectSubcommand(parent, "network");

  add(parent, "rm", ["remove"])
    ?.aliases(["remove"])
    .description("Remove one or more networks")
    .argument("<network...>")
    .option("-f, --force", "Do not error if the network does not exist")
    .action(act(rm));

  add(parent, "prune")
    ?.description("Remove all unused networks")
    .option("-f, --force", "Do not prompt for confirmation")
    .option("--filter <filter>", "Provide filter values (e.g. 'label=<key>=<value>')", collect)
    .action(act(pruneNetworks));

  add(parent, "connect")
    ?.description("Connect a container to a network")
    .argument("<network>")
    .argument("<container>")
    .option("--alias <list>", "Add network-scoped alias for the container", collect)
    .option("--ip <string>", "IPv4 address (e.g., 172.30.100.104)")
    .action(act(connect));

  add(parent, "disconnect")
    ?.description("Disconnect a container from a network")
    .argument("<network>")
    .argument("<container>")
    .option("-f, --force", "Force the container to disconnect from a network")
    .action(act(disconnect));
}

/** `shoal port` (top level only). */
export function portCommand(program: Command): void {
  add(program, "port")
    ?.description("List port mappings or a specific mapping for the container")
    .argument("<container>")
    .argument("[port]", "PRIVATE_PORT[/PROTO]")
    .action(act(port));
}

interface NetworkView {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
  Created: string;
  Internal: boolean;
  Labels: Record<string, string>;
  IPAM: { Config: Array<{ Subnet: string; Gateway: string }> };
}

interface NetworkCreateFlags {
  driver?: string;
  subnet?: string[];
  gateway?: string[];
  ipRange?: string[];
  internal?: boolean;
  attachable?: boolean;
  label?: string[];
  opt?: string[];
  ipv6?: boolean;
}

function keyValues(values: string[] | undefined, flag: string): Record<string, string> {
  const outMap: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid ${flag} "${v}": use key=value`);
    outMap[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return outMap;
}

async function create(ctx: CommandContext<NetworkCreateFlags>): Promise<number> {
  const [name] = ctx.args as [string];
  const f = ctx.flags;
  if ((f.subnet?.length ?? 0) > 1) throw new UsageError("one --subnet per network is supported");
  if ((f.gateway?.length ?? 0) > 0 && !f.subnet?.length)
    throw new UsageError("--gateway needs --subnet: give the subnet the gateway belongs to");
  const config = f.subnet?.length
    ? [{ Subnet: f.subnet[0], Gateway: f.gateway?.[0], IPRange: f.ipRange?.[0] }]
    : [];
  const { parseLabels } = await import("../options.js");
  const r = await (
    await apiClient(ctx.host)
  ).json<{ Id: string }>("POST", "/networks/create", {
    body: {
      Name: name,
      Driver: f.driver ?? "bridge",
      Internal: Boolean(f.internal),
      Attachable: Boolean(f.attachable),
      EnableIPv6: Boolean(f.ipv6),
      Labels: parseLabels(f.label ?? []),
      Options: keyValues(f.opt, "--opt"),
      IPAM: { Driver: "default", Config: config },
    },
  });
  out(`${r.Id}\n`);
  return 0;
}

interface NetworkLsFlags {
  quiet?: boolean;
  format?: string;
  filter?: string[];
  trunc?: boolean;
}

async function ls(ctx: CommandContext<NetworkLsFlags>): Promise<number> {
  const f = ctx.flags;
  const list = await (
    await apiClient(ctx.host)
  ).json<NetworkView[]>("GET", "/networks", {
    query: { filters: filtersJson(f.filter) },
  });
  const sorted = [...(list ?? [])].sort((a, b) => a.Name.localeCompare(b.Name));
  const { renderList } = await import("../format/table.js");
  const trunc = f.trunc !== false;
  const rows = sorted.map((n) => ({
    ID: trunc ? n.Id.slice(0, 12) : n.Id,
    Name: n.Name,
    Driver: n.Driver,
    Scope: n.Scope,
    CreatedAt: n.Created,
    Internal: String(n.Internal),
    IPv6: "false",
    Labels: Object.entries(n.Labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(","),
  }));
  out(
    renderList(rows, f.quiet ? "{{.ID}}" : f.format, {
      defaultFormat: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
      headers: { ID: "NETWORK ID", Name: "NAME", Driver: "DRIVER", Scope: "SCOPE", CreatedAt: "CREATED AT" },
    }),
  );
  return 0;
}

async function rm(ctx: CommandContext): Promise<number> {
  const [names] = ctx.args as [string[]];
  const client = await apiClient(ctx.host);
  return forEachTarget(names, async (name) => {
    await client.call("DELETE", `/networks/${enc(name)}`);
    out(`${name}\n`);
  });
}

function pruneNetworks(ctx: CommandContext<PruneFlags>): Promise<number> {
  return prune<{ NetworksDeleted: string[] | null }>(ctx, {
    warning: "WARNING! This will remove all custom networks not used by at least one container.",
    path: "/networks/prune",
    deleted: (r) => deletedList("Networks", false)(r.NetworksDeleted),
  });
}

async function connect(ctx: CommandContext<{ alias?: string[]; ip?: string }>): Promise<number> {
  const [network, container] = ctx.args as [string, string];
  const endpoint: Record<string, unknown> = {};
  if (ctx.flags.alias?.length) endpoint.Aliases = [...ctx.flags.alias];
  if (ctx.flags.ip) endpoint.IPAMConfig = { IPv4Address: ctx.flags.ip };
  await (
    await apiClient(ctx.host)
  ).call("POST", `/networks/${enc(network)}/connect`, {
    body: { Container: container, EndpointConfig: endpoint },
  });
  return 0;
}

async function disconnect(ctx: CommandContext<{ force?: boolean }>): Promise<number> {
  const [network, container] = ctx.args as [string, string];
  await (
    await apiClient(ctx.host)
  ).call("POST", `/networks/${enc(network)}/disconnect`, {
    body: { Container: container, Force: Boolean(ctx.flags.force) },
  });
  return 0;
}

/** `shoal port CONTAINER [PRIVATE_PORT[/PROTO]]`, in docker's wording. */
async function port(ctx: CommandContext): Promise<number> {
  const [container, wanted] = ctx.args as [string, string | undefined];
  const c = await (
    await apiClient(ctx.host)
  ).json<{
    NetworkSettings: { Ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> };
  }>("GET", `/containers/${enc(container)}/json`);
  const ports = c.NetworkSettings.Ports ?? {};
  if (wanted !== undefined) {
    const key = wanted.includes("/") ? wanted : `${wanted}/tcp`;
    const bindings = ports[key];
    if (!bindings || bindings.length === 0)
      throw new UsageError(`Error: No public port '${key}' published for ${container}`);
    for (const b of bindings) out(`${b.HostIp}:${b.HostPort}\n`);
    return 0;
  }
  const keys = Object.keys(ports).sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
  for (const key of keys) for (const b of ports[key] ?? []) out(`${key} -> ${b.HostIp}:${b.HostPort}\n`);
  return 0;
}
