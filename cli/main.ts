#!/usr/bin/env node
// The shoal CLI. Only commander loads up front; each command's module is imported when the
// command runs, so `shoal run --rm busybox true` pays for nothing it does not use.

import { Command, CommanderError, Option } from "commander";
import type { CommandContext } from "./context.js";

type Handler = (ctx: CommandContext<never>) => Promise<number>;
type Loader = () => Promise<Handler>;

let exitCode = 0;

/** Commander hands (...positionals, options, command) to actions. */
function act(load: Loader): (...a: unknown[]) => Promise<void> {
  return async (...a: unknown[]) => {
    const cmd = a[a.length - 1] as Command;
    const flags = a[a.length - 2] as never;
    const args = a.slice(0, -2);
    const host = (cmd.optsWithGlobals() as { host?: string }).host;
    const handler = await load();
    exitCode = await handler({ args, flags, host });
  };
}

/**
 * The command words on the command line (`shoal container ls` → ["container", "ls"]), so
 * that only those commands get defined: defining all of them costs a few milliseconds of
 * every start-up. Without words (help, -v), everything is defined.
 */
function commandWords(argv: string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i];
    if (a === "-H" || a === "--host") i++;
    else if (a.startsWith("-")) {
      if (words.length === 0 && !a.startsWith("--host=") && !/^-H./.test(a)) return [];
      if (words.length === 1) break;
    } else words.push(a);
  }
  return words;
}

const groups = new Set(["container", "image", "system", "network", "volume", "cluster", "service", "node"]);
const topLevel = new Set([
  ...groups,
  ...["run", "create", "start", "stop", "restart", "kill", "rm", "ps", "wait", "logs", "rename", "inspect"],
  ...["images", "rmi", "tag", "load", "save", "import", "version", "info", "port"],
  ...["pull", "push", "login", "logout"],
  "build",
]);
let selected: string[] = [];

