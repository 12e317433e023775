// RUN: the command runs in a container on the local engine, made from the step's starting
// image; its output streams to the client as it comes; the container is removed whatever
// happens (a failed step too). The caller commits the container's changes before removal.
import { messageOf } from "../../../shared/errors.js";
import { shortId } from "../../../shared/ids.js";
import type { CreateContainerRequest, ListContainersOptions, WaitCondition } from "../container/api.js";
import type { ContainerRecord, LogLine, LogOptions } from "../container/types.js";

/** What the builder needs of the container engine (ContainerEngine has all of it). */
export interface BuildContainers {
  create(request: CreateContainerRequest): Promise<{ Id: string }>;
  start(ref: string): Promise<void>;
  wait(ref: string, condition: WaitCondition, signal?: AbortSignal): Promise<{ StatusCode: number }>;
  logs(ref: string, options: LogOptions): AsyncIterable<LogLine>;
  kill(ref: string, signal?: string): Promise<void>;
  remove(ref: string, options: { force: boolean; volumes?: boolean }): Promise<void>;
  list(options: ListContainersOptions): ContainerRecord[];
  changesDir(ref: string): string;
}

/** Label on every build container, with the build's id as value. */
export const BUILD_LABEL = "io.shoal.build";

export interface RunRequest {
  image: string;
  argv: string[];
  env: string[];
  user: string;
  workdir: string;
  buildId: string;
  emit: (text: string) => void;
  signal?: AbortSignal;
}

export interface RunOutcome {
  exitCode: number;
  /** The last lines of the output, for the error message of a failed step. */
  tail: string[];
}

const TAIL_LINES = 10;

/** Create and start the container, stream its output, wait for its exit. Removal is the caller's. */
export async function runInContainer(
  containers: BuildContainers,
  req: RunRequest,
  onCreated: (id: string) => void,
): Promise<RunOutcome> {
  const { Id: id } = await containers.create({
    config: {
      Image: req.image,
      Cmd: req.argv,
      // The image's ENTRYPOINT does not apply to RUN.
      Entrypoint: [""],
      Env: req.env,
      User: req.user,
      WorkingDir: req.workdir,
      Labels: { [BUILD_LABEL]: req.buildId },
      Tty: false,
      OpenStdin: false,
      // As dockerd's builder: a RUN step is not health-checked, whatever the image says.
      Healthcheck: { Test: ["NONE"] },
    },
    hostConfig: { NetworkMode: "default" },
  });
  onCreated(id);
  req.emit(` ---> Running in ${shortId(id)}\n`);
  const onAbort = (): void => {
    void containers.kill(id, "SIGKILL").catch(() => undefined);
  };
  req.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await containers.start(id);
    const tail: string[] = [];
    let partial = "";
    for await (const line of containers.logs(id, {
      follow: true,
      stdout: true,
      stderr: true,
      signal: req.signal,
    })) {
      const text = line.data.toString("utf8");
      req.emit(text);
      partial += text;
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      tail.push(...lines);
      if (tail.length > TAIL_LINES) tail.splice(0, tail.length - TAIL_LINES);
    }
    if (partial !== "") tail.push(partial);
    const { StatusCode } = await containers.wait(id, "not-running", req.signal);
    return { exitCode: StatusCode, tail: tail.slice(-TAIL_LINES) };
  } finally {
    req.signal?.removeEventListener("abort", onAbort);
  }
}

/** Remove a build container; failures are logged by the caller, never hidden from it. */
export async function removeBuildContainer(
  containers: BuildContainers,
  id: string,
): Promise<string | undefined> {
  try {
    await containers.remove(id, { force: true, volumes: true });
    return undefined;
  } catch (e) {
    return messageOf(e);
  }
}
