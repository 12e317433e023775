// The Dockerfile builder (Docker's classic builder, `DOCKER_BUILDKIT=0 docker build`). A build
// unpacks its context into its own folder, parses the Dockerfile (a mistake is a 400 before
// anything runs), then runs the stages in order. Every step makes an image whose parent is the
// previous step's: RUN, COPY, ADD (and WORKDIR when it creates the folder) add a layer, the other
// instructions only change the config (history with empty_layer). Each step is first looked up
// in the layer cache (cache.ts), so an unchanged rebuild runs nothing. Output is Docker's JSON
// lines ("Step 1/5 : ...", " ---> Using cache", " ---> <id>", "Successfully built <id>").
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, rm } from "node:fs/promises";
import { join, posix } from "node:path";
import { internal, invalid, isShoalError, messageOf, notFound, ShoalError } from "../../../shared/errors.js";
import { shortId } from "../../../shared/ids.js";
import type { Logger } from "../../../shared/logging.js";
import { familiarString, parseTagReference } from "../../../shared/reference.js";
import { parseDurationMs } from "../../../shared/units.js";
import type { ImageStoreApi } from "../image/api.js";
import { hostArchitecture } from "../image/manifest.js";
import type { HealthConfig, ImageConfigBlob, ImageRecord, ImageRuntimeConfig } from "../image/types.js";
import { parseSignal } from "../runtime/signals.js";
import { BuildCache, cacheKey } from "./cache.js";
import { contextFilter, extractContext, pruneExcluded, readContextFile } from "./context.js";
import { copySummary, digestSources, findSources, planCopy, planWorkdir, type Source } from "./copy.js";
import {
  fromParts,
  parseDockerfile,
  stagesUpTo,
  type Dockerfile,
  type Instruction,
  type Stage,
} from "./dockerfile.js";
import { packLayer, upperDirEntries } from "./layer-tar.js";
import { mountView, unmountBelow, type RootfsView } from "./rootfs-view.js";
import { BUILD_LABEL, removeBuildContainer, runInContainer, type BuildContainers } from "./run-step.js";
import { argDeclarations, expandWord, jsonForm, nameValuePairs, splitWhitespace, type Env } from "./words.js";

export interface BuildOptions {
  /** Path of the Dockerfile inside the context (default "Dockerfile"). */
  dockerfile?: string;
  tags: string[];
  /** --build-arg values; null means "given without a value and not set in the client's env". */
  buildArgs: Record<string, string | null>;
  target?: string;
  noCache: boolean;
  /** --label: added to the final image by a last LABEL step, as dockerd does. */
  labels: Record<string, string>;
  quiet: boolean;
  /** Remove a RUN's container after a successful step (Docker's rm, default true). Failed steps always remove theirs. */
  rm: boolean;
}

/** One line of the JSON-lines answer. */
export interface BuildMessage {
  stream?: string;
  aux?: unknown;
  status?: string;
  id?: string;
  progressDetail?: unknown;
  error?: string;
  errorDetail?: { message: string; code?: number };
}
export type BuildEmit = (m: BuildMessage) => void;

/** Pulls an image into the store (the registry client), streaming its progress. */
export type PullFn = (ref: string, emit: BuildEmit, signal?: AbortSignal) => Promise<void>;

export interface BuilderDeps {
  dataRoot: string;
  images: ImageStoreApi;
  containers: BuildContainers;
  log: Logger;
}

/** A step that failed; `code` is a RUN's exit code. */
export class BuildStepError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
    this.name = "BuildStepError";
  }
}

const DEFAULT_SHELL = ["/bin/sh", "-c"];
/** Docker's predefined ARGs: usable without an ARG line, never in the cache key or history. */
const PROXY_ARGS = new Set(
  ["HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"].flatMap((a) => [a, a.toLowerCase()]),
);
/** Mount points the engine makes in a container's root: not part of a RUN's changes (dockerd's init layer). */
export const ENGINE_FILES = new Set(["etc/hosts", "etc/hostname", "etc/resolv.conf"]);

export class Builder {
  private constructor(
    private readonly deps: BuilderDeps,
    private readonly tmp: string,
    readonly cache: BuildCache,
  ) {}

