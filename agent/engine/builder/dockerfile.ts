// Reads a Dockerfile into stages and instructions. The lexical work (line continuations with the
// escape character, comments, parser directives, keywords, flags) is done by dockerfile-ast, the
// parser of VS Code's Docker tooling; this file checks what the classic builder checks before
// running anything, so a mistake is a 400 naming the line and the instruction.
import { DockerfileParser, type Instruction as AstInstruction } from "dockerfile-ast";
import { invalid } from "../../../shared/errors.js";
import { jsonForm, splitWhitespace } from "./words.js";

export interface Instruction {
  /** 1-based line where the instruction starts. */
  line: number;
  /** Upper case: FROM, RUN, ... */
  keyword: string;
  /** The instruction as written, continuations joined: what "Step n/m : ..." shows. */
  original: string;
  /** The arguments after the flags, continuations joined, comments removed. */
  args: string;
  /** --name=value flags; values still carry their quotes and variables. */
  flags: Map<string, string | undefined>;
}

export interface Stage {
  index: number;
  /** Lower-cased `AS name`. */
  name?: string;
  from: Instruction;
  /** The instructions after FROM. */
  instructions: Instruction[];
}

export interface Dockerfile {
  escape: string;
  /** ARGs before the first FROM (usable in FROM lines). */
  metaArgs: Instruction[];
  stages: Stage[];
}

const known = new Set([
  "FROM",
  "RUN",
  "CMD",
  "LABEL",
  "MAINTAINER",
  "EXPOSE",
  "ENV",
  "ADD",
  "COPY",
  "ENTRYPOINT",
  "VOLUME",
  "USER",
  "WORKDIR",
  "ARG",
  "ONBUILD",
  "STOPSIGNAL",
  "HEALTHCHECK",
  "SHELL",
]);

/** Flags each instruction takes in the classic builder (plus COPY/ADD --chmod). */
const allowedFlags: Record<string, string[]> = {
  FROM: ["platform"],
  COPY: ["from", "chown", "chmod"],
  ADD: ["chown", "chmod"],
  HEALTHCHECK: ["interval", "timeout", "start-period", "start-interval", "retries"],
};

/** Flags that exist only with BuildKit: refused with a message that says so. */
const buildkitFlags: Record<string, string[]> = {
  RUN: ["mount", "network", "security"],
  COPY: ["link", "parents", "exclude"],
  ADD: ["link", "checksum", "keep-git-dir", "exclude"],
};

const stageNamePattern = /^[a-z][a-z0-9\-_.]*$/;

function parseError(line: number, message: string): Error {
  return invalid(`dockerfile parse error on line ${line}: ${message}`);
}

function withFlags(i: AstInstruction): AstInstruction & { getFlags?: () => import("dockerfile-ast").Flag[] } {
  return i as AstInstruction & { getFlags?: () => import("dockerfile-ast").Flag[] };
}

function toInstruction(i: AstInstruction): Instruction {
  const line = i.getRange().start.line + 1;
  const keyword = i.getKeyword().toUpperCase();
  const flagNodes = withFlags(i).getFlags?.() ?? [];
  const flags = new Map<string, string | undefined>();
  for (const f of flagNodes) {
    const name = f.getName();
    if (name === "") throw parseError(line, `${keyword}: a flag has no name ("${f.toString()}")`);
    if (flags.has(name)) throw parseError(line, `${keyword}: duplicate flag specified: ${name}`);
    flags.set(name, f.getValue() ?? undefined);
  }
  const args = i.getArgumentsContent() ?? "";
  const flagText = flagNodes.map((f) => f.toString()).join(" ");
  const original = [i.getInstruction(), flagText, args].filter((s) => s !== "").join(" ");
  return { line, keyword, original, args, flags };
}

function checkFlags(ins: Instruction): void {
  const allowed = allowedFlags[ins.keyword] ?? [];
  for (const [name, value] of ins.flags) {
    if ((buildkitFlags[ins.keyword] ?? []).includes(name)) {
      throw parseError(
        ins.line,
        `${ins.keyword} --${name} needs BuildKit; shoal's builder is Docker's classic builder, which does not have it`,
      );
    }
    if (!allowed.includes(name)) throw parseError(ins.line, `${ins.keyword}: unknown flag: --${name}`);
    if (value === undefined || value === "")
      throw parseError(ins.line, `${ins.keyword}: flag --${name} needs a value (--${name}=...)`);
  }
}

