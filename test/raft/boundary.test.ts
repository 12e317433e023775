// manager/raft stands alone (docs/raft.md): it imports nothing of ours but shared/ and proto/
// (today proto/ only), and the rest of shoal reaches it only through manager/raft/index.ts.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const repo = resolve(import.meta.dirname, "../..");
const RAFT = "manager/raft";

function tsFiles(dir: string): string[] {
  return readdirSync(join(repo, dir), { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith(".ts"))
    .map((d) => relative(repo, join(d.parentPath, d.name)));
}

/** The repository-relative targets of a file's relative imports (static, bare, dynamic) and re-exports. */
function localImports(file: string): string[] {
  const src = readFileSync(join(repo, file), "utf8");
  const out: string[] = [];
  for (const m of src.matchAll(/\b(?:from|import)\s*\(?\s*"(\.[^"]+)"/g))
    out.push(relative(repo, resolve(join(repo, dirname(file)), m[1])));
  return out;
}

describe("manager/raft's boundary", () => {
  it("imports nothing of ours outside manager/raft but shared/ and proto/", () => {
    const bad = tsFiles(RAFT).flatMap((f) =>
      localImports(f)
        .filter((t) => ![`${RAFT}/`, "shared/", "proto/"].some((ok) => t.startsWith(ok)))
        .map((t) => `${f} -> ${t}`),
    );
    expect(bad).toEqual([]);
  });

  it("keeps the core pure: core/ imports nothing but core/ (no node: modules, no packages)", () => {
    const bad = tsFiles(`${RAFT}/core`).flatMap((f) =>
      [...readFileSync(join(repo, f), "utf8").matchAll(/\b(?:from|import)\s*\(?\s*"([^"]+)"/g)]
        .map((m) => (m[1].startsWith(".") ? relative(repo, resolve(join(repo, dirname(f)), m[1])) : m[1]))
        .filter((t) => !t.startsWith(`${RAFT}/core/`))
        .map((t) => `${f} -> ${t}`),
    );
    expect(bad).toEqual([]);
  });

  it("is used by the product code through manager/raft/index.ts only", () => {
    const product = ["shared", "manager", "agent", "cli", "daemon"].flatMap(tsFiles);
    const bad = product
      .filter((f) => !f.startsWith(`${RAFT}/`))
      .flatMap((f) =>
        localImports(f)
          .filter((t) => t.startsWith(`${RAFT}/`) && t !== `${RAFT}/index.js`)
          .map((t) => `${f} -> ${t}`),
      );
    expect(bad).toEqual([]);
  });
});
