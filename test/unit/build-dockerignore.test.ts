// .dockerignore with Docker's rules, applied by the CLI (what it sends) and by the builder (what
// COPY may see), and the unpacking of a context tar, which must never write outside its folder.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { contextFilter, dockerignorePatterns, walkContext } from "../../shared/dockerignore.js";
import { extractContext, pruneExcluded, readContextFile } from "../../agent/engine/builder/context.js";
import { makeTar } from "../fixtures/tarlib.mjs";
import { tree } from "./image-helpers.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "shoal-ctx-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("dockerignore matching", () => {
  it("reads patterns as Docker does", () => {
    expect(dockerignorePatterns("\uFEFF# comment\n  *.log  \n\n!keep.log\r\n#x\n")).toEqual([
      "*.log",
      "!keep.log",
    ]);
  });

  it("follows Docker's rules: last match wins, folders exclude their content, ! brings back", () => {
    const f = contextFilter(
      ["*.md", "!README.md", "docs", "!docs/keep.txt", "/abs", "trail/", "**/*.log", "*/temp*", "tmp?"].join(
        "\n",
      ),
    );
    const cases: Array<[string, boolean]> = [
      ["a.md", true],
      ["README.md", false],
      ["sub/a.md", false],
      ["docs", true],
      ["docs/a.txt", true],
      ["docs/keep.txt", false],
      ["abs", true],
      ["abs/x", true],
      ["trail/y", true],
      ["a.log", true],
      ["d/e/f.log", true],
      ["x/temp1", true],
      ["x/y/temp1", false],
      ["tmp1", true],
      ["tmp12", false],
      ["src/main.go", false],
    ];
    for (const [path, excluded] of cases) expect([path, f.excluded(path)]).toEqual([path, excluded]);
    expect(f.hasExceptions).toBe(true);
    expect(contextFilter(undefined).excluded("anything")).toBe(false);
  });

  it("walks a context in order, entering excluded folders only for exceptions", async () => {
    await mkdir(join(dir, "docs/sub"), { recursive: true });
    await writeFile(join(dir, "docs/sub/a.txt"), "a");
    await writeFile(join(dir, "docs/keep.txt"), "k");
    await writeFile(join(dir, "b.txt"), "b");
    const seen = async (text: string): Promise<string[]> => {
      const out: string[] = [];
      for await (const e of walkContext(dir, contextFilter(text)))
        out.push(`${e.rel}${e.excluded ? " (x)" : ""}`);
      return out;
    };
    expect(await seen("docs")).toEqual(["b.txt", "docs (x)"]);
    expect(await seen("docs\n!docs/keep.txt")).toEqual([
      "b.txt",
      "docs (x)",
      "docs/keep.txt",
      "docs/sub (x)",
      "docs/sub/a.txt (x)",
    ]);
  });

  it("prunes what is excluded, keeping folders that hold exceptions", async () => {
    await mkdir(join(dir, "docs/sub"), { recursive: true });
    await writeFile(join(dir, "docs/sub/a.txt"), "a");
    await writeFile(join(dir, "docs/keep.txt"), "k");
    await writeFile(join(dir, "secret.key"), "s");
    await writeFile(join(dir, "app.js"), "x");
    await pruneExcluded(dir, contextFilter("docs\n!docs/keep.txt\n*.key\n"));
    expect((await tree(dir)).map((l) => l.split(" ")[0])).toEqual(["app.js", "docs", "docs/keep.txt"]);
  });
});

describe("context unpacking", () => {
  it("unpacks files, folders, links and modes", async () => {
    const tar = await makeTar([
      { name: "Dockerfile", data: "FROM busybox\n" },
      { name: "bin/", type: "directory", mode: 0o750 },
      { name: "bin/run.sh", data: "#!/bin/sh\n", mode: 0o755 },
      { name: "link", type: "symlink", linkname: "bin/run.sh" },
      { name: "hard", type: "link", linkname: "Dockerfile" },
      { name: "deep/er/file", data: "x" },
    ]);
    await extractContext(Readable.from([tar]), dir);
    // Folder sizes depend on the file system: compare path, mode and (for others) size and links.
    const shown = (await tree(dir)).map((l) => {
      const [path, mode, size, links] = l.split(" ");
      return mode.startsWith("40") ? `${path} ${mode}` : `${path} ${mode} ${size} ${links}`;
    });
    expect(shown).toEqual([
      "Dockerfile 100644 13 2",
      "bin 40750",
      "bin/run.sh 100755 10 1",
      "deep 40755",
      "deep/er 40755",
      "deep/er/file 100644 1 1",
      "hard 100644 13 2",
      "link 120777 10 1",
    ]);
    expect(await readContextFile(dir, "Dockerfile")).toBe("FROM busybox\n");
    expect(await readContextFile(dir, "nope")).toBeUndefined();
  });

  it("refuses entries that would leave the context, and writes nothing outside", async () => {
    const outside = join(dir, "outside");
    const ctx = join(dir, "ctx");
    await mkdir(outside);
    await mkdir(ctx);
    const attempts = [
      [{ name: "../escape", data: "x" }],
      [{ name: "/etc/evil", data: "x" }],
      [
        { name: "out", type: "symlink" as const, linkname: outside },
        { name: "out/evil", data: "x" },
      ],
      [{ name: "h", type: "link" as const, linkname: "../outside/x" }],
    ];
    for (const entries of attempts) {
      await expect(extractContext(Readable.from([await makeTar(entries)]), ctx)).rejects.toThrow(
        /invalid build context/,
      );
    }
    expect(await tree(outside)).toEqual([]);
  });

  it("reads the Dockerfile without following a link out of the context", async () => {
    await writeFile(join(dir, "real"), "FROM x\n");
    await mkdir(join(dir, "ctx"));
    await symlink("../real", join(dir, "ctx/Dockerfile"));
    await expect(readContextFile(join(dir, "ctx"), "Dockerfile")).rejects.toThrow(
      /outside the build context/,
    );
    expect(await readFile(join(dir, "real"), "utf8")).toBe("FROM x\n");
  });
});
