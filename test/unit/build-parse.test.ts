// The builder's reading of Dockerfiles: Docker's word and substitution rules, the parse checks
// (line and instruction named), stages and targets, COPY's wildcard matching.
import { describe, expect, it } from "vitest";
import {
  argDeclarations,
  expandWord,
  jsonForm,
  nameValuePairs,
  splitQuotedWords,
} from "../../agent/engine/builder/words.js";
import { parseDockerfile, stagesUpTo } from "../../agent/engine/builder/dockerfile.js";
import { globToRegExp, hasWildcards } from "../../agent/engine/builder/copy.js";
import { exposedPorts, healthcheck } from "../../agent/engine/builder/builder.js";

const env = new Map([
  ["NAME", "world"],
  ["EMPTY", ""],
  ["PATH", "/bin"],
]);
const x = (w: string, escape = "\\"): string => expandWord(w, env, escape);

describe("variable substitution (Docker's shell lexer)", () => {
  it("expands $VAR and ${VAR}, unset ones to nothing", () => {
    expect(x("hello $NAME")).toBe("hello world");
    expect(x("${NAME}s")).toBe("worlds");
    expect(x("$NOPE-x")).toBe("-x");
    expect(x("a$")).toBe("a$");
    expect(x("$PATH:/usr/bin")).toBe("/bin:/usr/bin");
  });

  it("knows the :- :+ - + modifiers", () => {
    expect(x("${NOPE:-fallback}")).toBe("fallback");
    expect(x("${EMPTY:-fallback}")).toBe("fallback");
    expect(x("${EMPTY-fallback}")).toBe("");
    expect(x("${NAME:-fallback}")).toBe("world");
    expect(x("${NAME:+set}")).toBe("set");
    expect(x("${EMPTY:+set}")).toBe("");
    expect(x("${EMPTY+set}")).toBe("set");
    expect(x("${NOPE:+set}")).toBe("");
    expect(x("${NOPE:-${NAME}-nested}")).toBe("world-nested");
    expect(() => x("${NOPE:?must be set}")).toThrow(/NOPE: must be set/);
  });

  it("handles quotes and escapes like the classic builder", () => {
    expect(x("'$NAME'")).toBe("$NAME");
    expect(x('"$NAME and spaces"')).toBe("world and spaces");
    expect(x("\\$NAME")).toBe("$NAME");
    expect(x('"a\\"b"')).toBe('a"b');
    expect(x('"a\\nb"')).toBe("a\\nb");
    expect(x("`$NAME", "`")).toBe("$NAME");
  });

  it("rejects broken substitutions", () => {
    expect(() => x("${NAME")).toThrow(/missing .}/);
    expect(() => x("${}")).toThrow(/bad substitution/);
    expect(() => x("${NAME:x}")).toThrow(/unsupported modifier/);
    expect(() => x("'open")).toThrow(/single-quote/);
  });

  it("splits ENV and LABEL lines into pairs, keeping quotes for expansion", () => {
    expect(splitQuotedWords("A=1 B=\"two words\"  C='x y'")).toEqual(["A=1", 'B="two words"', "C='x y'"]);
    expect(nameValuePairs('A=1 B="two words"', "ENV")).toEqual([
      ["A", "1"],
      ["B", '"two words"'],
    ]);
    expect(nameValuePairs("KEY value with spaces", "ENV")).toEqual([["KEY", "value with spaces"]]);
    expect(() => nameValuePairs("A=1 B", "ENV")).toThrow(/can't find = in "B"/);
    expect(() => nameValuePairs("ONLY", "ENV")).toThrow(/ENV must have two arguments/);
    expect(argDeclarations("A B=2 C=")).toEqual([
      { name: "A" },
      { name: "B", value: "2" },
      { name: "C", value: "" },
    ]);
  });

  it("tells the JSON form from the shell form", () => {
    expect(jsonForm('["echo", "a b"]')).toEqual(["echo", "a b"]);
    expect(jsonForm("[not json")).toBeUndefined();
    expect(jsonForm("echo hi")).toBeUndefined();
    expect(jsonForm("[1, 2]")).toBeUndefined();
  });
});

