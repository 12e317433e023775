// shoal build: sends the context folder as a tar (what .dockerignore excludes left out, as the
// docker CLI does) to POST /build and shows the classic builder's output.
import { readFile, readlink, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import type { Command } from "commander";
import type { ContextFilter } from "../../shared/dockerignore.js";
import type { LayerEntry } from "../../shared/tar-pack.js";
import { act, add, collect, apiClient, out, type CommandContext } from "../command.js";
import { CliError, UsageError } from "../errors.js";

/** At top level and under `shoal image`. */
export function buildCommand(parent: Command): void {
  add(parent, "build")
    ?.description("Build an image from a Dockerfile")
    .argument("<path>", "PATH | -")
    .option("-t, --tag <name:tag>", "Name and optionally a tag in the 'name:tag' format", collect)
    .option("-f, --file <string>", "Name of the Dockerfile (default: 'PATH/Dockerfile')")
    .option("--build-arg <list>", "Set build-time variables", collect)
    .option("--target <string>", "Set the target build stage to build")
    .option("--no-cache", "Do not use cache when building the image")
    .option("--label <list>", "Set metadata for an image", collect)
    .option("-q, --quiet", "Suppress the build output and print image ID on success")
    .option("--iidfile <string>", "Write the image ID to the file")
    .option("--rm", "Remove intermediate containers after a successful build (default true)")
    .option("--no-rm", "Keep the containers of successful RUN steps")
    .option("--force-rm", "Always remove intermediate containers")
    .action(act(build));
}

interface BuildFlags {
  tag?: string[];
  file?: string;
  buildArg?: string[];
  target?: string;
  /** commander's spelling of --no-cache. */
  cache?: boolean;
  label?: string[];
  quiet?: boolean;
  iidfile?: string;
  rm?: boolean;
  forceRm?: boolean;
}

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY)
    throw new CliError("the Dockerfile was to come from stdin, but stdin is a terminal");
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** --build-arg K=V, or K alone to take the value from this environment (null when unset, as docker). */
function parseBuildArgs(
  list: string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const a of list) {
    const eq = a.indexOf("=");
    if (eq === 0) throw new UsageError(`invalid argument "${a}" for "--build-arg": the name is empty`);
    if (eq > 0) out[a.slice(0, eq)] = a.slice(eq + 1);
    else out[a] = env[a] ?? null;
  }
  return out;
}

