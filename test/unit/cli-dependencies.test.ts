// The CLI talks to the daemon over HTTP only: nothing it loads, statically or when a command
// runs, comes from the server side (agent/, manager/, daemon/); shared/ is all it may use.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const repoRoot = resolve(import.meta.dirname, "../..");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

const allowed = (rel: string): boolean => rel.startsWith("cli/") || rel.startsWith("shared/");

/** Every file the CLI's sources reach through relative imports, static or dynamic. */
function reachable(): Set<string> {
  const seen = new Set<string>();
  const pending = sources(join(repoRoot, "cli"));
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    if (!allowed(relative(repoRoot, file))) continue;
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)"(\.[^"]+)"/g))
      pending.push(resolve(dirname(file), m[1].replace(/\.js$/, ".ts")));
  }
  return seen;
}

describe("the CLI's dependencies", () => {
  it("reach only cli/ and shared/", () => {
    const outside = [...reachable()].map((f) => relative(repoRoot, f)).filter((f) => !allowed(f));
    expect(outside).toEqual([]);
  });
});

describe("the CLI's start-up", () => {
  // main.ts loads command.ts and the command files the command line names; whatever else a
  // handler needs (the HTTP client, parsers, formatters) it imports when it runs, so that
  // help and every command pay only for what they use.
  const atStartUp = new Set([
    "commander",
    "node:fs",
    "node:fs/promises",
    "node:path",
    "node:stream",
    "node:stream/promises",
    "../command.js",
    "../errors.js",
    "./command.js",
    "./errors.js",
  ]);
  const files = [
    ...sources(join(repoRoot, "cli/commands")),
    join(repoRoot, "cli/command.ts"),
    join(repoRoot, "cli/errors.ts"),
    join(repoRoot, "cli/main.ts"),
  ];

  it("imports only commander, command.ts, errors.ts, other command files and preloaded builtins", () => {
    const eager: string[] = [];
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/^import\s+(?!type\s)[^;]*?from\s+"([^"]+)";/gms)) {
        const spec = m[1];
        const sibling = file.includes("/commands/") && /^\.\/[\w-]+\.js$/.test(spec);
        if (!atStartUp.has(spec) && !sibling) eager.push(`${relative(repoRoot, file)}: ${spec}`);
      }
    }
    expect(eager).toEqual([]);
  });
});