  /** Open the builder on <dataRoot>/build; clears what a daemon that died mid-build left. */
  static async open(deps: BuilderDeps): Promise<Builder> {
    const root = join(deps.dataRoot, "build");
    const tmp = join(root, "tmp");
    await mkdir(root, { recursive: true, mode: 0o700 });
    await unmountBelow(tmp);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { mode: 0o700 });
    const cache = await BuildCache.open(join(root, "cache"));
    for (const c of deps.containers.list({ all: true, filters: { label: [BUILD_LABEL] } })) {
      const err = await removeBuildContainer(deps.containers, c.Id);
      if (err) deps.log.warn({ id: c.Id, err }, "cannot remove a build container left by an earlier daemon");
      else deps.log.info({ id: c.Id }, "removed a build container left by an earlier daemon");
    }
    return new Builder(deps, tmp, cache);
  }

  /**
   * Unpack the context, read and check the Dockerfile, the tags and the base images. Everything
   * that is the client's mistake throws here (400/404), before the answer starts streaming.
   */
  async prepare(
    context: AsyncIterable<Buffer | Uint8Array>,
    options: BuildOptions,
    pull?: PullFn,
  ): Promise<BuildJob> {
    const id = randomBytes(8).toString("hex");
    const dir = join(this.tmp, id);
    const ctxDir = join(dir, "context");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // The context's root is what `COPY . /dest` copies as a folder: 0755, as dockerd unpacks it.
    await mkdir(ctxDir, { mode: 0o755 });
    await chmod(ctxDir, 0o755);
    try {
      await extractContext(context, ctxDir);
      const dfPath = options.dockerfile || "Dockerfile";
      let text = await readContextFile(ctxDir, dfPath);
      if (text === undefined && !options.dockerfile) text = await readContextFile(ctxDir, "dockerfile");
      if (text === undefined) throw invalid(`Cannot locate specified Dockerfile: ${dfPath}`);
      const ignore = await readContextFile(ctxDir, ".dockerignore").catch(() => undefined);
      const df = parseDockerfile(text, dfPath);
      const stages = stagesUpTo(df, options.target);
      const tags = options.tags.map((t) => {
        try {
          return familiarString(parseTagReference(t));
        } catch (e) {
          throw invalid(`invalid tag "${t}": ${messageOf(e)}`);
        }
      });
      for (const [k, v] of Object.entries(options.labels)) {
        if (typeof v !== "string") throw invalid(`invalid label "${k}": its value must be a string`);
      }
      await pruneExcluded(ctxDir, contextFilter(ignore));
      const job = new BuildJob(this.deps, this.cache, { id, dir, ctxDir, df, stages, options, tags, pull });
      job.checkBaseImages();
      return job;
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** `POST /build/prune`: forget the cache (the intermediate images go with their images or `image prune`). */
  async pruneCache(): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }> {
    const n = await this.cache.clear();
    this.deps.log.info({ records: n }, "build cache cleared");
    return { CachesDeleted: [], SpaceReclaimed: 0 };
  }
}

interface StageState {
  stage: Stage;
  /** The current image; undefined while a FROM scratch stage has made nothing yet. */
  imageId?: string;
  config: ImageConfigBlob;
  /** ARGs declared in this stage, with their values (undefined: declared without one). */
  args: Map<string, string | undefined>;
  /** Whether this stage set CMD (a later ENTRYPOINT then keeps it). */
  cmdSet: boolean;
}

interface JobInit {
  id: string;
  dir: string;
  ctxDir: string;
  df: Dockerfile;
  stages: Stage[];
  options: BuildOptions;
  tags: string[];
  pull?: PullFn;
}

function emptyConfig(): ImageConfigBlob {
  return {
    architecture: hostArchitecture(),
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: [] },
    history: [],
  };
}

const envKey = (e: string): string => (e.includes("=") ? e.slice(0, e.indexOf("=")) : e);

class BuildJob {
  private readonly metaEnv = new Map<string, string>();
  private readonly consumed = new Set<string>();
  private readonly results = new Map<number, StageState>();
  private readonly views = new Set<RootfsView>();
  private readonly containersMade = new Set<string>();
  private emit: BuildEmit = () => {};
  private signal?: AbortSignal;

  constructor(
    private readonly deps: BuilderDeps,
    private readonly cache: BuildCache,
    private readonly init: JobInit,
  ) {
    const buildArgs = init.options.buildArgs;
    for (const ins of init.df.metaArgs) {
      for (const d of this.declarations(ins)) {
        if (d.name in buildArgs) this.consumed.add(d.name);
        const given = buildArgs[d.name];
        if (typeof given === "string") this.metaEnv.set(d.name, given);
        else if (d.value !== undefined) this.metaEnv.set(d.name, this.expand(ins, d.value, this.metaEnv));
      }
    }
  }

