// A private engine environment per test file: its own data and exec roots, cgroup parent and a
// busybox image, all taken away again by cleanup() even when a test failed halfway.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { EngineConfig } from "../../agent/engine/config.js";
import { ContainerEngine } from "../../agent/engine/container/engine.js";
import type { LogLine, LogOptions } from "../../agent/engine/container/types.js";
import { silentLogger } from "../../shared/logging.js";
import { cleanupEngineState } from "./daemon.js";
import { FakeImageStore, makeBusyboxRootfs } from "./fake-images.js";

export interface ContainerEnv {
  root: string;
  config: EngineConfig;
  images: FakeImageStore;
  busyboxLayer: string;
  open: () => Promise<ContainerEngine>;
  cleanup: () => Promise<void>;
}

export async function makeContainerEnv(): Promise<ContainerEnv> {
  const root = await mkdtemp("/tmp/shoal-ct-");
  const tag = randomBytes(4).toString("hex");
  const config: EngineConfig = {
    dataRoot: join(root, "data"),
    execRoot: join(root, "run"),
    runtimePath: "/usr/sbin/runc",
    conmonPath: "/usr/bin/conmon",
    initPath: "/usr/bin/tini-static",
    cgroupParent: `shoal-ct-${tag}`,
    // These tests run in the machine's own network namespace: like `dockerd --bridge=none`, no
    // default bridge, no forwarding switched on, no nftables table until a network is made.
    bridgeName: "none",
    ipForward: false,
    resolvConfPath: "/etc/resolv.conf",
    firewallTable: `shoal-ct-${tag}`,
  };
  const busyboxLayer = join(root, "layers", "busybox");
  await mkdir(busyboxLayer, { recursive: true });
  await makeBusyboxRootfs(busyboxLayer);
  const images = new FakeImageStore();
  images.add("busybox", [busyboxLayer]);
  const engines: ContainerEngine[] = [];
  return {
    root,
    config,
    images,
    busyboxLayer,
    open: async () => {
      const e = await ContainerEngine.open(config, images, silentLogger());
      engines.push(e);
      return e;
    },
    cleanup: async () => {
      for (const e of engines) await e.close().catch(() => undefined);
      await cleanupEngineState(config.dataRoot, config.execRoot, config.cgroupParent);
      await rm(root, { recursive: true, force: true });
    },
  };
}

export const logOptions = (o: Partial<LogOptions> = {}): LogOptions => ({
  follow: false,
  stdout: true,
  stderr: true,
  ...o,
});

/** Collect a container's log as text per stream. */
export async function collectLogs(
  lines: AsyncIterable<LogLine>,
): Promise<{ stdout: string; stderr: string; all: LogLine[] }> {
  const all: LogLine[] = [];
  for await (const l of lines) all.push(l);
  const text = (s: "stdout" | "stderr"): string =>
    all
      .filter((l) => l.stream === s)
      .map((l) => l.data.toString())
      .join("");
  return { stdout: text("stdout"), stderr: text("stderr"), all };
}

/** Folders that still exist for a cgroup path in any hierarchy. */
export async function cgroupDirsLeft(parent: string): Promise<string[]> {
  const out: string[] = [];
  const roots = [
    "/sys/fs/cgroup",
    ...(await readdir("/sys/fs/cgroup")).map((h) => join("/sys/fs/cgroup", h)),
  ];
  for (const r of roots) {
    const p = join(r, parent);
    const st = await stat(p).catch(() => undefined);
    if (st?.isDirectory()) {
      for (const child of await readdir(p, { withFileTypes: true }))
        if (child.isDirectory()) out.push(join(p, child.name));
    }
  }
  return out;
}

export async function mountsUnder(prefix: string): Promise<string[]> {
  return (await readFile("/proc/self/mountinfo", "utf8"))
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((t): t is string => !!t && t.startsWith(prefix));
}
