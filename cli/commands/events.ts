// `shoal events` (and `shoal system events`): the daemon's event stream, as `docker events`
// prints it: one line per event (time, type, action, actor id, sorted attributes), or a
// --format template over Docker's field names (.Status, .ID, .From, .Type, .Action, .Actor,
// .Scope, .Time, .TimeNano); `{{json .}}` prints the message as the daemon sent it.
import type { Command } from "commander";
import type { Readable } from "node:stream";
import { act, add, apiClient, collect, filtersJson, out, type CommandContext } from "../command.js";

interface EventsFlags {
  since?: string;
  until?: string;
  filter?: string[];
  format?: string;
}

interface EventMessage {
  status?: string;
  id?: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  scope?: string;
  time?: number;
  timeNano?: number;
}

export function eventsCommand(parent: Command): void {
  add(parent, "events")
    ?.description("Get real time events from the daemon")
    .option("--since <string>", "Show all events created since timestamp")
    .option("--until <string>", "Stream events until this timestamp")
    .option("-f, --filter <filter>", "Filter output based on conditions provided", collect)
    .option("--format <string>", "Format output using a custom template ('json', or a Go template)")
    .action(act(events));
}

/**
 * docker's default line: RFC 3339 time with nanoseconds, type, action, actor id, attributes.
 * `rawNano` is timeNano's digits as sent: a double cannot hold nanoseconds at today's dates.
 */
export function eventLine(e: EventMessage, rawNano?: string): string {
  const digits = rawNano ?? String(Math.round((e.timeNano ?? (e.time ?? 0) * 1e9) / 1e6)) + "000000";
  const seconds = Number(digits.slice(0, -9) || "0");
  const time = `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${digits.slice(-9).padStart(9, "0")}Z`;
  const attrs = Object.entries(e.Actor.Attributes ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  return `${time} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs.length ? ` (${attrs.join(", ")})` : ""}`;
}

async function events(ctx: CommandContext<EventsFlags>): Promise<number> {
  const f = ctx.flags;
  const { apiTimestamp } = await import("../options.js");
  const client = await apiClient(ctx.host);
  const res = await client.stream("GET", "/events", {
    query: {
      since: f.since !== undefined ? apiTimestamp(f.since, "--since") : undefined,
      until: f.until !== undefined ? apiTimestamp(f.until, "--until") : undefined,
      filters: filtersJson(f.filter),
    },
  });
  const json = f.format === "json" || f.format?.trim() === "{{json .}}";
  const template =
    f.format && !json ? (await import("../format/template.js")).compileTemplate(f.format) : undefined;
  let buffered = "";
  const show = (line: string): void => {
    if (!line.trim()) return;
    if (json) return out(`${line}\n`);
    const e = JSON.parse(line) as EventMessage;
    if (!template) return out(`${eventLine(e, /"timeNano":(\d+)/.exec(line)?.[1])}\n`);
    const data = {
      Status: e.status ?? "",
      ID: e.id ?? "",
      From: e.from ?? "",
      Type: e.Type,
      Action: e.Action,
      Actor: { ID: e.Actor.ID, Attributes: e.Actor.Attributes ?? {} },
      Scope: e.scope ?? "",
      Time: e.time ?? 0,
      TimeNano: e.timeNano ?? 0,
    };
    out(`${template.execute(data)}\n`);
  };
  for await (const chunk of res as Readable) {
    buffered += String(chunk);
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const l of lines) show(l);
  }
  show(buffered);
  return 0;
}
