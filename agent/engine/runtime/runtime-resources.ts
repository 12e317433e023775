// The OCI runtime's commands for a running container's cgroup: freeze (pause), thaw (resume)
// and new limits (update). Same --root as every other runtime call (runtime/runc.ts).
import { internal, ShoalError } from "../../../shared/errors.js";
import { CommandError, runCommand } from "./command.js";
import type { LinuxResources } from "./oci-types.js";
import { runtimeMessage, type Runtime } from "./runc.js";

async function run(runtime: Runtime, args: string[], what: string, input?: string): Promise<void> {
  try {
    await runCommand(runtime.binary, ["--root", runtime.root, ...args], { input, timeoutMs: 30_000 });
  } catch (e) {
    if (e instanceof CommandError)
      throw new ShoalError("internal", `${what}: ${runtimeMessage(e.stderr) || e.message}`, { cause: e });
    throw internal(`${what}: ${String(e)}`, e);
  }
}

/** Freeze every process of the container (cgroup freezer). */
export function pauseRuntime(runtime: Runtime, id: string): Promise<void> {
  return run(runtime, ["pause", id], `pausing container ${id}`);
}

export function resumeRuntime(runtime: Runtime, id: string): Promise<void> {
  return run(runtime, ["resume", id], `unpausing container ${id}`);
}

/** Write new limits into the running container's cgroup; fields left out keep their value. */
export function updateRuntime(
  runtime: Runtime,
  id: string,
  resources: Omit<LinuxResources, "devices">,
): Promise<void> {
  return run(
    runtime,
    ["update", "--resources", "-", id],
    `updating container ${id}`,
    JSON.stringify(resources),
  );
}
