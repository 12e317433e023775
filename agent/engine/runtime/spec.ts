// A container record → the OCI runtime spec (config.json) runc runs, with dockerd's default
// security profile: 14 capabilities, default seccomp, masked and read-only /proc and /sys
// paths, a devices cgroup allow-list, and the HostConfig limits.

import { availableParallelism, hostname as osHostname } from "node:os";
import { invalid } from "../../../shared/errors.js";
import type { ContainerRecord } from "../container/types.js";
import type { ImageConfigBlob } from "../image/types.js";
import {
  allCapabilities,
  applyCapAddDrop,
  currentCapabilityEnv,
  DEFAULT_CAPABILITIES,
  type CapabilityEnv,
} from "./capabilities.js";
import {
  OCI_VERSION,
  type LinuxCapabilities,
  type LinuxDevice,
  type LinuxNamespace,
  type Spec,
} from "./oci-types.js";
import type { SeccompHost } from "./seccomp-default.js";
import { applyHostConfigExtras, namespacesFor, seccompFor, shmMountsFor } from "./spec-hostcfg.js";
import { defaultDeviceRules, hostDevices, privilegedDeviceRules } from "./spec-devices.js";
import { processEnv } from "./spec-env.js";
import {
  DEFAULT_SHM_SIZE,
  defaultMounts,
  etcMounts,
  INIT_PATH_IN_CONTAINER,
  MASKED_PATHS,
  READONLY_PATHS,
  rootfsPropagationFor,
  withUserMounts,
} from "./spec-mounts.js";
import { buildResources, buildRlimits, validateResources, type HostRlimits } from "./spec-resources.js";
import { resolveUser } from "./user.js";

export interface SpecInput {
  /** Config + HostConfig in Engine API shapes; the image's Env/Cmd/Entrypoint/WorkingDir/User already merged. */
  record: ContainerRecord;
  image: ImageConfigBlob;
  /** The mounted root filesystem (overlayfs). */
  rootfsPath: string;
  /** Exact linux.cgroupsPath, e.g. cgroupsPathFor(parent, id, version). */
  cgroupsPath: string;
  /** Static tini on the host, bind-mounted read-only at /sbin/docker-init when HostConfig.Init. */
  initPath: string;
  /** Host is cgroup v2: the container gets a private cgroup namespace (dockerd's default there). */
  cgroupV2: boolean;
  /** hasSwapAccounting(): without it no memory+swap limit is written. */
  swapAccounting: boolean;
  /** A network namespace prepared by the engine; absent = a fresh one, which runc gives a loopback that is up. */
  netnsPath?: string;
  /** Files bind-mounted as /etc/hosts, /etc/resolv.conf and /etc/hostname (the engine rewrites them in place). */
  etcFiles?: { hosts: string; resolvConf: string; hostname: string };
  /** For validating --cpus; default os.availableParallelism(). */
  hostCpus?: number;
  /** detectCapabilities() result; default the one cached at start-up. */
  capabilities?: CapabilityEnv;
  /** Architecture and kernel for the seccomp profile; default this host. */
  seccompHost?: SeccompHost;
  /** The daemon's own rlimits (readHostRlimits()); when given, --ulimit above them is refused. */
  hostRlimits?: HostRlimits;
  /** Devices a --privileged container gets; default hostDevices() (a walk of /dev). */
  hostDevices?: LinuxDevice[];
}

function capabilitySets(caps: string[], uid: number): LinuxCapabilities {
  // dockerd (23+) gives a non-root process only the bounding set, as execve would.
  const own = uid === 0 ? [...caps] : [];
  return { bounding: [...caps], effective: own, permitted: [...own], inheritable: [], ambient: [] };
}

export async function buildSpec(input: SpecInput): Promise<Spec> {
  const { record } = input;
  const hc = record.HostConfig;
  const cfg = record.Config;
  const privileged = hc.Privileged === true;
  if (!record.Path) throw invalid("No command specified");

  const resourceCtx = {
    hostCpus: input.hostCpus ?? availableParallelism(),
    swapAccounting: input.swapAccounting,
  };
  validateResources(hc, resourceCtx);
  const rlimits = buildRlimits(hc.Ulimits, input.hostRlimits);
  const capEnv = input.capabilities ?? currentCapabilityEnv();
  const caps = privileged
    ? allCapabilities(capEnv)
    : applyCapAddDrop(DEFAULT_CAPABILITIES, hc.CapAdd, hc.CapDrop, capEnv);
  const user = await resolveUser(input.rootfsPath, cfg.User ?? "");

  const hostNetwork = hc.NetworkMode === "host";
  const hostname =
    hostNetwork || hc.UTSMode === "host" ? osHostname() : cfg.Hostname || record.Id.slice(0, 12);
  const init = hc.Init === true;
  const args = [...(init ? [INIT_PATH_IN_CONTAINER, "--"] : []), record.Path, ...record.Args];

  const network: LinuxNamespace | undefined = hostNetwork
    ? undefined
    : input.netnsPath !== undefined
      ? { type: "network", path: input.netnsPath }
      : { type: "network" };
  const namespaces = namespacesFor(hc, network, input.cgroupV2);

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: cfg.Tty === true,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args,
      env: processEnv({ hostname, tty: cfg.Tty === true, env: cfg.Env ?? [], home: user.home }),
      cwd: cfg.WorkingDir || "/",
      capabilities: capabilitySets(caps, user.uid),
      noNewPrivileges: false,
      oomScoreAdj: 0,
    },
    root: { path: input.rootfsPath, readonly: hc.ReadonlyRootfs === true },
    hostname,
    mounts: shmMountsFor(
      defaultMounts({
        shmSize: hc.ShmSize !== undefined && hc.ShmSize > 0 ? hc.ShmSize : DEFAULT_SHM_SIZE,
        readonlyRoot: hc.ReadonlyRootfs === true,
        privileged,
        initPath: init ? input.initPath : undefined,
      }),
      hc.IpcMode,
    ),
    linux: {
      namespaces,
      devices: privileged ? (input.hostDevices ?? (await hostDevices())) : [],
      resources: buildResources(hc, privileged ? privilegedDeviceRules() : defaultDeviceRules(), resourceCtx),
      cgroupsPath: input.cgroupsPath,
    },
  };
  if (input.etcFiles) spec.mounts.push(...etcMounts(input.etcFiles, hc.ReadonlyRootfs === true));
  // Volumes, binds and tmpfs last, replacing a default mount of the same path (as dockerd does).
  spec.mounts = withUserMounts(spec.mounts, record);
  const rootfsPropagation = rootfsPropagationFor(spec.mounts);
  if (rootfsPropagation) spec.linux.rootfsPropagation = rootfsPropagation;
  if (cfg.Domainname && hc.UTSMode !== "host") spec.domainname = cfg.Domainname;
  if (rlimits) spec.process.rlimits = rlimits;
  await applyHostConfigExtras(spec, hc, input.rootfsPath);
  const seccomp = seccompFor(hc, caps, input.seccompHost);
  if (seccomp) spec.linux.seccomp = seccomp;
  if (!privileged) {
    spec.linux.maskedPaths = [...(hc.MaskedPaths ?? MASKED_PATHS)];
    spec.linux.readonlyPaths = [...(hc.ReadonlyPaths ?? READONLY_PATHS)];
  }
  return spec;
}
