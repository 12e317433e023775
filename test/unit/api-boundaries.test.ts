// The HTTP tree's place in the dependency rule: api/ uses agent/, manager/, shared/ and proto/
// (types and plain functions), never daemon/ or cli/; nothing in agent/, manager/ or shared/
// imports api/; fastify is imported in api/ alone (no other product folder serves HTTP).
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");

function sources(folder: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, folder), { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(".ts")) out.push(relative(root, join(e.parentPath, e.name)));
  }
  return out;
}

/** Every module a file imports, as a path from the repository's root (packages by name). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^;]*?from\s+"([^"]+)"/g)].map((m) => m[1]);
  return specs.map((s) => (s.startsWith(".") ? relative(root, join(root, file, "..", s)) : s));
}

function offending(folders: string[], bad: (spec: string) => boolean): string[] {
  return folders.flatMap((f) =>
    sources(f).flatMap((file) =>
      importsOf(file)
        .filter(bad)
        .map((spec) => `${file} imports ${spec}`),
    ),
  );
}

describe("the HTTP tree's boundaries", () => {
  it("api/ imports nothing of daemon/ or cli/", () => {
    expect(offending(["api"], (s) => s.startsWith("daemon/") || s.startsWith("cli/"))).toEqual([]);
  });

  it("agent/, manager/ and shared/ import nothing of api/", () => {
    expect(offending(["agent", "manager", "shared"], (s) => s.startsWith("api/"))).toEqual([]);
  });

  it("only api/ imports fastify", () => {
    const bad = (s: string) => s === "fastify" || s.startsWith("fastify/") || s.startsWith("@fastify/");
    expect(offending(["agent", "manager", "shared", "daemon", "cli"], bad)).toEqual([]);
    expect(offending(["api"], bad).length).toBeGreaterThan(0);
  });
});