  get id(): string {
    return this.init.id;
  }

  private get escape(): string {
    return this.init.df.escape;
  }

  private out(text: string): void {
    if (!this.init.options.quiet) this.emit({ stream: text });
  }

  private declarations(ins: Instruction): Array<{ name: string; value?: string }> {
    try {
      return argDeclarations(ins.args, this.escape);
    } catch (e) {
      throw this.lineError(ins, e);
    }
  }

  /** An error of a step, naming the instruction and its line (once). */
  private lineError(ins: Instruction, e: unknown): Error {
    if (e instanceof BuildStepError || (e as { located?: boolean }).located) return e as Error;
    const message = messageOf(e);
    const where = ins.line > 0 ? `Dockerfile line ${ins.line}` : "the --label option";
    const text = message.startsWith(ins.keyword)
      ? `${message} (${where})`
      : `${ins.keyword} (${where}): ${message}`;
    const err = new ShoalError(isShoalError(e) ? e.kind : "invalid", text);
    return Object.assign(err, { located: true });
  }

  private expand(ins: Instruction, word: string, env: Env): string {
    try {
      return expandWord(word, env, this.escape);
    } catch (e) {
      throw this.lineError(ins, e);
    }
  }

  /** Variables a stage's instructions see: its ARGs with values, then ENV (which wins). */
  private envOf(state: StageState): Map<string, string> {
    const env = new Map<string, string>();
    for (const [k, v] of state.args) if (v !== undefined) env.set(k, v);
    for (const e of state.config.config?.Env ?? []) {
      const i = e.indexOf("=");
      env.set(i < 0 ? e : e.slice(0, i), i < 0 ? "" : e.slice(i + 1));
    }
    return env;
  }

  private runtime(state: StageState): ImageRuntimeConfig {
    state.config.config ??= {};
    return state.config.config;
  }

  private shellOf(state: StageState): string[] {
    return state.config.config?.Shell ?? DEFAULT_SHELL;
  }

  /** 404 now for a FROM image that is neither here nor pullable. */
  checkBaseImages(): void {
    const names = new Set<string>();
    for (const stage of this.init.stages) {
      const image = this.expand(stage.from, fromParts(stage.from).image, this.metaEnv);
      if (image.toLowerCase() !== "scratch" && !names.has(image.toLowerCase()) && !this.init.pull) {
        try {
          this.deps.images.resolve(image);
        } catch (e) {
          if (isShoalError(e) && e.kind === "not_found")
            throw notFound(
              `FROM ${image} (line ${stage.from.line}): no such image in the local store: pull it or load it first`,
            );
          throw this.lineError(stage.from, e);
        }
      }
      if (stage.name) names.add(stage.name);
    }
  }

  private async resolveImage(ref: string, ins: Instruction): Promise<ImageRecord> {
    try {
      return this.deps.images.resolve(ref);
    } catch (e) {
      if (!(isShoalError(e) && e.kind === "not_found")) throw this.lineError(ins, e);
      if (!this.init.pull)
        throw notFound(
          `${ins.keyword} ${ref} (line ${ins.line}): no such image in the local store: pull it or load it first`,
        );
    }
    await this.init.pull(ref, (m) => (this.init.options.quiet ? undefined : this.emit(m)), this.signal);
    return this.deps.images.resolve(ref);
  }

