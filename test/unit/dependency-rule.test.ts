// The dependency rule of docs/architecture.md, checked on every import of the product code:
// manager and agent never import each other, manager/raft stands alone, shared imports nothing of
// ours, the CLI imports no server code, and HTTP (fastify) lives only in the api/ tree.
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const repo = resolve(import.meta.dirname, "../..");

/** Each area of the product tree and the areas it may import; the first matching prefix wins. */
const RULES: { area: string; may: string[] }[] = [
  { area: "proto", may: ["proto"] },
  { area: "shared", may: ["shared"] },
  { area: "manager/raft", may: ["manager/raft", "proto"] },
  { area: "manager", may: ["manager", "shared", "proto"] },
  { area: "agent", may: ["agent", "shared", "proto"] },
  { area: "api", may: ["api", "agent", "manager", "shared", "proto"] },
  { area: "daemon", may: ["daemon", "api", "agent", "manager", "shared", "proto"] },
  { area: "cli", may: ["cli", "shared"] },
];

/** npm packages that only the api/ tree may use: every HTTP route lives there. */
const HTTP_PACKAGES = ["fastify", "@fastify/"];

function areaOf(path: string): string | undefined {
  return RULES.map((r) => r.area).find((a) => path === a || path.startsWith(a + "/"));
}

const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;

export function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** What one file breaks of the rule, as readable lines (empty: nothing). */
export function violations(file: string, source: string): string[] {
  const from = areaOf(file);
  if (!from) return [];
  const rule = RULES.find((r) => r.area === from);
  if (!rule) return [];
  const found: string[] = [];
  for (const spec of importsOf(source)) {
    if (spec.startsWith(".")) {
      const target = relative(repo, resolve(repo, dirname(file), spec));
      const to = areaOf(target) ?? target.split("/")[0];
      const allowed = rule.may.some((a) => to === a || to.startsWith(a + "/"));
      // manager/raft is its own area: the rest of manager/ may use it, it may not use the rest.
      if (!allowed) found.push(`${file} imports ${target} (${from} may import only ${rule.may.join(", ")})`);
    } else if (from !== "api" && HTTP_PACKAGES.some((p) => spec === p || spec.startsWith(p))) {
      found.push(`${file} imports ${spec}: HTTP routes belong in api/`);
    }
  }
  return found;
}

async function productFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(repo, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await productFiles(rel)));
    else if (/\.(ts|mts|js|mjs)$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

describe("dependency rule", () => {
  it("holds for every file of the product tree", async () => {
    const found: string[] = [];
    for (const top of ["proto", "shared", "manager", "agent", "api", "daemon", "cli"]) {
      for (const file of await productFiles(top)) {
        found.push(...violations(file, await readFile(join(repo, file), "utf8")));
      }
    }
    expect(found).toEqual([]);
  });

  it("catches each kind of breach (the checker itself can fail)", () => {
    expect(violations("agent/x.ts", 'import { Manager } from "../manager/manager.js";')).toHaveLength(1);
    expect(violations("manager/x.ts", 'import type { W } from "../agent/worker/worker.js";')).toHaveLength(1);
    expect(violations("manager/raft/x.ts", 'import { S } from "../store/store.js";')).toHaveLength(1);
    expect(violations("shared/x.ts", 'export { y } from "../agent/y.js";')).toHaveLength(1);
    expect(violations("cli/x.ts", 'const m = await import("../daemon/options.js");')).toHaveLength(1);
    expect(violations("manager/x.ts", 'import Fastify from "fastify";')).toHaveLength(1);
    expect(violations("api/x.ts", 'import Fastify from "fastify";')).toEqual([]);
    expect(violations("manager/x.ts", 'import { Raft } from "./raft/node.js";')).toEqual([]);
    expect(
      violations("daemon/x.ts", 'import { a } from "../agent/a.js";\nimport { m } from "../manager/m.js";'),
    ).toEqual([]);
  });
});
