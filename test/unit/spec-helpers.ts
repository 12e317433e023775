// Shared fixtures for the spec-* tests: a minimal container record and SpecInput.

import type { ContainerRecord, ContainerConfig } from "../../agent/engine/container/types.js";
import type { HostConfig } from "../../shared/engine-api.js";
import type { SpecInput } from "../../agent/engine/runtime/spec.js";
import { capabilityEnvFrom } from "../../agent/engine/runtime/capabilities.js";

export function makeRecord(
  over: {
    config?: Partial<ContainerConfig>;
    host?: Partial<HostConfig>;
    path?: string;
    args?: string[];
  } = {},
): ContainerRecord {
  const id = "0123456789ab".padEnd(64, "c");
  return {
    Id: id,
    Name: "test",
    Created: new Date(0).toISOString(),
    ImageId: "sha256:" + "0".repeat(64),
    Path: over.path ?? "/bin/sh",
    Args: over.args ?? ["-c", "true"],
    Config: {
      Hostname: "0123456789ab",
      User: "",
      Env: [],
      Cmd: null,
      Entrypoint: null,
      Image: "busybox",
      WorkingDir: "",
      Labels: {},
      Tty: false,
      OpenStdin: false,
      ...over.config,
    },
    HostConfig: {
      AutoRemove: false,
      ReadonlyRootfs: false,
      Privileged: false,
      CapAdd: null,
      CapDrop: null,
      Memory: 0,
      MemorySwap: 0,
      NanoCpus: 0,
      CpuShares: 0,
      PidsLimit: null,
      Init: null,
      Ulimits: null,
      NetworkMode: "default",
      RestartPolicy: { Name: "no", MaximumRetryCount: 0 },
      LogConfig: { Type: "k8s-file", Config: {} },
      ...over.host,
    },
    State: {
      Status: "created",
      Pid: 0,
      ExitCode: 0,
      Error: "",
      OOMKilled: false,
      StartedAt: "",
      FinishedAt: "",
    },
    RestartCount: 0,
    LogPath: "",
    RootfsPath: "",
    BundlePath: "",
  };
}

/** A host with kernel 6.1 on amd64 where the daemon holds every capability up to CAP_CHECKPOINT_RESTORE. */
export function makeInput(
  record: ContainerRecord,
  rootfsPath: string,
  over: Partial<SpecInput> = {},
): SpecInput {
  return {
    record,
    image: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } },
    rootfsPath,
    cgroupsPath: `/shoal/${record.Id}`,
    initPath: "/usr/bin/tini-static",
    cgroupV2: false,
    swapAccounting: true,
    hostCpus: 2,
    capabilities: capabilityEnvFrom(40, "000001ffffffffff"),
    seccompHost: { arch: "amd64", kernel: "6.1.0" },
    hostDevices: [{ path: "/dev/sda", type: "b", major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 }],
    ...over,
  };
}
