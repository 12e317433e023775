#!/usr/bin/env node
// shoald: one per host. Runs the local engine and serves the Engine API on a unix socket.
// Containers are children of conmon, not of this process, so they outlive it.
import { chmod, rm, writeFile } from "node:fs/promises";
import { createLogger } from "../shared/logging.js";
import { messageOf } from "../shared/errors.js";
import { parseDaemonOptions } from "./options.js";
import { prepareDaemonDirs } from "./data-root.js";
import { enforceRuntimeVerdict } from "./runtime-verdict.js";
import { checkRuntime } from "../agent/engine/runtime/runtime-check.js";
import { gatherDaemonInfo } from "./host-info.js";
import { claimSocketPath } from "./socket.js";
import { watchEventLoop } from "./event-loop-watch.js";
import { enginePaths } from "../agent/engine/config.js";
import { ImageStore } from "../agent/engine/image/store.js";
import { ContainerEngine } from "../agent/engine/container/engine.js";
import { detectCgroupVersion } from "../agent/engine/runtime/cgroups.js";
import { buildApi } from "../api/server.js";
import { Swarm } from "./cluster/membership.js";
import { credentialsOf, RegistryService } from "../agent/engine/registry/service.js";
import { decodeRegistryAuth } from "../shared/registry-auth.js";
import { Builder } from "../agent/engine/builder/builder.js";
import { EventLog } from "../agent/engine/events.js";

const VERSION = "0.1.0";

async function main(): Promise<void> {
  // `pgrep -x shoald`, `pkill shoald` and ps should name the daemon, not "node".
  process.title = "shoald";
  const options = await parseDaemonOptions(process.argv.slice(2));
  const log = createLogger(options.logLevel);
  watchEventLoop(log);
  await prepareDaemonDirs(options, log);
  // Runs while the stores open; awaited before the socket opens.
  const runtimeChecked = checkRuntime(options.runtimePath);
  // One event log for the whole daemon: images, containers, networks and volumes emit into it.
  const events = new EventLog();
  const images = await ImageStore.open(
    enginePaths(options).imageRoot,
    log.child({ component: "images" }),
    events,
  );
  const containers = await ContainerEngine.open(
    options,
    images,
    log.child({ component: "containers" }),
    events,
  );
  const cgroupVersion = (await detectCgroupVersion()) === "v2" ? "2" : "1";
  const info = await gatherDaemonInfo(options, VERSION, cgroupVersion);
  const registry = new RegistryService(
    () => images.distribution(),
    {
      insecureRegistries: options.insecureRegistries,
      certsDir: options.certsDir,
      downloads: options.maxConcurrentDownloads,
      uploads: options.maxConcurrentUploads,
    },
    log.child({ component: "registry" }),
  );
  // Tasks whose image is missing pull it here, with the service's credentials.
  const pullForTasks = async (reference: string, registryAuth?: string): Promise<void> => {
    const job = await registry.preparePull({
      reference,
      credentials: credentialsOf(decodeRegistryAuth(registryAuth)),
    });
    await job.run(() => undefined);
  };
  const swarm = new Swarm({
    dataRoot: options.dataRoot,
    socketPath: options.socketPath,
    engine: containers,
    log: log.child({ component: "swarm" }),
    pull: pullForTasks,
    overlay: containers.networks,
  });
  await swarm.open();
  const builder = await Builder.open({
    dataRoot: options.dataRoot,
    images,
    containers,
    log: log.child({ component: "builder" }),
  });
  const app = buildApi({
    builder,
    registry,
    containers,
    images,
    networks: containers.networks,
    volumes: containers.volumes,
    events,
    log,
    info,
    swarmInfo: () => swarm.info(),
    clusterNetworks: () => swarm.clusterNetworks(),
    swarm,
  });

  enforceRuntimeVerdict(await runtimeChecked, options.allowVulnerableRuntime, log);
  await claimSocketPath(options.socketPath);
  await app.listen({ path: options.socketPath });
  await chmod(options.socketPath, 0o660);
  await writeFile(options.pidFile, `${process.pid}\n`);
  log.info({ socket: options.socketPath, dataRoot: options.dataRoot, version: VERSION }, "shoald is ready");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shoald is stopping; containers keep running");
    await app.close().catch(() => undefined);
    await swarm.close().catch(() => undefined);
    await containers.close().catch(() => undefined);
    await registry.close().catch(() => undefined);
    await rm(options.pidFile, { force: true });
    await rm(options.socketPath, { force: true });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((e: unknown) => {
  process.stderr.write(`shoald: ${messageOf(e)}\n`);
  process.exit(1);
});