/** Define a subcommand only when the command line may need it. */
function add(parent: Command, name: string, aliases: string[] = []): Command | undefined {
  const level = parent.parent ? 1 : 0;
  const word = selected[level];
  if (word !== undefined && word !== name && !aliases.includes(word)) return undefined;
  return parent.command(name);
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

const mod = {
  run: () => import("./commands/run.js"),
  container: () => import("./commands/container.js"),
  image: () => import("./commands/image.js"),
  registry: () => import("./commands/registry.js"),
  build: () => import("./commands/build.js"),
  inspect: () => import("./commands/inspect.js"),
  system: () => import("./commands/system.js"),
  network: () => import("./commands/network.js"),
  service: () => import("./commands/service.js"),
  node: () => import("./commands/node.js"),
  cluster: () => import("./commands/cluster.js"),
  volume: () => import("./commands/volume.js"),
};

function runFlags(cmd: Command, withDetach: boolean): Command {
  if (withDetach) cmd.option("-d, --detach", "Run container in background and print container ID");
  return cmd
    .option("--rm", "Automatically remove the container when it exits")
    .option("--name <string>", "Assign a name to the container")
    .option("-e, --env <list>", "Set environment variables", collect)
    .option("--env-file <list>", "Read in a file of environment variables", collect)
    .option("-w, --workdir <string>", "Working directory inside the container")
    .option("-u, --user <string>", "Username or UID (format: <name|uid>[:<group|gid>])")
    .option("--entrypoint <string>", "Overwrite the default ENTRYPOINT of the image")
    .option("-h, --hostname <string>", "Container host name")
    .option("-l, --label <list>", "Set meta data on a container", collect)
    .option("--label-file <list>", "Read in a line delimited file of labels", collect)
    .option("--read-only", "Mount the container's root filesystem as read only")
    .option("--cap-add <list>", "Add Linux capabilities", collect)
    .option("--cap-drop <list>", "Drop Linux capabilities", collect)
    .option("--privileged", "Give extended privileges to this container")
    .option("-m, --memory <bytes>", "Memory limit")
    .option("--memory-swap <bytes>", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option("--cpus <decimal>", "Number of CPUs")
    .option("-c, --cpu-shares <int>", "CPU shares (relative weight)")
    .option("--pids-limit <int>", "Tune container pids limit (set -1 for unlimited)")
    .option("--init", "Run an init inside the container that forwards signals and reaps processes")
    .option("--restart <string>", "Restart policy to apply when a container exits", "no")
    .option("--stop-signal <string>", "Signal to stop the container")
    .option("--stop-timeout <int>", "Timeout (in seconds) to stop a container")
    .option("--ulimit <ulimit>", "Ulimit options", collect)
    .addOption(new Option("--network <mode>", "Connect a container to a network").argParser(collect))
    .addOption(new Option("--net <mode>").hideHelp().argParser(collect))
    .option("-p, --publish <list>", "Publish a container's port(s) to the host", collect)
    .option("-P, --publish-all", "Publish all exposed ports to random ports")
    .option("--expose <list>", "Expose a port or a range of ports", collect)
    .option("--ip <address>", "IPv4 address (e.g., 172.30.100.104)")
    .option("--network-alias <list>", "Add network-scoped alias for the container", collect)
    .option("--dns <list>", "Set custom DNS servers", collect)
    .option("--dns-search <list>", "Set custom DNS search domains", collect)
    .option("--dns-option <list>", "Set DNS options", collect)
    .option("--add-host <list>", "Add a custom host-to-IP mapping (host:ip)", collect)
    .option("-v, --volume <list>", "Bind mount a volume", collect)
    .option("--mount <mount>", "Attach a filesystem mount to the container", collect)
    .option("--tmpfs <list>", "Mount a tmpfs directory", collect)
    .option("-i, --interactive", "Keep STDIN open even if not attached (not supported yet)")
    .option("-t, --tty", "Allocate a pseudo-TTY (not supported yet)");
}

/** Containers: defined at top level (`shoal ps`) and under `shoal container` (`container ls`). */
function containerCommands(parent: Command, grouped: boolean): void {
  const run = add(parent, "run");
  if (run) {
    runFlags(run.description("Create and run a new container from an image"), true)
      .argument("<image>")
      .argument("[command...]")
      .passThroughOptions()
      .action(act(async () => (await mod.run()).run as Handler));
  }

  const create = add(parent, "create");
  if (create) {
    runFlags(create.description("Create a new container"), false)
      .argument("<image>")
      .argument("[command...]")
      .passThroughOptions()
      .action(act(async () => (await mod.run()).createCmd as Handler));
  }

  add(parent, "start")
    ?.description("Start one or more stopped containers")
    .argument("<container...>")
    .option("-a, --attach", "Attach STDOUT/STDERR and forward signals")
    .option("-i, --interactive", "Attach container's STDIN (not supported yet)")
    .action(act(async () => (await mod.run()).start as Handler));

  add(parent, "stop")
    ?.description("Stop one or more running containers")
    .argument("<container...>")
    .option("-t, --time <int>", "Seconds to wait before killing the container")
    .option("-s, --signal <string>", "Signal to send to the container")
    .action(act(async () => (await mod.container()).stop as Handler));

  add(parent, "restart")
    ?.description("Restart one or more containers")
    .argument("<container...>")
    .option("-t, --time <int>", "Seconds to wait before killing the container")
    .option("-s, --signal <string>", "Signal to send to the container")
    .action(act(async () => (await mod.container()).restart as Handler));

  add(parent, "kill")
    ?.description("Kill one or more running containers")
    .argument("<container...>")
    .option("-s, --signal <string>", "Signal to send to the container")
    .action(act(async () => (await mod.container()).kill as Handler));

  const rm = add(parent, "rm")
    ?.description("Remove one or more containers")
    .argument("<container...>")
    .option("-f, --force", "Force the removal of a running container (uses SIGKILL)")
    .option("-v, --volumes", "Remove anonymous volumes associated with the container")
    .action(act(async () => (await mod.container()).rm as Handler));
  if (grouped) rm?.alias("remove");

  const ps = add(parent, grouped ? "ls" : "ps", grouped ? ["list", "ps"] : [])
    ?.description("List containers")
    .option("-a, --all", "Show all containers (default shows just running)")
    .option("-q, --quiet", "Only display container IDs")
    .option("-n, --last <int>", "Show n last created containers (includes all states)")
    .option("-l, --latest", "Show the latest created container (includes all states)")
    .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
    .option(
      "--format <string>",
      "Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)",
    )
    .option("--no-trunc", "Don't truncate output")
    .option("-s, --size", "Display total file sizes")
    .option("--json", "Print the Engine API's JSON")
    .action(act(async () => (await mod.container()).ps as Handler));
  if (grouped) ps?.aliases(["list", "ps"]);

  add(parent, "wait")
    ?.description("Block until one or more containers stop, then print their exit codes")
    .argument("<container...>")
    .action(act(async () => (await mod.container()).wait as Handler));

  add(parent, "logs")
    ?.description("Fetch the logs of a container")
    .argument("<container>")
    .option("-f, --follow", "Follow log output")
    .option("-n, --tail <string>", "Number of lines to show from the end of the logs", "all")
    .option(
      "--since <string>",
      "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)",
    )
    .option("--until <string>", "Show logs before a timestamp or relative time")
    .option("-t, --timestamps", "Show timestamps")
    .option("--details", "Show extra details provided to logs")
    .action(act(async () => (await mod.container()).logs as Handler));

  add(parent, "rename")
    ?.description("Rename a container")
    .argument("<container>")
    .argument("<new-name>")
    .action(act(async () => (await mod.container()).rename as Handler));

  if (grouped) {
    add(parent, "inspect")
      ?.description("Display detailed information on one or more containers")
      .argument("<container...>")
      .option("-f, --format <string>", "Format output using a custom template")
      .option("-s, --size", "Display total file sizes")
      .option("--json", "Print the Engine API's JSON")
      .action(act(async () => ((ctx) => mod.inspect().then((m) => m.inspect(ctx, "container"))) as Handler));

    add(parent, "prune")
      ?.description("Remove all stopped containers")
      .option("-f, --force", "Do not prompt for confirmation")
      .option("--filter <filter>", "Provide filter values (e.g. 'until=<timestamp>')", collect)
      .action(act(async () => (await mod.container()).prune as Handler));
  }
}

function imageCommands(parent: Command, grouped: boolean): void {
  const ls = add(parent, grouped ? "ls" : "images", grouped ? ["list"] : [])
    ?.description("List images")
    .argument("[repository]", "REPOSITORY[:TAG]")
    .option("-a, --all", "Show all images (default hides intermediate images)")
    .option("-q, --quiet", "Only show image IDs")
    .option("--digests", "Show digests")
    .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
    .option(
      "--format <string>",
      "Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)",
    )
    .option("--no-trunc", "Don't truncate output")
    .option("--json", "Print the Engine API's JSON")
    .action(act(async () => (await mod.image()).images as Handler));
  if (grouped) ls?.aliases(["list"]);

  const rmi = add(parent, grouped ? "rm" : "rmi", grouped ? ["remove", "rmi"] : [])
    ?.description("Remove one or more images")
    .argument("<image...>")
    .option("-f, --force", "Force removal of the image")
    .option("--no-prune", "Do not delete untagged parents")
    .action(act(async () => (await mod.image()).rmi as Handler));
  if (grouped) rmi?.aliases(["remove", "rmi"]);

  add(parent, "tag")
    ?.description("Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    .argument("<source>", "SOURCE_IMAGE[:TAG]")
    .argument("<target>", "TARGET_IMAGE[:TAG]")
    .action(act(async () => (await mod.image()).tag as Handler));

  add(parent, "load")
    ?.description("Load an image from a tar archive or STDIN")
    .option("-i, --input <string>", "Read from tar archive file, instead of STDIN")
    .option("-q, --quiet", "Suppress the load output")
    .action(act(async () => (await mod.image()).load as Handler));

  add(parent, "save")
    ?.description("Save one or more images to a tar archive (streamed to STDOUT by default)")
    .argument("<image...>")
    .option("-o, --output <string>", "Write to a file, instead of STDOUT")
    .action(act(async () => (await mod.image()).save as Handler));

  add(parent, "pull")
    ?.description("Download an image from a registry")
    .argument("<name>", "NAME[:TAG|@DIGEST]")
    .option("--platform <string>", "Set platform if server is multi-platform capable")
    .option("-q, --quiet", "Suppress verbose output")
    .action(act(async () => (await mod.registry()).pull as Handler));

  add(parent, "push")
    ?.description("Upload an image to a registry")
    .argument("<name>", "NAME[:TAG]")
    .option("-a, --all-tags", "Push all tags of an image to the repository")
    .option("-q, --quiet", "Suppress verbose output")
    .action(act(async () => (await mod.registry()).push as Handler));

  add(parent, "build")
    ?.description("Build an image from a Dockerfile")
    .argument("<path>", "PATH | -")
    .option("-t, --tag <name:tag>", "Name and optionally a tag in the 'name:tag' format", collect)
    .option("-f, --file <string>", "Name of the Dockerfile (default: 'PATH/Dockerfile')")
    .option("--build-arg <list>", "Set build-time variables", collect)
    .option("--target <string>", "Set the target build stage to build")
    .option("--no-cache", "Do not use cache when building the image")
    .option("--label <list>", "Set metadata for an image", collect)
    .option("-q, --quiet", "Suppress the build output and print image ID on success")
    .option("--iidfile <string>", "Write the image ID to the file")
    .option("--rm", "Remove intermediate containers after a successful build (default true)")
    .option("--no-rm", "Keep the containers of successful RUN steps")
    .option("--force-rm", "Always remove intermediate containers")
    .action(act(async () => (await mod.build()).build as Handler));

  add(parent, "import")
    ?.description("Import the contents from a tarball to create a filesystem image")
    .argument("<file>", "file|URL|-")
    .argument("[repository]", "REPOSITORY[:TAG]")
    .option("-c, --change <list>", "Apply Dockerfile instruction to the created image", collect)
    .option("-m, --message <string>", "Set commit message for imported image")
    .option("--platform <string>", "Set platform if server is multi-platform capable")
    .action(act(async () => (await mod.image()).importCmd as Handler));

  if (grouped) {
    add(parent, "inspect")
      ?.description("Display detailed information on one or more images")
      .argument("<image...>")
      .option("-f, --format <string>", "Format output using a custom template")
      .option("--json", "Print the Engine API's JSON")
      .action(act(async () => ((ctx) => mod.inspect().then((m) => m.inspect(ctx, "image"))) as Handler));

    add(parent, "prune")
      ?.description("Remove unused images")
      .option("-a, --all", "Remove all unused images, not just dangling ones")
      .option("-f, --force", "Do not prompt for confirmation")
      .option("--filter <filter>", "Provide filter values (e.g. 'until=<timestamp>')", collect)
      .action(act(async () => (await mod.image()).prune as Handler));
  }
}

function networkCommands(parent: Command): void {
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
    .action(act(async () => (await mod.network()).create as Handler));

  add(parent, "ls", ["list"])
    ?.aliases(["list"])
    .description("List networks")
    .option("-q, --quiet", "Only display network IDs")
    .option("-f, --filter <filter>", "Provide filter values (e.g. 'driver=bridge')", collect)
    .option("--format <string>", "Format output using a custom template")
    .option("--no-trunc", "Do not truncate the output")
    .action(act(async () => (await mod.network()).ls as Handler));

  add(parent, "inspect")
    ?.description("Display detailed information on one or more networks")
    .argument("<network...>")
    .option("-f, --format <string>", "Format output using a custom template")
    .option("--json", "Print the Engine API's JSON")
    .action(act(async () => ((ctx) => mod.inspect().then((m) => m.inspect(ctx, "network"))) as Handler));

  add(parent, "rm", ["remove"])
    ?.aliases(["remove"])
    .description("Remove one or more networks")
    .argument("<network...>")
    .option("-f, --force", "Do not error if the network does not exist")
    .action(act(async () => (await mod.network()).rm as Handler));

  add(parent, "prune")
    ?.description("Remove all unused networks")
    .option("-f, --force", "Do not prompt for confirmation")
    .option("--filter <filter>", "Provide filter values (e.g. 'label=<key>=<value>')", collect)
    .action(act(async () => (await mod.network()).prune as Handler));

  add(parent, "connect")
    ?.description("Connect a container to a network")
    .argument("<network>")
    .argument("<container>")
    .option("--alias <list>", "Add network-scoped alias for the container", collect)
    .option("--ip <string>", "IPv4 address (e.g., 172.30.100.104)")
    .action(act(async () => (await mod.network()).connect as Handler));

  add(parent, "disconnect")
    ?.description("Disconnect a container from a network")
    .argument("<network>")
    .argument("<container>")
    .option("-f, --force", "Force the container to disconnect from a network")
    .action(act(async () => (await mod.network()).disconnect as Handler));
}

function volumeCommands(parent: Command): void {
  add(parent, "create")
    ?.description("Create a volume")
    .argument("[volume]")
    .option("-d, --driver <string>", "Specify volume driver name", "local")
    .option("--label <list>", "Set metadata for a volume", collect)
    .option("-o, --opt <map>", "Set driver specific options", collect)
    .addOption(new Option("--name <string>", "Specify volume name").hideHelp())
    .action(act(async () => (await mod.volume()).create as Handler));

  add(parent, "ls", ["list"])
    ?.aliases(["list"])
    .description("List volumes")
    .option("-q, --quiet", "Only display volume names")
    .option("-f, --filter <filter>", "Provide filter values (e.g. 'dangling=true')", collect)
    .option(
      "--format <string>",
      "Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)",
    )
    .option("--json", "Print the Engine API's JSON")
    .action(act(async () => (await mod.volume()).ls as Handler));

  add(parent, "inspect")
    ?.description("Display detailed information on one or more volumes")
    .argument("<volume...>")
    .option("-f, --format <string>", "Format output using a custom template")
    .option("--json", "Print the Engine API's JSON")
    .action(act(async () => (await mod.volume()).inspect as Handler));

  add(parent, "rm", ["remove"])
    ?.aliases(["remove"])
    .description("Remove one or more volumes")
    .argument("<volume...>")
    .option("-f, --force", "Force the removal of one or more volumes (no error when missing)")
    .action(act(async () => (await mod.volume()).rm as Handler));

  add(parent, "prune")
    ?.description("Remove unused local volumes")
    .option("-a, --all", "Remove all unused volumes, not just anonymous ones")
    .option("-f, --force", "Do not prompt for confirmation")
    .option("--filter <filter>", "Provide filter values (e.g. 'label=<label>')", collect)
    .action(act(async () => (await mod.volume()).prune as Handler));
}

function clusterCommands(parent: Command): void {
  add(parent, "init")
    ?.description("Make this node a cluster's first manager")
    .option("--advertise-addr <address>", "Address other nodes reach this one at")
    .option("--listen-addr <address>", "Address the cluster API listens on", "0.0.0.0:2377")
    .action(act(async () => (await mod.cluster()).clusterInit as Handler));
  add(parent, "join")
    ?.description("Join a cluster as a worker or a manager (the token decides)")
    .argument("<host:port>", "a manager's address")
    .option("--token <string>", "Token for entry into the cluster (`shoal cluster join-token` on a manager)")
    .option("--advertise-addr <address>", "Address other nodes reach this one at")
    .option("--listen-addr <address>", "Address this node listens on for the cluster", "0.0.0.0:2377")
    .action(act(async () => (await mod.cluster()).clusterJoin as Handler));
  add(parent, "join-token")
    ?.description("Manage join tokens")
    .argument("<worker|manager>")
    .option("-q, --quiet", "Only display token")
    .option("--rotate", "Rotate join token")
    .action(act(async () => (await mod.cluster()).clusterJoinToken as Handler));
  add(parent, "leave")
    ?.description("Leave the cluster")
    .option("-f, --force", "Leave even as the last manager (erases the cluster's state)")
    .action(act(async () => (await mod.cluster()).clusterLeave as Handler));
}

function nodeCommands(parent: Command): void {
  add(parent, "ls", ["list"])
    ?.aliases(["list"])
    .description("List nodes in the cluster")
    .option("-q, --quiet", "Only display IDs")
    .option("--format <string>", "Format output using a custom template")
    .action(act(async () => (await mod.node()).nodeLs as Handler));
  add(parent, "inspect")
    ?.description("Display detailed information on one or more nodes")
    .argument("<node...>", "node id, hostname or self")
    .option("-f, --format <string>", "Format output using a custom template")
    .action(act(async () => (await mod.node()).nodeInspect as Handler));
  add(parent, "update")
    ?.description("Update a node")
    .argument("<node>")
    .option("--availability <string>", 'Availability of the node ("active", "pause", "drain")')
    .option("--label-add <list>", "Add or update a node label (key=value)", collect)
    .option("--label-rm <list>", "Remove a node label if exists", collect)
    .action(act(async () => (await mod.node()).nodeUpdate as Handler));
  add(parent, "promote")
    ?.description("Promote one or more nodes to manager in the cluster")
    .argument("<node...>", "node id, hostname or self")
    .action(act(async () => (await mod.node()).nodePromote as Handler));
  add(parent, "demote")
    ?.description("Demote one or more nodes from manager in the cluster")
    .argument("<node...>", "node id, hostname or self")
    .action(act(async () => (await mod.node()).nodeDemote as Handler));
  add(parent, "rm", ["remove"])
    ?.aliases(["remove"])
    .description("Remove one or more nodes from the cluster")
    .argument("<node...>")
    .option("-f, --force", "Force remove a node from the cluster")
    .action(act(async () => (await mod.node()).nodeRm as Handler));
}

function serviceCommands(parent: Command): void {
  add(parent, "create")
    ?.description("Create a new service")
    .argument("<image>")
    .argument("[command...]")
    .passThroughOptions()
    .option("--name <string>", "Service name")
    .option("--replicas <uint>", "Number of tasks")
    .option("--mode <string>", "Service mode (replicated or global)", "replicated")
    .option("--constraint <list>", "Placement constraints", collect)
    .option("--reserve-cpu <decimal>", "Reserve CPUs")
    .option("--reserve-memory <bytes>", "Reserve Memory")
    .option("--limit-cpu <decimal>", "Limit CPUs")
    .option("--limit-memory <bytes>", "Limit Memory")
    .option("--restart-condition <string>", 'Restart when condition is met ("none", "on-failure", "any")')
    .option("--restart-delay <duration>", "Delay between restart attempts")
    .option("--restart-max-attempts <uint>", "Maximum number of restarts before giving up")
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
    .action(act(async () => (await mod.service()).serviceCreate as Handler));
  add(parent, "ls", ["list"])
    ?.aliases(["list"])
    .description("List services")
    .option("-q, --quiet", "Only display IDs")
    .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
    .option("--format <string>", "Format output using a custom template")
    .action(act(async () => (await mod.service()).serviceLs as Handler));
  add(parent, "ps")
    ?.description("List the tasks of one or more services")
    .argument("<service...>")
    .option("-q, --quiet", "Only display task IDs")
    .option("--format <string>", "Format output using a custom template")
    .option("--no-trunc", "Do not truncate output")
    .action(act(async () => (await mod.service()).servicePs as Handler));
  add(parent, "inspect")
    ?.description("Display detailed information on one or more services")
    .argument("<service...>")
    .option("-f, --format <string>", "Format output using a custom template")
    .action(act(async () => (await mod.service()).serviceInspect as Handler));
  add(parent, "scale")
    ?.description("Scale one or multiple replicated services")
    .argument("<service=replicas...>")
    .option("-d, --detach", "Exit immediately instead of waiting for the service to converge")
    .action(act(async () => (await mod.service()).serviceScale as Handler));
  add(parent, "update")
    ?.description("Update a service (a changed task template replaces its tasks, one at a time by default)")
    .argument("<service>")
    .option("--image <string>", "Service image tag")
    .option("--replicas <uint>", "Number of tasks")
    .option("--env-add <list>", "Add or update an environment variable", collect)
    .option("--env-rm <list>", "Remove an environment variable", collect)
    .option("--label-add <list>", "Add or update a service label", collect)
    .option("--label-rm <list>", "Remove a label by its key", collect)
    .option("--constraint-add <list>", "Add or update a placement constraint", collect)
    .option("--constraint-rm <list>", "Remove a constraint", collect)
    .option("--reserve-cpu <decimal>", "Reserve CPUs")
    .option("--reserve-memory <bytes>", "Reserve Memory")
    .option("--limit-cpu <decimal>", "Limit CPUs")
    .option("--limit-memory <bytes>", "Limit Memory")
    .option("--restart-condition <string>", 'Restart when condition is met ("none", "on-failure", "any")')
    .option("--restart-delay <duration>", "Delay between restart attempts")
    .option("--restart-max-attempts <uint>", "Maximum number of restarts before giving up")
    .option(
      "--update-parallelism <uint>",
      "Maximum number of tasks updated simultaneously (0 to update all at once)",
    )
    .option("--force", "Force update even if no changes require it")
    .option("--rollback", "Rollback to previous specification")
    .option("-d, --detach", "Exit immediately instead of waiting for the service to converge")
    .action(act(async () => (await mod.service()).serviceUpdate as Handler));
  add(parent, "logs")
    ?.description("Fetch the logs of a service's tasks")
    .argument("<service>")
    .option("-f, --follow", "Follow log output")
    .option("-n, --tail <string>", "Number of lines to show from the end of the logs", "all")
    .option("-t, --timestamps", "Show timestamps")
    .action(act(async () => (await mod.service()).serviceLogs as Handler));
  add(parent, "rm", ["remove"])
    ?.aliases(["remove"])
    .description("Remove one or more services")
    .argument("<service...>")
    .action(act(async () => (await mod.service()).serviceRm as Handler));
}

function systemCommands(parent: Command): void {
  add(parent, "version")
    ?.description("Show the shoal version information")
    .option("-f, --format <string>", "Format output using a custom template")
    .option("--json", "Print the Engine API's JSON")
    .action(act(async () => (await mod.system()).version as Handler));

  add(parent, "info")
    ?.description("Display system-wide information")
    .option("-f, --format <string>", "Format output using a custom template")
    .option("--json", "Print the Engine API's JSON")
    .action(act(async () => (await mod.system()).info as Handler));
}

function buildProgram(argv: string[]): Command {
  selected = commandWords(argv);
  // Unknown words (typos, `help`) define everything so that help and suggestions are complete.
  if (selected.length > 0 && !topLevel.has(selected[0])) selected = [];
  // A group without a known subcommand word (`shoal container --help`) shows all of them.
  if (selected.length > 0 && groups.has(selected[0]) && selected.length < 2) selected = [selected[0]];
  const program = new Command("shoal");
  program
    .description("A Docker-compatible container engine and orchestrator")
    .usage("[OPTIONS] COMMAND")
    .helpOption("--help", "Print usage")
    .exitOverride()
    .enablePositionalOptions()
    .option("-H, --host <host>", "Daemon socket to connect to (unix:///path or tcp://host:port)")
    .option("-v, --version", "Print version information and quit")
    .argument("[command]")
    .action(async (command: string | undefined, opts: { version?: boolean }) => {
      if (command !== undefined && command !== "help") {
        process.stderr.write(`shoal: '${command}' is not a shoal command.\nSee 'shoal --help'\n`);
        exitCode = 1;
        return;
      }
      if (command === "help" || !opts.version) program.help();
      const { clientVersion } = await import("./commands/system.js");
      process.stdout.write(`shoal version ${clientVersion()}\n`);
    });

  containerCommands(program, false);
  imageCommands(program, false);
  systemCommands(program);

  add(program, "inspect")
    ?.description("Return low-level information on shoal objects")
    .argument("<name...>", "container or image names or IDs")
    .option("-f, --format <string>", "Format output using a custom template")
    .option("--type <string>", "Only inspect objects of the given type (container or image)")
    .option("-s, --size", "Display total file sizes if the type is container")
    .option("--json", "Print the Engine API's JSON")
    .action(act(async () => (await mod.inspect()).inspect as Handler));

  add(program, "login")
    ?.description("Log in to a registry (Docker Hub when no server is given)")
    .argument("[server]")
    .option("-u, --username <string>", "Username")
    .option("-p, --password <string>", "Password")
    .option("--password-stdin", "Take the password from stdin")
    .action(act(async () => (await mod.registry()).login as Handler));

  add(program, "logout")
    ?.description("Log out from a registry (Docker Hub when no server is given)")
    .argument("[server]")
    .action(act(async () => (await mod.registry()).logout as Handler));

  add(program, "port")
    ?.description("List port mappings or a specific mapping for the container")
    .argument("<container>")
    .argument("[port]", "PRIVATE_PORT[/PROTO]")
    .action(act(async () => (await mod.network()).port as Handler));

  const cluster = add(program, "cluster")?.description("Manage the cluster (Docker's swarm)");
  if (cluster) clusterCommands(cluster);
  const service = add(program, "service")?.description("Manage services");
  if (service) serviceCommands(service);
  const node = add(program, "node")?.description("Manage cluster nodes");
  if (node) nodeCommands(node);

  const network = add(program, "network")?.description("Manage networks");
  if (network) networkCommands(network);
  const volume = add(program, "volume")?.description("Manage volumes");
  if (volume) volumeCommands(volume);

  const container = add(program, "container")?.description("Manage containers");
  if (container) containerCommands(container, true);
  const image = add(program, "image")?.description("Manage images");
  if (image) imageCommands(image, true);
  const system = add(program, "system")?.description("Manage shoal");
  if (system) systemCommands(system);
  return program;
}

async function report(e: unknown): Promise<number> {
  const { CliError, DaemonError } = await import("./errors.js");
  if (e instanceof DaemonError) {
    process.stderr.write(`${e.display}\n`);
    return 1;
  }
  if (e instanceof CliError) {
    process.stderr.write(`${e.message}\n`);
    return e.exitCode;
  }
  const { TemplateError } = await import("./format/template.js");
  if (e instanceof TemplateError) {
    process.stderr.write(`${e.message}\n`);
    return 1;
  }
  // Invalid values found by shared/ helpers are usage errors, as docker exits 125 on those.
  if (e instanceof Error && e.name === "ShoalError") {
    process.stderr.write(`${e.message}\n`);
    return 125;
  }
  process.stderr.write(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
  return 1;
}

async function main(): Promise<void> {
  // `shoal logs x | head` closes the pipe early; that is not an error worth a stack trace.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
  });
  try {
    await buildProgram(process.argv.slice(2)).parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; flag errors exit 125 like docker's.
      exitCode = e.exitCode === 0 ? 0 : 125;
    } else {
      exitCode = await report(e);
    }
  }
  // Attach and wait connections may still be open; stdout writes to pipes, files and TTYs
  // are synchronous on Linux, so exiting now loses no output.
  process.exit(exitCode);
}

void main();
