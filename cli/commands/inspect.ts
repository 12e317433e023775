// `shoal inspect` and the container, image, network and volume groups' inspect: the API's
// JSON as a 4-space indented array (docker's layout), or one rendered --format template per
// object.

import type { Command } from "commander";
import type { ApiClient } from "../client.js";
import { act, add, apiClient, err, out, type CommandContext } from "../command.js";
import { DaemonError, UsageError } from "../errors.js";

/** `shoal inspect`; the groups declare their own inspect with this handler. */
export function inspectCommand(program: Command): void {
  add(program, "inspect")
    ?.description("Return low-level information on shoal objects")
    .argument("<name...>", "container or image names or IDs")
    .option("-f, --format <string>", "Format output using a custom template")
    .option("--type <string>", "Only inspect objects of the given type (container or image)")
    .option("-s, --size", "Display total file sizes if the type is container")
    .option("--json", "Print the Engine API's JSON")
    .action(act((ctx: CommandContext<InspectFlags>) => inspect(ctx)));
}

interface InspectFlags {
  format?: string;
  type?: string;
  size?: boolean;
  json?: boolean;
}

type Kind = "container" | "image" | "network" | "volume";

/** `container inspect`, `image inspect`, `network inspect` and `volume inspect`. */
export function inspectSubcommand(parent: Command, kind: Kind): void {
  const cmd = add(parent, "inspect")
    ?.description(`Display detailed information on one or more ${kind}s`)
    .argument(`<${kind}...>`)
    .option("-f, --format <string>", "Format output using a custom template");
  if (kind === "container") cmd?.option("-s, --size", "Display total file sizes");
  cmd
    ?.option("--json", "Print the Engine API's JSON")
    .action(act((ctx: CommandContext<InspectFlags>) => inspect(ctx, kind)));
}

async function fetchOne(client: ApiClient, name: string, kind: Kind, size: boolean): Promise<unknown> {
  const n = encodeURIComponent(name);
  if (kind === "container")
    return client.json<unknown>("GET", `/containers/${n}/json`, { query: { size: size ? 1 : undefined } });
  if (kind === "network") return client.json<unknown>("GET", `/networks/${n}`);
  if (kind === "volume") return client.json<unknown>("GET", `/volumes/${n}`);
  return client.json<unknown>("GET", `/images/${n}/json`);
}

async function lookup(
  client: ApiClient,
  name: string,
  kind: Kind | undefined,
  size: boolean,
): Promise<unknown> {
  const kinds: Kind[] = kind ? [kind] : ["container", "image"];
  for (const k of kinds) {
    try {
      return await fetchOne(client, name, k, size);
    } catch (e) {
      if (!(e instanceof DaemonError) || e.status !== 404) throw e;
    }
  }
  throw new Error(`No such ${kind ?? "object"}: ${name}`);
}

/** docker's inspect output: a 4-space indented array, one line of JSON each, or a template each. */
export async function printInspected(found: unknown[], format: string | undefined): Promise<void> {
  if (format && format !== "json") {
    const { compileTemplate } = await import("../format/template.js");
    const tmpl = compileTemplate(format);
    for (const item of found) out(`${tmpl.execute(item)}\n`);
  } else if (format === "json") {
    for (const item of found) out(`${JSON.stringify(item)}\n`);
  } else {
    out(`${JSON.stringify(found, null, 4)}\n`);
  }
}

async function inspect(ctx: CommandContext<InspectFlags>, forced?: Kind): Promise<number> {
  const [names] = ctx.args as [string[]];
  const type = (forced ?? ctx.flags.type) as Kind | undefined;
  if (type !== undefined && !["container", "image", "network", "volume"].includes(type)) {
    throw new UsageError(`"${type}" is not a valid value for --type: use container or image`);
  }
  const client = await apiClient(ctx.host);
  const found: unknown[] = [];
  const errors: string[] = [];
  for (const name of names) {
    try {
      found.push(await lookup(client, name, type, Boolean(ctx.flags.size)));
    } catch (e) {
      if (e instanceof DaemonError) errors.push(e.display);
      else if (e instanceof Error && e.message.startsWith("No such")) errors.push(`Error: ${e.message}`);
      else throw e;
    }
  }
  await printInspected(found, ctx.flags.json ? undefined : ctx.flags.format);
  for (const e of errors) err(`${e}\n`);
  return errors.length > 0 ? 1 : 0;
}
