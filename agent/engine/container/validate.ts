import { invalid } from "../../../shared/errors.js";
import { parseSignal } from "../runtime/signals.js";
import { NAME_PATTERN } from "./store.js";
import type { ContainerConfig } from "./types.js";
import type { HostConfig } from "../../../shared/engine-api.js";

const MIN_MEMORY = 6 * 1024 * 1024;

export function validateName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw invalid(
      `Invalid container name (${name}) for --name: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least two characters`,
    );
  }
  return name.replace(/^\//, "");
}

const restartPolicies = new Set(["no", "always", "unless-stopped", "on-failure"]);

/** Reject settings Docker rejects, naming the flag to fix. */
export function validateSettings(config: ContainerConfig, host: HostConfig): void {
  if (host.Memory < 0)
    throw invalid(`invalid value ${host.Memory} for --memory: the limit must not be negative`);
  if (host.Memory > 0 && host.Memory < MIN_MEMORY)
    throw invalid("Minimum memory limit allowed is 6MB: raise --memory");
  if (host.MemorySwap < -1)
    throw invalid(`invalid value ${host.MemorySwap} for --memory-swap: use -1 for unlimited or a size`);
  if (host.MemorySwap > 0 && host.Memory === 0) {
    throw invalid(
      "You should always set the Memory limit when using Memoryswap limit, see usage: add --memory",
    );
  }
  if (host.MemorySwap > 0 && host.MemorySwap < host.Memory) {
    throw invalid(
      "Minimum memoryswap limit should be larger than memory limit, see usage: raise --memory-swap",
    );
  }
  if (host.NanoCpus < 0)
    throw invalid(`invalid value ${host.NanoCpus / 1e9} for --cpus: the number of CPUs must not be negative`);
  if (host.CpuShares < 0)
    throw invalid(`invalid value ${host.CpuShares} for --cpu-shares: shares must not be negative`);
  if (host.PidsLimit !== null && host.PidsLimit < 0) {
    throw invalid(
      `invalid value ${host.PidsLimit} for --pids-limit: use a positive number, or 0 or -1 for unlimited`,
    );
  }
  if (host.ShmSize !== undefined && host.ShmSize < 0)
    throw invalid(`invalid value ${host.ShmSize} for --shm-size: the size must not be negative`);
  const policy = host.RestartPolicy;
  if (!restartPolicies.has(policy.Name)) {
    throw invalid(
      `invalid restart policy "${policy.Name}" for --restart: use no, always, unless-stopped or on-failure[:max-retries]`,
    );
  }
  if (policy.MaximumRetryCount < 0)
    throw invalid("invalid --restart: the maximum retry count must not be negative");
  if (policy.MaximumRetryCount > 0 && policy.Name !== "on-failure") {
    throw invalid(
      `invalid --restart: a maximum retry count cannot be used with restart policy '${policy.Name}'`,
    );
  }
  if (host.AutoRemove && policy.Name !== "no") {
    throw invalid("conflicting options: cannot combine --rm with a --restart policy other than no");
  }
  if (host.NetworkMode === "container:") {
    throw invalid(`invalid --network container: name the container whose network to join (container:NAME)`);
  }
  // dockerd's rule: refused here, not left to fail in runc at start.
  if (config.WorkingDir && !config.WorkingDir.startsWith("/"))
    throw invalid(
      `the working directory '${config.WorkingDir}' is invalid, it needs to be an absolute path: give -w /${config.WorkingDir} or another absolute path`,
    );
  if (config.StopSignal) parseSignal(config.StopSignal);
  if (config.StopTimeout !== undefined && config.StopTimeout !== null && config.StopTimeout < -1) {
    throw invalid(
      `invalid value ${config.StopTimeout} for --stop-timeout: use seconds, or -1 to wait forever`,
    );
  }
  for (const u of host.Ulimits ?? []) {
    if (u.Soft > u.Hard)
      throw invalid(
        `invalid --ulimit ${u.Name}=${u.Soft}:${u.Hard}: the soft limit must not exceed the hard limit`,
      );
  }
}
