// Listing output as the docker CLI writes it: `table ...` templates through a tabwriter
// (min width 10, padding 3), plain templates one line per item, `json` one object per line.

import { compileTemplate, STRICT } from "./template.js";

/**
 * Go's text/tabwriter with docker's settings: each tab-terminated cell is padded to its
 * column's widest cell + `padding`, at least `minWidth`; the last cell of a line is not padded.
 */
export function tabwrite(text: string, minWidth = 10, padding = 3): string {
  const lines = text.split("\n");
  const trailingNewline = lines[lines.length - 1] === "";
  if (trailingNewline) lines.pop();
  const rows = lines.map((l) => l.split("\t"));
  const widths: number[] = [];
  for (const cells of rows) {
    cells.forEach((cell, i) => {
      if (i === cells.length - 1) return;
      widths[i] = Math.max(widths[i] ?? minWidth, [...cell].length + padding);
    });
  }
  const out = rows.map((cells) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + " ".repeat(widths[i] - [...cell].length)))
      .join(""),
  );
  return out.join("\n") + (trailingNewline ? "\n" : "");
}

/** docker replaces the two-character escapes `\t` and `\n` in --format values. */
function unescapeFormat(format: string): string {
  return format.replace(/\\t/g, "\t").replace(/\\n/g, "\n");
}

interface ListSpec {
  /** The template used without --format, starting with "table ". */
  defaultFormat: string;
  /** Column titles per field, e.g. {ID: "CONTAINER ID"}. */
  headers: Record<string, string>;
}

/** Render items (the per-row template contexts) with --format, or the command's default table. */
export function renderList<T>(items: T[], format: string | undefined, spec: ListSpec): string {
  let fmt = format && format !== "table" ? format : spec.defaultFormat;
  if (fmt === "json") fmt = "{{json .}}";
  const isTable = fmt.startsWith("table");
  const body = unescapeFormat(isTable ? fmt.slice("table".length).trim() : fmt.trim());
  const tmpl = compileTemplate(body);
  let out = "";
  if (isTable) out += tmpl.execute(headerContext(spec.headers)) + "\n";
  for (const item of items) out += tmpl.execute(item) + "\n";
  return isTable ? tabwrite(out) : out;
}

/**
 * The header row is the same template run over an object whose every field answers its
 * column title, so `{{.Label "k"}}` and unknown fields get a title too.
 */
function headerContext(headers: Record<string, string>): object {
  return new Proxy(
    {},
    {
      has: (_t, key) => typeof key === "string" || key === STRICT,
      get: (_t, key) => {
        if (key === STRICT) return "header";
        if (typeof key !== "string") return undefined;
        const title = headers[key] ?? key.toUpperCase();
        return () => title;
      },
    },
  );
}