function parseLabels(list: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const eq = l.indexOf("=");
    if (eq === 0) throw new UsageError(`invalid argument "${l}" for "--label": the key is empty`);
    if (eq < 0) out[l] = "";
    else out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

const bytes = (data: Buffer) =>
  async function* (): AsyncGenerator<Buffer> {
    yield data;
  };

interface Prepared {
  entries: AsyncIterable<LayerEntry>;
  dockerfile: string;
}

/** The context's entries and the name the Dockerfile has in it. */
async function prepareContext(contextDir: string, file: string | undefined): Promise<Prepared> {
  const { randomBytes } = await import("node:crypto");
  const { contextFilter, walkContext } = await import("../../shared/dockerignore.js");
  let extra: { name: string; data: Buffer } | undefined;
  let dockerfile: string;
  if (file === "-") {
    dockerfile = `.dockerfile.${randomBytes(10).toString("hex")}`;
    extra = { name: dockerfile, data: await readStdin() };
  } else {
    let abs = file !== undefined ? resolve(file) : join(contextDir, "Dockerfile");
    const exists = await stat(abs).then(
      (s) => s.isFile(),
      () => false,
    );
    if (
      !exists &&
      file === undefined &&
      (await stat(join(contextDir, "dockerfile")).then(
        (s) => s.isFile(),
        () => false,
      ))
    )
      abs = join(contextDir, "dockerfile");
    else if (!exists)
      throw new CliError(`unable to prepare context: Cannot locate specified Dockerfile: ${file ?? abs}`);
    const rel = relative(contextDir, abs);
    if (rel.startsWith("..") || isAbsolute(rel)) {
      // Outside the context: it travels inside the tar under a name of its own, as docker sends it.
      dockerfile = `.dockerfile.${randomBytes(10).toString("hex")}`;
      extra = { name: dockerfile, data: await readFile(abs) };
    } else dockerfile = rel.split(sep).join("/");
  }
  const ignore = await readFile(join(contextDir, ".dockerignore"), "utf8").catch(() => undefined);
  const base = contextFilter(ignore);
  // The Dockerfile and .dockerignore always go (the daemon drops them again when excluded).
  const filter: ContextFilter = {
    excluded: (rel) => rel !== dockerfile && rel !== ".dockerignore" && base.excluded(rel),
    hasExceptions: base.hasExceptions || dockerfile.includes("/"),
  };
  // As the docker CLI does, a Dockerfile sent under a name of its own is also listed in the
  // .dockerignore that travels with the context, so the daemon keeps it out of COPY.
  const ignoreEntry = (mode: number, mtime: Date): LayerEntry => {
    const data = Buffer.from(`${ignore ?? ""}\n${dockerfile}\n`);
    return {
      name: ".dockerignore",
      type: "file",
      mode,
      uid: 0,
      gid: 0,
      mtime,
      size: data.length,
      source: bytes(data),
    };
  };
  async function* entries(): AsyncGenerator<LayerEntry> {
    for await (const e of walkContext(contextDir, filter)) {
      if (e.excluded) continue;
      const st = e.stats;
      if (extra && e.rel === ".dockerignore" && st.isFile()) {
        yield ignoreEntry(st.mode & 0o7777, st.mtime);
        continue;
      }
      const common = { name: e.rel, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: st.mtime };
      if (st.isDirectory()) yield { ...common, type: "dir" };
      else if (st.isFile()) yield { ...common, type: "file", size: st.size, source: e.full };
      else if (st.isSymbolicLink()) yield { ...common, type: "symlink", linkname: await readlink(e.full) };
    }
    if (extra) {
      const now = new Date();
      const { name, data } = extra;
      yield {
        name,
        type: "file",
        mode: 0o600,
        uid: 0,
        gid: 0,
        mtime: now,
        size: data.length,
        source: bytes(data),
      };
      if (ignore === undefined) yield ignoreEntry(0o644, now);
    }
  }
  return { entries: entries(), dockerfile };
}

async function build(ctx: CommandContext<BuildFlags>): Promise<number> {
  const [contextArg] = ctx.args as [string];
  const f = ctx.flags;
  if (/^(https?|git):\/\//.test(contextArg) || contextArg.startsWith("git@"))
    throw new CliError(
      "building from a URL or git repository is not supported: give a local folder as the context",
    );
  let body: Readable;
  let dockerfile: string | undefined;
  if (contextArg === "-") {
    if (f.file === "-") throw new UsageError("the context and the Dockerfile cannot both come from stdin");
    if (process.stdin.isTTY)
      throw new CliError("the context was to come from stdin (-), but stdin is a terminal");
    body = process.stdin;
    dockerfile = f.file;
  } else {
    const contextDir = resolve(contextArg);
    const st = await stat(contextDir).catch(() => null);
    if (!st) throw new CliError(`unable to prepare context: path "${contextArg}" not found`);
    if (!st.isDirectory())
      throw new CliError(`unable to prepare context: context must be a directory: ${contextDir}`);
    const prepared = await prepareContext(contextDir, f.file);
    const { packTar } = await import("../../shared/tar-pack.js");
    body = Readable.from(packTar(prepared.entries));
    dockerfile = prepared.dockerfile;
  }
  const res = await (
    await apiClient(ctx.host)
  ).stream("POST", "/build", {
    query: {
      t: f.tag ?? [],
      dockerfile,
      buildargs: JSON.stringify(parseBuildArgs(f.buildArg)),
      labels: JSON.stringify(parseLabels(f.label)),
      target: f.target,
      nocache: f.cache === false ? 1 : undefined,
      q: f.quiet ? 1 : undefined,
      rm: f.rm === false ? 0 : 1,
      forcerm: f.forceRm ? 1 : undefined,
    },
    body,
    contentType: "application/x-tar",
  });
  const { ProgressRenderer } = await import("../progress.js");
  const renderer = new ProgressRenderer(f.quiet ? { write: () => true } : process.stdout);
  await renderer.consume(res);
  const id = renderer.aux
    .map((a) => (a as { ID?: unknown } | null)?.ID)
    .filter((x): x is string => typeof x === "string")
    .pop();
  if (f.quiet && id) out(`${id}\n`);
  if (f.iidfile && id) await writeFile(f.iidfile, id);
  return 0;
}
