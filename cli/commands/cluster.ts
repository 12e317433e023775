// Cluster membership commands: cluster init/join/leave and join-token. The requests are the
// docker CLI's swarm ones, so either CLI drives the same cluster.

import type { Command } from "commander";
import type { ApiClient } from "../client.js";
import { act, add, apiClient, out, type CommandContext } from "../command.js";
import { UsageError } from "../errors.js";

/** `shoal cluster ...` (docker's `swarm`). */
export function clusterCommands(parent: Command): void {
  add(parent, "init")
    ?.description("Make this node a cluster's first manager")
    .option("--advertise-addr <address>", "Address other nodes reach this one at")
    .option("--listen-addr <address>", "Address the cluster API listens on", "0.0.0.0:2377")
    .action(act(clusterInit));
  add(parent, "join")
    ?.description("Join a cluster as a worker or a manager (the token decides)")
    .argument("<host:port>", "a manager's address")
    .option("--token <string>", "Token for entry into the cluster (`shoal cluster join-token` on a manager)")
    .option("--advertise-addr <address>", "Address other nodes reach this one at")
    .option("--listen-addr <address>", "Address this node listens on for the cluster", "0.0.0.0:2377")
    .action(act(clusterJoin));
  add(parent, "join-token")
    ?.description("Manage join tokens")
    .argument("<worker|manager>")
    .option("-q, --quiet", "Only display token")
    .option("--rotate", "Rotate join token")
    .action(act(clusterJoinToken));
  add(parent, "leave")
    ?.description("Leave the cluster")
    .option("-f, --force", "Leave even as the last manager (erases the cluster's state)")
    .action(act(clusterLeave));
}

async function clusterInit(
  ctx: CommandContext<{ advertiseAddr?: string; listenAddr?: string }>,
): Promise<number> {
  const id = await (
    await apiClient(ctx.host)
  ).json<string>("POST", "/swarm/init", {
    body: {
      ListenAddr: ctx.flags.listenAddr ?? "0.0.0.0:2377",
      AdvertiseAddr: ctx.flags.advertiseAddr ?? "",
    },
  });
  out(`Cluster initialized: current node (${id}) is now a manager.\n`);
  return 0;
}

async function clusterLeave(ctx: CommandContext<{ force?: boolean }>): Promise<number> {
  await (
    await apiClient(ctx.host)
  ).call("POST", "/swarm/leave", {
    query: { force: ctx.flags.force ? 1 : undefined },
  });
  out("Node left the cluster.\n");
  return 0;
}

/** `cluster join --token T [--advertise-addr A] [--listen-addr L] HOST:PORT`. */
async function clusterJoin(
  ctx: CommandContext<{ token?: string; advertiseAddr?: string; listenAddr?: string }>,
): Promise<number> {
  const [remote] = ctx.args as [string];
  const f = ctx.flags;
  if (!f.token)
    throw new UsageError(
      "joining needs the cluster's join token: pass --token (see `shoal cluster join-token worker` on a manager)",
    );
  if (!/^[^:\s]+(:\d+)?$/.test(remote) && !/^\[[0-9a-fA-F:]+\](:\d+)?$/.test(remote))
    throw new UsageError(`invalid manager address "${remote}": use HOST:PORT, for example 10.0.0.1:2377`);
  const client = await apiClient(ctx.host);
  await client.call("POST", "/swarm/join", {
    body: {
      JoinToken: f.token,
      RemoteAddrs: [remote],
      ListenAddr: f.listenAddr ?? "0.0.0.0:2377",
      AdvertiseAddr: f.advertiseAddr ?? "",
    },
  });
  const info = await client
    .json<{ Swarm?: { ControlAvailable?: boolean } }>("GET", "/info")
    .catch(() => ({}) as { Swarm?: { ControlAvailable?: boolean } });
  out(`This node joined a cluster as a ${info.Swarm?.ControlAvailable ? "manager" : "worker"}.\n`);
  return 0;
}

interface SwarmView {
  Version: { Index: number };
  Spec: Record<string, unknown>;
  JoinTokens: { Worker: string; Manager: string };
}

/** The address other nodes reach this manager at, as `docker swarm join-token` prints it. */
async function managerAddr(client: ApiClient): Promise<string> {
  const info = await client.json<{ Swarm?: { NodeID?: string; RemoteManagers?: Array<{ Addr: string }> } }>(
    "GET",
    "/info",
  );
  const id = info.Swarm?.NodeID;
  if (id) {
    const node = await client
      .json<{ ManagerStatus?: { Addr?: string } }>("GET", `/nodes/${encodeURIComponent(id)}`)
      .catch(() => undefined);
    if (node?.ManagerStatus?.Addr) return node.ManagerStatus.Addr;
  }
  return info.Swarm?.RemoteManagers?.[0]?.Addr ?? "";
}

/** `cluster join-token [-q] [--rotate] worker|manager`. */
async function clusterJoinToken(ctx: CommandContext<{ quiet?: boolean; rotate?: boolean }>): Promise<number> {
  const [role] = ctx.args as [string];
  if (role !== "worker" && role !== "manager")
    throw new UsageError(`unknown role "${role}": use worker or manager`);
  const client = await apiClient(ctx.host);
  if (ctx.flags.rotate) {
    const before = await client.json<SwarmView>("GET", "/swarm");
    await client.call("POST", "/swarm/update", {
      query: {
        version: before.Version.Index,
        rotateWorkerToken: role === "worker" ? "true" : "false",
        rotateManagerToken: role === "manager" ? "true" : "false",
        rotateManagerUnlockKey: "false",
      },
      body: before.Spec,
    });
    if (!ctx.flags.quiet) out(`Successfully rotated ${role} join token.\n\n`);
  }
  const swarm = await client.json<SwarmView>("GET", "/swarm");
  const token = role === "worker" ? swarm.JoinTokens.Worker : swarm.JoinTokens.Manager;
  if (ctx.flags.quiet) {
    out(`${token}\n`);
    return 0;
  }
  const addr = await managerAddr(client);
  out(
    `To add a ${role} to this cluster, run the following command:\n\n    shoal cluster join --token ${token} ${addr}\n\n`,
  );
  return 0;
}