function checkArgs(ins: Instruction): void {
  const { keyword, args, line } = ins;
  const words = splitWhitespace(args);
  if (/^<<-?["']?[A-Za-z_]/.test(args.trim()) && ["RUN", "COPY", "ADD"].includes(keyword)) {
    throw parseError(
      line,
      `${keyword}: heredocs (<<EOF) need BuildKit; write the lines into a file or use RUN with &&`,
    );
  }
  switch (keyword) {
    case "ONBUILD":
      throw parseError(
        line,
        "ONBUILD is not supported by shoal's builder; put the instructions in the Dockerfile that uses the image",
      );
    case "MAINTAINER":
    case "USER":
    case "WORKDIR":
    case "STOPSIGNAL":
    case "EXPOSE":
    case "VOLUME":
    case "ARG":
    case "ENV":
    case "LABEL":
    case "RUN":
    case "CMD":
    case "ENTRYPOINT":
      if (args.trim() === "") throw parseError(line, `${keyword} requires at least one argument`);
      break;
    case "COPY":
    case "ADD": {
      const list = jsonForm(args) ?? words;
      if (list.length < 2)
        throw parseError(
          line,
          `${keyword} requires at least two arguments, but only ${list.length === 0 ? "none was" : "one was"} provided. Destination could not be determined`,
        );
      break;
    }
    case "SHELL": {
      const list = jsonForm(args);
      if (!list)
        throw parseError(
          line,
          'SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]',
        );
      if (list.length === 0) throw parseError(line, "SHELL requires at least one argument");
      break;
    }
    case "HEALTHCHECK": {
      const kind = (words[0] ?? "").toUpperCase();
      if (kind === "NONE") {
        if (words.length > 1) throw parseError(line, "HEALTHCHECK NONE takes no other arguments");
        if (ins.flags.size > 0) throw parseError(line, "HEALTHCHECK NONE takes no flags");
      } else if (kind === "CMD") {
        if (words.length < 2) throw parseError(line, "HEALTHCHECK CMD requires a command");
      } else {
        throw parseError(
          line,
          `HEALTHCHECK: unknown type "${words[0] ?? ""}": use HEALTHCHECK CMD <command> or HEALTHCHECK NONE`,
        );
      }
      break;
    }
  }
}

/** The FROM line's parts: image and optional stage name. */
export function fromParts(ins: Instruction): { image: string; name?: string } {
  const words = splitWhitespace(ins.args);
  if (words.length === 1) return { image: words[0] };
  if (words.length === 3 && words[1].toLowerCase() === "as") {
    const name = words[2].toLowerCase();
    if (!stageNamePattern.test(name))
      throw parseError(
        ins.line,
        `FROM: invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`,
      );
    return { image: words[0], name };
  }
  if (words.length === 0) throw parseError(ins.line, "FROM requires at least one argument");
  throw parseError(ins.line, "FROM requires either one or three arguments: FROM <image> [AS <name>]");
}

/** Parse and check a Dockerfile. `what` names it in messages (e.g. "Dockerfile"). */
export function parseDockerfile(text: string, what = "Dockerfile"): Dockerfile {
  const ast = DockerfileParser.parse(text);
  const nodes = ast.getInstructions();
  if (nodes.length === 0) throw invalid(`the Dockerfile (${what}) cannot be empty: it needs at least a FROM`);
  const metaArgs: Instruction[] = [];
  const stages: Stage[] = [];
  const names = new Set<string>();
  for (const node of nodes) {
    const ins = toInstruction(node);
    if (!known.has(ins.keyword)) throw parseError(ins.line, `unknown instruction: ${node.getInstruction()}`);
    checkFlags(ins);
    checkArgs(ins);
    if (ins.keyword === "FROM") {
      const { name } = fromParts(ins);
      if (name !== undefined) {
        if (names.has(name)) throw parseError(ins.line, `FROM: duplicate name for build stage: "${name}"`);
        names.add(name);
      }
      stages.push({ index: stages.length, name, from: ins, instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) {
      if (ins.keyword !== "ARG")
        throw parseError(
          ins.line,
          `${ins.keyword} before the first FROM: a Dockerfile must start with FROM (only ARG may come before it)`,
        );
      metaArgs.push(ins);
      continue;
    }
    stage.instructions.push(ins);
  }
  if (stages.length === 0) throw invalid(`the Dockerfile (${what}) has no FROM: there is nothing to build`);
  return { escape: ast.getEscapeCharacter(), metaArgs, stages };
}

/** The stages up to and including `target` (all when no target), as the classic builder runs them. */
export function stagesUpTo(df: Dockerfile, target?: string): Stage[] {
  if (!target) return df.stages;
  const i = df.stages.findIndex((s) => s.name === target.toLowerCase());
  if (i < 0)
    throw invalid(`failed to reach build target ${target} in Dockerfile: no stage is named "${target}"`);
  return df.stages.slice(0, i + 1);
}
