import { join } from "node:path";
import { internal, ShoalError } from "../../../shared/errors.js";
import { pathExists } from "../../../shared/fsutil.js";
import { CommandError, runCommand } from "./command.js";

/** What `runc state` prints. */
export interface RuntimeState {
  ociVersion: string;
  id: string;
  pid: number;
  /** "creating" | "created" | "running" | "paused" | "stopped" */
  status: string;
  bundle: string;
  rootfs: string;
  created: string;
}

/** Pull the `msg="..."` part out of runc's logrus line so users see the reason, not the log noise. */
export function runtimeMessage(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  const messages: string[] = [];
  for (const line of lines) {
    const m = /msg="((?:[^"\\]|\\.)*)"/.exec(line);
    if (m) {
      try {
        messages.push(JSON.parse(`"${m[1]}"`) as string);
      } catch {
        messages.push(m[1]);
      }
    } else {
      messages.push(line.trim());
    }
  }
  return messages.join("; ") || stderr.trim();
}

const unknownContainer = /does not exist|not found|no such/i;

/**
 * The OCI runtime binary, always with this daemon's state root, so several daemons on one host
 * (the lab) never see each other's containers. crun and youki accept the same commands.
 */
export class Runtime {
  constructor(
    readonly binary: string,
    readonly root: string,
  ) {}

  private async run(args: string[], what: string): Promise<string> {
    try {
      const { stdout } = await runCommand(this.binary, ["--root", this.root, ...args]);
      return stdout;
    } catch (e) {
      if (e instanceof CommandError) {
        throw new ShoalError("internal", `${what}: ${runtimeMessage(e.stderr) || e.message}`, { cause: e });
      }
      throw internal(`${what}: ${String(e)}`, e);
    }
  }

  /** The runtime's view of a container, or undefined when it does not know the id. */
  async state(id: string): Promise<RuntimeState | undefined> {
    try {
      const out = await this.run(["state", id], `runtime state of ${id}`);
      return JSON.parse(out) as RuntimeState;
    } catch (e) {
      if (e instanceof ShoalError && unknownContainer.test(e.message)) return undefined;
      throw e;
    }
  }

  async start(id: string): Promise<void> {
    await this.run(["start", id], `starting container ${id}`);
  }

  /** Send a signal to the container's init (all processes with `all`, needed when it has no pid namespace). */
  async kill(id: string, signal: number, all = false): Promise<void> {
    await this.run(
      ["kill", ...(all ? ["--all"] : []), id, String(signal)],
      `sending signal ${signal} to container ${id}`,
    );
  }

  /** Forget a container; with force it kills it first. Unknown ids are not an error. */
  async delete(id: string, force: boolean): Promise<void> {
    // runc, crun and youki keep a folder per container under --root; without one there is
    // nothing to delete, and a process start saved is a few milliseconds off every container start.
    if (!(await pathExists(join(this.root, id)))) return;
    try {
      await this.run(["delete", ...(force ? ["--force"] : []), id], `deleting runtime state of ${id}`);
    } catch (e) {
      if (e instanceof ShoalError && unknownContainer.test(e.message)) return;
      throw e;
    }
  }
}