  /** Run the build; resolves with the final image id. Errors are thrown (the route streams them). */
  async run(emit: BuildEmit, signal?: AbortSignal): Promise<string> {
    this.emit = emit;
    this.signal = signal;
    const { df, stages, options } = this.init;
    const labelStep = this.labelInstruction();
    const total =
      df.metaArgs.length + stages.reduce((n, s) => n + s.instructions.length + 1, 0) + (labelStep ? 1 : 0);
    let n = 0;
    const announce = (ins: Instruction): void => {
      n++;
      this.out(`Step ${n}/${total} : ${ins.original}\n`);
    };
    for (const ins of df.metaArgs) announce(ins);
    let state: StageState | undefined;
    for (const stage of stages) {
      this.checkAborted();
      announce(stage.from);
      state = await this.from(stage);
      const last = stage === stages[stages.length - 1];
      for (const ins of [...stage.instructions, ...(last && labelStep ? [labelStep] : [])]) {
        this.checkAborted();
        announce(ins);
        try {
          await this.dispatch(state, ins);
        } catch (e) {
          throw this.lineError(ins, e);
        }
      }
      this.results.set(stage.index, state);
    }
    const unused = Object.keys(options.buildArgs).filter((k) => !this.consumed.has(k) && !PROXY_ARGS.has(k));
    if (unused.length > 0)
      this.out(`[Warning] One or more build-args [${unused.join(" ")}] were not consumed\n`);
    const finalId = state?.imageId;
    if (!finalId) throw new BuildStepError("No image was generated. Is your Dockerfile empty?");
    emit({ aux: { ID: finalId } });
    this.out(`Successfully built ${shortId(finalId)}\n`);
    for (const tag of this.init.tags) {
      await this.deps.images.tag(finalId, tag);
      this.out(`Successfully tagged ${tag}\n`);
    }
    // With q=1 the image id is all the output, as dockerd writes it (the docker CLI prints it).
    if (options.quiet) emit({ stream: `${finalId}\n` });
    this.deps.log.info({ build: this.id, image: finalId, tags: this.init.tags }, "image built");
    return finalId;
  }

  private checkAborted(): void {
    if (this.signal?.aborted) throw new BuildStepError("the build was cancelled: the client went away");
  }

  private labelInstruction(): Instruction | undefined {
    const entries = Object.entries(this.init.options.labels).sort(([a], [b]) => a.localeCompare(b));
    if (entries.length === 0) return undefined;
    const args = entries.map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(" ");
    return { line: 0, keyword: "LABEL", original: `LABEL ${args}`, args, flags: new Map() };
  }

