// version and info: a client section, then what the daemon reports, laid out like docker's.

import { readFileSync } from "node:fs";
import type { InfoResponse, VersionResponse } from "../api-types.js";
import type { Command } from "commander";
import { act, add, apiClient, err, out, type CommandContext } from "../command.js";
import { CliError } from "../errors.js";
import { eventsCommand } from "./events.js";

/** version and info: at top level and under `shoal system`. */
export function systemCommands(parent: Command): void {
  add(parent, "version")
    ?.description("Show the shoal version information")
    .option("-f, --format <string>", "Format output using a custom template")
    .option("--json", "Print the Engine API's JSON")
    .action(act(version));

  add(parent, "info")
    ?.description("Display system-wide information")
    .option("-f, --format <string>", "Format output using a custom template")
    .option("--json", "Print the Engine API's JSON")
    .action(act(info));

  eventsCommand(parent);
}

export function clientVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

function rows(
  indent: string,
  pairs: [string, string | number | boolean | undefined][],
  width: number,
): string {
  return pairs
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${indent}${`${k}:`.padEnd(width)}${String(v)}\n`)
    .join("");
}

async function clientSection(host: string | undefined): Promise<string> {
  const { API_VERSION, resolveHost } = await import("../client.js");
  return (
    "Client:\n" +
    rows(
      " ",
      [
        ["Version", clientVersion()],
        ["API version", API_VERSION],
        ["Node.js version", process.version],
        ["OS/Arch", `${process.platform}/${process.arch === "x64" ? "amd64" : process.arch}`],
        ["Host", resolveHost(host).display],
      ],
      19,
    )
  );
}

async function version(ctx: CommandContext<{ format?: string; json?: boolean }>): Promise<number> {
  const client = await apiClient(ctx.host);
  let server: VersionResponse | undefined;
  let failure: unknown;
  try {
    server = await client.json<VersionResponse>("GET", "/version");
  } catch (e) {
    failure = e;
  }
  const format = ctx.flags.json ? "json" : ctx.flags.format;
  if (format) {
    const { API_VERSION } = await import("../client.js");
    const data = {
      Client: {
        Version: clientVersion(),
        ApiVersion: API_VERSION,
        NodeVersion: process.version,
        Os: process.platform,
        Arch: process.arch,
      },
      Server: server ?? null,
    };
    if (format === "json") out(`${JSON.stringify(data)}\n`);
    else {
      const { renderTemplate } = await import("../format/template.js");
      out(`${renderTemplate(format, data)}\n`);
    }
  } else {
    out(await clientSection(ctx.host));
    if (server) {
      out(`\nServer: ${server.Platform?.Name ?? "shoal"}\n Engine:\n`);
      out(
        rows(
          "  ",
          [
            ["Version", server.Version],
            [
              "API version",
              server.MinAPIVersion
                ? `${server.ApiVersion} (minimum version ${server.MinAPIVersion})`
                : server.ApiVersion,
            ],
            ["Git commit", server.GitCommit],
            ["Built", server.BuildTime],
            ["OS/Arch", `${server.Os}/${server.Arch}`],
            ["Kernel version", server.KernelVersion],
            ["Experimental", server.Experimental ?? false],
          ],
          18,
        ),
      );
      for (const c of server.Components ?? []) {
        if (c.Name === "Engine") continue;
        out(` ${c.Name}:\n`);
        out(rows("  ", [["Version", c.Version], ...Object.entries(c.Details ?? {})], 18));
      }
    }
  }
  if (failure) throw failure;
  return 0;
}

function gib(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toFixed(2))}${units[i]}`;
}

async function info(ctx: CommandContext<{ format?: string; json?: boolean }>): Promise<number> {
  const client = await apiClient(ctx.host);
  let i: InfoResponse | undefined;
  try {
    i = await client.json<InfoResponse>("GET", "/info");
  } catch (e) {
    if (ctx.flags.format || ctx.flags.json) throw e;
    out(`Client:\n Version:    ${clientVersion()}\n Context:    default\n\nServer:\n`);
    const message = e instanceof Error ? e.message : String(e);
    const display = (e as { display?: unknown }).display;
    err(`ERROR: ${typeof display === "string" ? display : message}\n`);
    throw new CliError("errors pretty printing info", 1);
  }
  if (ctx.flags.json || ctx.flags.format === "json") {
    out(`${JSON.stringify(i)}\n`);
    return 0;
  }
  if (ctx.flags.format) {
    const { renderTemplate } = await import("../format/template.js");
    out(`${renderTemplate(ctx.flags.format, i)}\n`);
    return 0;
  }
  out(`Client:\n Version:    ${clientVersion()}\n Context:    default\n Debug Mode: false\n\nServer:\n`);
  const line = (k: string, v: string | number | boolean | undefined): void => {
    if (v !== undefined && v !== "") out(` ${k}: ${String(v)}\n`);
  };
  line("Containers", i.Containers);
  if (i.Containers !== undefined) {
    out(
      `  Running: ${i.ContainersRunning ?? 0}\n  Paused: ${i.ContainersPaused ?? 0}\n  Stopped: ${i.ContainersStopped ?? 0}\n`,
    );
  }
  line("Images", i.Images);
  line("Server Version", i.ServerVersion);
  line("Storage Driver", i.Driver);
  for (const [k, v] of i.DriverStatus ?? []) out(`  ${k}: ${v}\n`);
  line("Logging Driver", i.LoggingDriver);
  line("Cgroup Driver", i.CgroupDriver);
  line("Cgroup Version", i.CgroupVersion);
  if (i.Runtimes) line("Runtimes", Object.keys(i.Runtimes).sort().join(" "));
  line("Default Runtime", i.DefaultRuntime);
  line("Init Binary", i.InitBinary);
  line("Swarm", i.Swarm?.LocalNodeState);
  if (i.SecurityOptions && i.SecurityOptions.length > 0) {
    out(" Security Options:\n");
    for (const o of i.SecurityOptions) out(`  ${o.replace(/^name=/, "")}\n`);
  }
  line("Kernel Version", i.KernelVersion);
  line("Operating System", i.OperatingSystem);
  line("OSType", i.OSType);
  line("Architecture", i.Architecture);
  line("CPUs", i.NCPU);
  if (i.MemTotal !== undefined) line("Total Memory", gib(i.MemTotal));
  line("Name", i.Name);
  line("ID", i.ID);
  line("Docker Root Dir", i.DockerRootDir);
  line("Debug Mode", i.Debug);
  line("Experimental", i.ExperimentalBuild);
  line("Live Restore Enabled", i.LiveRestoreEnabled);
  for (const w of i.Warnings ?? []) err(`${w}\n`);
  return 0;
}
