// .dockerignore, with Docker's rules (Go filepath.Match patterns, "**", "!" exceptions, the last
// matching pattern wins, a pattern that matches a folder excludes everything below it). The
// matching is @balena/dockerignore, a port of Docker's own matcher. Both the CLI (which leaves
// excluded files out of the context it sends) and the builder (which applies the same file to
// contexts from other clients) use this.
import { lstat, readdir } from "node:fs/promises";
import type { Stats } from "node:fs";
import { join } from "node:path";
import dockerignore from "@balena/dockerignore";

// The package is CommonJS (`module.exports = factory`) with a d.ts that says `export default`:
// under NodeNext the default import is the factory at run time, which TypeScript does not see.
const ignore = dockerignore as unknown as typeof dockerignore.default;

export interface ContextFilter {
  /** Whether a context-relative path ("a/b.txt", no leading "./") is left out. */
  excluded(rel: string): boolean;
  /** Whether any "!" pattern exists: then an excluded folder may still hold included files. */
  readonly hasExceptions: boolean;
}

/** The patterns of a .dockerignore text, as Docker reads them (comments, blank lines dropped). */
export function dockerignorePatterns(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    if (raw.startsWith("#")) continue;
    const line = raw.trim();
    if (line === "") continue;
    out.push(line);
  }
  return out;
}

export function contextFilter(dockerignore: string | undefined): ContextFilter {
  const patterns = dockerignorePatterns(dockerignore ?? "");
  if (patterns.length === 0) return { excluded: () => false, hasExceptions: false };
  const ig = ignore().add(patterns);
  return {
    excluded: (rel) => rel !== "" && rel !== "." && ig.ignores(rel),
    hasExceptions: patterns.some((p) => p.startsWith("!")),
  };
}

export interface ContextEntry {
  rel: string;
  full: string;
  stats: Stats;
  excluded: boolean;
}

/**
 * Every entry below root in a stable (sorted) order, parents before children, each marked
 * excluded or not. An excluded folder is entered only when "!" patterns could bring something
 * inside it back, as the docker CLI does.
 */
export async function* walkContext(
  root: string,
  filter: ContextFilter,
  rel = "",
): AsyncGenerator<ContextEntry> {
  const names = (await readdir(rel === "" ? root : join(root, rel))).sort();
  for (const name of names) {
    const childRel = rel === "" ? name : `${rel}/${name}`;
    const full = join(root, childRel);
    const stats = await lstat(full);
    const excluded = filter.excluded(childRel);
    yield { rel: childRel, full, stats, excluded };
    if (stats.isDirectory() && (!excluded || filter.hasExceptions))
      yield* walkContext(root, filter, childRel);
  }
}