  /** Release everything the build holds: views, containers, its folder. Never throws. */
  async cleanup(): Promise<void> {
    for (const v of this.views)
      await v
        .release()
        .catch((e: unknown) => this.deps.log.warn({ err: messageOf(e) }, "releasing a build view failed"));
    this.views.clear();
    for (const id of this.containersMade) {
      const err = await removeBuildContainer(this.deps.containers, id);
      if (err) this.deps.log.warn({ id, err }, "cannot remove a build container");
    }
    this.containersMade.clear();
    await rm(this.init.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  // ---- stages ---------------------------------------------------------------------------

  private stageRef(name: string, current: number): StageState | undefined {
    const lower = name.toLowerCase();
    for (const s of this.init.stages) {
      if (s.index >= current) break;
      if (s.name === lower || String(s.index) === name) return this.results.get(s.index);
    }
    return undefined;
  }

  private async from(stage: Stage): Promise<StageState> {
    const ins = stage.from;
    const ref = this.expand(ins, fromParts(ins).image, this.metaEnv);
    const platform = ins.flags.get("platform");
    if (platform !== undefined) this.expand(ins, platform, this.metaEnv); // accepted; one platform per host
    const fresh = { stage, args: new Map<string, string | undefined>(), cmdSet: false };
    if (ref.toLowerCase() === "scratch") return { ...fresh, config: emptyConfig() };
    const prev = stage.index > 0 ? this.stageRef(ref, stage.index) : undefined;
    if (prev) {
      if (prev.imageId) this.out(` ---> ${shortId(prev.imageId)}\n`);
      return { ...fresh, imageId: prev.imageId, config: structuredClone(prev.config) };
    }
    const image = await this.resolveImage(ref, ins);
    this.out(` ---> ${shortId(image.id)}\n`);
    const config = structuredClone(image.config);
    config.config ??= {};
    config.history ??= [];
    return { ...fresh, imageId: image.id, config };
  }

  // ---- steps ----------------------------------------------------------------------------

  /** A cached image for the step, adopted into the state. */
  private async cached(state: StageState, key: string): Promise<boolean> {
    if (this.init.options.noCache) return false;
    const rec = await this.cache.get(key, (id) => {
      try {
        this.deps.images.resolve(id);
        return true;
      } catch {
        return false;
      }
    });
    if (!rec || rec.parent !== (state.imageId ?? "")) return false;
    const image = this.deps.images.resolve(rec.image);
    state.imageId = image.id;
    state.config = structuredClone(image.config);
    this.out(` ---> Using cache\n ---> ${shortId(image.id)}\n`);
    return true;
  }

  /** Make the step's image from the state's config (already changed), with an optional layer. */
  private async commit(
    state: StageState,
    key: string,
    keyText: string,
    createdBy: string,
    layer?: AsyncIterable<Buffer>,
    beforeId?: () => Promise<void>,
  ): Promise<void> {
    const created = new Date().toISOString();
    const config = structuredClone(state.config);
    config.created = created;
    config.history = [
      ...(config.history ?? []),
      { created, created_by: createdBy, ...(layer ? {} : { empty_layer: true }) },
    ];
    const parent = state.imageId;
    const image = await this.deps.images.createImage({
      config,
      parent,
      layer,
      what: `the layer of "${keyText}"`,
    });
    await this.cache.put(key, { image: image.id, parent: parent ?? "", step: keyText, created });
    await beforeId?.();
    state.imageId = image.id;
    state.config = structuredClone(image.config);
    this.out(` ---> ${shortId(image.id)}\n`);
  }

  /** A step that changes only the config. */
  private async configStep(
    state: StageState,
    text: string,
    change: (c: ImageRuntimeConfig) => void,
    keyText = text,
  ): Promise<void> {
    const key = cacheKey(state.imageId ?? "", keyText);
    if (await this.cached(state, key)) return;
    change(this.runtime(state));
    await this.commit(state, key, text, `${this.shellOf(state).join(" ")} #(nop)  ${text}`);
  }

  private async dispatch(state: StageState, ins: Instruction): Promise<void> {
    const env = this.envOf(state);
    const x = (w: string): string => this.expand(ins, w, env);
    switch (ins.keyword) {
      case "ARG":
        return this.arg(state, ins, env);
      case "ENV": {
        const pairs = nameValuePairs(ins.args, "ENV", this.escape).map(([k, v]) => [x(k), x(v)] as const);
        for (const [k] of pairs) if (k === "") throw invalid("ENV names can not be blank");
        const text = `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`;
        return this.configStep(state, text, (c) => {
          const list = [...(c.Env ?? [])];
          for (const [k, v] of pairs) {
            const i = list.findIndex((e) => envKey(e) === k);
            if (i >= 0) list[i] = `${k}=${v}`;
            else list.push(`${k}=${v}`);
          }
          c.Env = list;
        });
      }
      case "LABEL": {
        const pairs = nameValuePairs(ins.args, "LABEL", this.escape).map(([k, v]) => [x(k), x(v)] as const);
        for (const [k] of pairs) if (k === "") throw invalid("LABEL names can not be blank");
        const text = `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`;
        return this.configStep(state, text, (c) => {
          c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(pairs) };
        });
      }
      case "MAINTAINER": {
        const text = `MAINTAINER ${ins.args.trim()}`;
        const key = cacheKey(state.imageId ?? "", text);
        if (await this.cached(state, key)) return;
        state.config.author = ins.args.trim();
        return this.commit(state, key, text, `${this.shellOf(state).join(" ")} #(nop)  ${text}`);
      }
      case "USER": {
        const user = x(ins.args.trim());
        if (user === "") throw invalid("USER requires a user name or uid");
        return this.configStep(state, `USER ${user}`, (c) => {
          c.User = user;
        });
      }
      case "EXPOSE": {
        const ports = splitWhitespace(ins.args).flatMap((w) => exposedPorts(x(w)));
        return this.configStep(state, `EXPOSE ${ports.join(" ")}`, (c) => {
          c.ExposedPorts = { ...(c.ExposedPorts ?? {}), ...Object.fromEntries(ports.map((p) => [p, {}])) };
        });
      }
      case "VOLUME": {
        const list = (jsonForm(ins.args) ?? splitWhitespace(ins.args)).map(x);
        if (list.length === 0 || list.some((v) => v.trim() === ""))
          throw invalid("VOLUME specified can not be an empty string");
        return this.configStep(state, `VOLUME ${JSON.stringify(list)}`, (c) => {
          c.Volumes = { ...(c.Volumes ?? {}), ...Object.fromEntries(list.map((v) => [v, {}])) };
        });
      }
      case "STOPSIGNAL": {
        const sig = x(ins.args.trim());
        parseSignal(sig);
        return this.configStep(state, `STOPSIGNAL ${sig}`, (c) => {
          c.StopSignal = sig;
        });
      }
      case "SHELL": {
        const shell = jsonForm(ins.args) as string[];
        return this.configStep(state, `SHELL ${JSON.stringify(shell)}`, (c) => {
          c.Shell = shell;
        });
      }
      case "CMD":
      case "ENTRYPOINT": {
        const argv = jsonForm(ins.args) ?? [...this.shellOf(state), ins.args];
        const text = `${ins.keyword} ${JSON.stringify(argv)}`;
        const cmdSet = state.cmdSet;
        if (ins.keyword === "CMD") state.cmdSet = true;
        const change = (c: ImageRuntimeConfig): void => {
          if (ins.keyword === "CMD") c.Cmd = argv;
          else {
            c.Entrypoint = argv;
            // As in dockerd: an ENTRYPOINT drops a CMD inherited from the base image.
            if (!cmdSet) c.Cmd = null;
          }
        };
        return this.configStep(
          state,
          text,
          change,
          ins.keyword === "ENTRYPOINT" && !cmdSet ? `${text} drop-cmd` : text,
        );
      }
      case "HEALTHCHECK": {
        const health = healthcheck(ins);
        return this.configStep(state, `HEALTHCHECK ${JSON.stringify(health)}`, (c) => {
          c.Healthcheck = health;
        });
      }
      case "WORKDIR":
        return this.workdir(state, x(ins.args.trim()));
      case "RUN":
        return this.runStep(state, ins);
      case "COPY":
      case "ADD":
        return this.copyStep(state, ins, x);
      default:
        throw internal(`no handler for ${ins.keyword}`);
    }
  }

  private async arg(state: StageState, ins: Instruction, env: Map<string, string>): Promise<void> {
    const decls = this.declarations(ins);
    const buildArgs = this.init.options.buildArgs;
    for (const d of decls) {
      if (d.name in buildArgs) this.consumed.add(d.name);
      const given = buildArgs[d.name];
      let value: string | undefined;
      if (typeof given === "string") value = given;
      else if (d.value !== undefined) value = this.expand(ins, d.value, env);
      else value = this.metaEnv.get(d.name);
      state.args.set(d.name, value);
    }
    const text = `ARG ${decls.map((d) => (d.value !== undefined ? `${d.name}=${d.value}` : d.name)).join(" ")}`;
    await this.configStep(state, text, () => {});
  }

  private async view(state: StageState): Promise<RootfsView> {
    const image = state.imageId ? this.deps.images.resolve(state.imageId) : undefined;
    const v = await mountView(this.deps.images, image, join(this.init.dir, "views"));
    this.views.add(v);
    return v;
  }

  private async release(v: RootfsView | undefined): Promise<void> {
    if (!v) return;
    this.views.delete(v);
    await v.release();
  }

  private async workdir(state: StageState, path: string): Promise<void> {
    if (path === "") throw invalid("WORKDIR requires a path");
    const dir = posix.resolve(this.runtime(state).WorkingDir || "/", path);
    const text = `WORKDIR ${dir}`;
    const key = cacheKey(state.imageId ?? "", text);
    if (await this.cached(state, key)) return;
    const v = await this.view(state);
    try {
      const entries = await planWorkdir(v.dir, dir);
      this.runtime(state).WorkingDir = dir;
      const createdBy = `${this.shellOf(state).join(" ")} #(nop) WORKDIR ${dir}`;
      await this.commit(state, key, text, createdBy, entries.length > 0 ? packLayer(entries) : undefined);
    } finally {
      await this.release(v);
    }
  }

  private async runStep(state: StageState, ins: Instruction): Promise<void> {
    const json = jsonForm(ins.args);
    const argv = json ?? [...this.shellOf(state), ins.args];
    const configEnv = new Set((state.config.config?.Env ?? []).map(envKey));
    const buildArgs = this.init.options.buildArgs;
    // Build args the command sees: the stage's ARGs with values, and the predefined proxy ones given.
    const visible = new Map<string, string>();
    for (const [k, v] of state.args) if (v !== undefined) visible.set(k, v);
    for (const k of PROXY_ARGS) {
      const v = buildArgs[k];
      if (typeof v === "string" && !state.args.has(k)) {
        visible.set(k, v);
        this.consumed.add(k);
      }
    }
    const runEnv = [...visible].filter(([k]) => !configEnv.has(k)).map(([k, v]) => `${k}=${v}`);
    // Docker's "|N K=V ..." prefix: the args in the cache key and history (not the proxy ones).
    const keyed = runEnv.filter((e) => !PROXY_ARGS.has(envKey(e)) || state.args.has(envKey(e))).sort();
    const saved = keyed.length > 0 ? [`|${keyed.length}`, ...keyed, ...argv] : argv;
    const text = `RUN ${JSON.stringify(saved)}`;
    const key = cacheKey(state.imageId ?? "", text);
    if (await this.cached(state, key)) return;
    if (!state.imageId) {
      // FROM scratch with nothing in it yet: the container needs an image to start from.
      const base = await this.deps.images.createImage({ config: structuredClone(state.config) });
      state.imageId = base.id;
    }
    const runtime = this.runtime(state);
    let containerId: string | undefined;
    let committed = false;
    try {
      const outcome = await runInContainer(
        this.deps.containers,
        {
          image: state.imageId,
          argv,
          env: runEnv,
          user: runtime.User ?? "",
          workdir: runtime.WorkingDir ?? "",
          buildId: this.id,
          emit: (t) => this.out(t),
          signal: this.signal,
        },
        (id) => {
          containerId = id;
          this.containersMade.add(id);
        },
      );
      this.checkAborted();
      if (outcome.exitCode !== 0) {
        const tail =
          outcome.tail.length > 0 ? `; the last lines of its output:\n${outcome.tail.join("\n")}` : "";
        throw new BuildStepError(
          `The command '${argv.join(" ")}' returned a non-zero code: ${outcome.exitCode}${tail}`,
          outcome.exitCode,
        );
      }
      const id = containerId as string;
      const layer = packLayer(
        upperDirEntries(this.deps.containers.changesDir(id), { skipEmptyFiles: ENGINE_FILES }),
      );
      await this.commit(state, key, text, saved.join(" "), layer, async () => {
        if (!this.init.options.rm) return;
        this.containersMade.delete(id);
        const err = await removeBuildContainer(this.deps.containers, id);
        if (err) {
          this.containersMade.add(id);
          this.out(`Removing intermediate container ${shortId(id)}: ${err}\n`);
        } else this.out(` ---> Removed intermediate container ${shortId(id)}\n`);
      });
      committed = true;
      // With rm=0 the container of a successful step stays, as in dockerd.
      if (!this.init.options.rm) this.containersMade.delete(id);
    } finally {
      if (!committed && containerId && this.containersMade.has(containerId)) {
        // A failed step's container goes at once (dockerd keeps it unless --force-rm; shoal never keeps one).
        this.containersMade.delete(containerId);
        const err = await removeBuildContainer(this.deps.containers, containerId);
        if (err) this.deps.log.warn({ id: containerId, err }, "cannot remove a build container");
      }
    }
  }

  private async copyStep(state: StageState, ins: Instruction, x: (w: string) => string): Promise<void> {
    const keyword = ins.keyword as "COPY" | "ADD";
    const words = (jsonForm(ins.args) ?? splitWhitespace(ins.args)).map(x);
    const dest = words.pop() as string;
    const sources = words;
    const fromName = ins.flags.has("from") ? x(ins.flags.get("from") as string) : undefined;
    const chown = ins.flags.has("chown") ? x(ins.flags.get("chown") as string) : undefined;
    const chmod = ins.flags.has("chmod") ? x(ins.flags.get("chmod") as string) : undefined;
    const flagText = [chown ? `--chown=${chown}` : "", chmod ? `--chmod=${chmod}` : ""]
      .filter(Boolean)
      .join(" ");
    const workdir = this.runtime(state).WorkingDir || "/";

    // Where the sources come from, and what the cache key says about their content.
    let fromImage: ImageRecord | undefined;
    let fromLabel = "";
    let found: Source[] | undefined;
    let digest: string;
    if (fromName !== undefined) {
      const stage = this.stageRef(fromName, state.stage.index);
      if (stage) {
        fromImage = stage.imageId ? this.deps.images.resolve(stage.imageId) : undefined;
        fromLabel = `stage ${fromName}`;
      } else {
        if (this.init.stages.some((s) => s.name === fromName.toLowerCase() || String(s.index) === fromName))
          throw invalid(`invalid from flag value ${fromName}: a stage can only copy from an earlier stage`);
        fromImage = await this.resolveImage(fromName, ins);
        fromLabel = `image ${fromName}`;
      }
      // An image's files are fixed by its id: no need to read them to know whether they changed.
      digest = createHash("sha256")
        .update(`from:${fromImage?.id ?? "scratch"}`)
        .digest("hex");
    } else {
      found = await findSources({ keyword, sources, srcRoot: this.init.ctxDir, srcKind: "context" });
      digest = await digestSources(found);
    }
    const text = `${keyword} ${flagText ? `${flagText} ` : ""}${fromName !== undefined ? `--from=${fromName} ` : ""}${JSON.stringify(sources)} ${dest} (workdir ${workdir})`;
    const key = cacheKey(state.imageId ?? "", text, digest);
    if (await this.cached(state, key)) return;

    let srcView: RootfsView | undefined;
    let destView: RootfsView | undefined;
    try {
      if (fromName !== undefined) {
        srcView = await this.viewOf(fromImage);
        found = await findSources({
          keyword,
          sources,
          srcRoot: srcView.dir,
          srcKind: "image",
          srcName: fromLabel,
        });
      }
      destView = await this.view(state);
      const req = {
        keyword,
        sources,
        dest,
        workdir,
        srcRoot: srcView?.dir ?? this.init.ctxDir,
        srcKind: (srcView ? "image" : "context") as "image" | "context",
        srcName: fromLabel,
        destRoot: destView.dir,
        chown,
        chmod,
      };
      const plan = await planCopy(req, found as Source[]);
      const summary = copySummary(req, found as Source[], digest);
      const createdBy = `${this.shellOf(state).join(" ")} #(nop) ${keyword} ${flagText ? `${flagText} ` : ""}${summary} `;
      await this.commit(state, key, text, createdBy, packLayer(plan.entries()));
    } finally {
      await this.release(srcView);
      await this.release(destView);
    }
  }

  private async viewOf(image: ImageRecord | undefined): Promise<RootfsView> {
    const v = await mountView(this.deps.images, image, join(this.init.dir, "views"));
    this.views.add(v);
    return v;
  }
}

/** EXPOSE's ports as Docker stores them ("80/tcp"), ranges expanded. */
export function exposedPorts(spec: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!m) throw invalid(`invalid containerPort: ${spec}: use a port such as 80, 53/udp or 8000-8010/tcp`);
  const first = Number(m[1]);
  const last = m[2] !== undefined ? Number(m[2]) : first;
  const proto = (m[3] ?? "tcp").toLowerCase();
  if (first < 1 || last > 65535 || last < first) throw invalid(`invalid port range: ${spec}`);
  if (last - first > 1024) throw invalid(`port range ${spec} is too large (at most 1025 ports)`);
  const out: string[] = [];
  for (let p = first; p <= last; p++) out.push(`${p}/${proto}`);
  return out;
}