describe("Dockerfile parsing", () => {
  it("reads stages, continuations, comments, directives and flags", () => {
    const df = parseDockerfile(
      [
        "# syntax=docker/dockerfile:1",
        "ARG BASE=busybox",
        "FROM ${BASE} AS Build",
        "RUN echo a \\",
        "# a comment inside",
        "  && echo b",
        "COPY --chown=1:2 --from=build a* /x/",
        "from busybox",
        'CMD ["sh"]',
      ].join("\n"),
    );
    expect(df.metaArgs.map((i) => i.keyword)).toEqual(["ARG"]);
    expect(df.stages).toHaveLength(2);
    expect(df.stages[0].name).toBe("build");
    const run = df.stages[0].instructions[0];
    expect(run.line).toBe(4);
    expect(run.args).toBe("echo a   && echo b");
    const copy = df.stages[0].instructions[1];
    expect(copy.flags.get("chown")).toBe("1:2");
    expect(copy.flags.get("from")).toBe("build");
    expect(copy.args).toBe("a* /x/");
    expect(copy.original).toBe("COPY --chown=1:2 --from=build a* /x/");
    expect(stagesUpTo(df, "BUILD")).toHaveLength(1);
    expect(() => stagesUpTo(df, "nope")).toThrow(/failed to reach build target nope/);
  });

  it("honours the escape directive", () => {
    const df = parseDockerfile("# escape=`\nFROM busybox\nRUN echo a `\n  b\n");
    expect(df.escape).toBe("`");
    expect(df.stages[0].instructions[0].args).toBe("echo a   b");
  });

  it("names the line and the instruction in errors", () => {
    const err = (text: string): string => {
      try {
        parseDockerfile(text);
      } catch (e) {
        expect((e as { status?: number }).status).toBe(400);
        return (e as Error).message;
      }
      throw new Error("no error");
    };
    expect(err("FROM busybox\nRUN true\nFROMM x\n")).toBe(
      "dockerfile parse error on line 3: unknown instruction: FROMM",
    );
    expect(err("FROM busybox\n\nCOPY onlyone\n")).toMatch(/line 3: COPY requires at least two arguments/);
    expect(err("RUN true\nFROM busybox\n")).toMatch(/line 1: RUN before the first FROM/);
    expect(err("FROM busybox\nCOPY --bogus=1 a b\n")).toMatch(/line 2: COPY: unknown flag: --bogus/);
    expect(err("FROM busybox\nRUN --mount=type=cache,target=/x true\n")).toMatch(
      /line 2: RUN --mount needs BuildKit/,
    );
    expect(err("FROM busybox\nONBUILD RUN x\n")).toMatch(/line 2: ONBUILD is not supported/);
    expect(err("FROM busybox\nSHELL /bin/bash -c\n")).toMatch(
      /line 2: SHELL requires the arguments to be in JSON form/,
    );
    expect(err("FROM a AS x\nFROM b AS x\n")).toMatch(/line 2: FROM: duplicate name for build stage/);
    expect(err("FROM a AS 1x\n")).toMatch(/line 1: FROM: invalid name for build stage/);
    expect(err("FROM busybox\nHEALTHCHECK WHAT\n")).toMatch(/line 2: HEALTHCHECK: unknown type/);
    expect(err("FROM busybox\nRUN <<EOF\necho\nEOF\n")).toMatch(/line 2: RUN: heredocs/);
    expect(err("# just a comment\n")).toMatch(/cannot be empty/);
  });

  it("turns EXPOSE and HEALTHCHECK into Docker's config", () => {
    expect(exposedPorts("80")).toEqual(["80/tcp"]);
    expect(exposedPorts("53/UDP")).toEqual(["53/udp"]);
    expect(exposedPorts("8000-8002")).toEqual(["8000/tcp", "8001/tcp", "8002/tcp"]);
    expect(() => exposedPorts("http")).toThrow(/invalid containerPort/);
    const df = parseDockerfile(
      'FROM busybox\nHEALTHCHECK --interval=5s --timeout=1m30s --retries=3 CMD wget -q -O- localhost\nHEALTHCHECK CMD ["true"]\nHEALTHCHECK NONE\n',
    );
    const [a, b, c] = df.stages[0].instructions.map(healthcheck);
    expect(a).toEqual({
      Test: ["CMD-SHELL", "wget -q -O- localhost"],
      Interval: 5e9,
      Timeout: 90e9,
      Retries: 3,
    });
    expect(b).toEqual({ Test: ["CMD", "true"] });
    expect(c).toEqual({ Test: ["NONE"] });
  });
});

describe("COPY wildcards (Go's filepath.Match)", () => {
  it("matches within one path level", () => {
    const m = (p: string, s: string): boolean => globToRegExp(p)?.test(s) ?? false;
    expect(m("*.txt", "a.txt")).toBe(true);
    expect(m("*.txt", "dir/a.txt")).toBe(false);
    expect(m("dir/*.txt", "dir/a.txt")).toBe(true);
    expect(m("file?.md", "file1.md")).toBe(true);
    expect(m("file?.md", "file10.md")).toBe(false);
    expect(m("[ab]*", "bcd")).toBe(true);
    expect(m("[^ab]*", "bcd")).toBe(false);
    expect(m("[a-c].txt", "b.txt")).toBe(true);
    expect(m("a\\*b", "a*b")).toBe(true);
    expect(globToRegExp("[unclosed")).toBeNull();
    expect(hasWildcards("a\\*b")).toBe(false);
    expect(hasWildcards("files/*.txt")).toBe(true);
  });
});