/** HEALTHCHECK as Docker stores it: Test ["CMD-SHELL", ...], ["CMD", ...] or ["NONE"], durations in ns. */
export function healthcheck(ins: Instruction): HealthConfig {
  const args = ins.args.trim();
  const first = splitWhitespace(args)[0] ?? "";
  if (first.toUpperCase() === "NONE") return { Test: ["NONE"] };
  const rest = args.slice(first.length).trim();
  const json = jsonForm(rest);
  const health: HealthConfig = { Test: json ? ["CMD", ...json] : ["CMD-SHELL", rest] };
  const duration = (name: string): number | undefined => {
    const v = ins.flags.get(name);
    if (v === undefined) return undefined;
    const ms = parseDurationMs(v, `HEALTHCHECK --${name}`);
    if (ms !== 0 && ms < 1) throw invalid(`HEALTHCHECK --${name}=${v} cannot be less than 1ms`);
    return Math.round(ms * 1e6);
  };
  const fields: Array<[keyof HealthConfig, string]> = [
    ["Interval", "interval"],
    ["Timeout", "timeout"],
    ["StartPeriod", "start-period"],
    ["StartInterval", "start-interval"],
  ];
  for (const [field, flag] of fields) {
    const ns = duration(flag);
    if (ns) (health as unknown as Record<string, number>)[field] = ns;
  }
  const retries = ins.flags.get("retries");
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries)) throw invalid(`HEALTHCHECK --retries=${retries}: expected a whole number`);
    if (Number(retries) > 0) health.Retries = Number(retries);
  }
  return health;
}
