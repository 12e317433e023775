import { mkdir, rm, writeFile } from "node:fs/promises";
import { messageOf } from "../../../shared/errors.js";
import { newId, randomName } from "../../../shared/ids.js";
import { mountRootfs, unmountRootfs } from "../snapshot/rootfs.js";
import { buildSpec } from "../runtime/spec.js";
import type { ImageRecord } from "../image/types.js";
import type { CreateContainerRequest } from "./api.js";
import { defaultHostConfig, mergeConfig, pathAndArgs } from "./config.js";
import { containerPaths, type EngineContext } from "./context.js";
import type { ContainerRecord } from "./types.js";
import { validateName, validateSettings } from "./validate.js";
import { planMounts, prepareMounts } from "./mounts.js";
import { refuseUnsupported } from "./unsupported.js";
import { validateHealthcheck } from "./health-config.js";
import { validateHostConfigExtras } from "../runtime/spec-hostcfg.js";
import { resolveNamespaceTargets } from "./namespace-join.js";
import { volumesFromMounts, withVolumesFrom } from "./volumes-from.js";
import { checkLinks, mergeEndpointLinks } from "./links.js";
import { containerModeTarget } from "../network/endpoints.js";
import { TASK_LABEL } from "../network/cluster-attach.js";
import { withConfigMacAddress } from "../network/mac-address.js";

/** The bundle's config.json for a record, from the spec builder. */
async function writeBundleSpec(ctx: EngineContext, rec: ContainerRecord, image: ImageRecord): Promise<void> {
  const p = containerPaths(ctx, rec.Id);
  const spec = await buildSpec({
    record: rec,
    image: image.config,
    rootfsPath: p.rootfs,
    cgroupsPath: p.cgroupsPath,
    initPath: ctx.config.initPath,
    cgroupV2: ctx.cgroupVersion === "v2",
    etcFiles: p.etc,
    swapAccounting: ctx.swapAccounting,
    capabilities: ctx.capabilities,
    hostRlimits: ctx.hostRlimits,
  });
  await writeFile(p.spec, JSON.stringify(spec, null, 1));
}

export async function mountContainerRootfs(
  ctx: EngineContext,
  id: string,
  image: ImageRecord,
): Promise<void> {
  const p = containerPaths(ctx, id);
  let lowers = ctx.images.lowerDirs(image);
  if (lowers.length === 0) {
    await mkdir(p.emptyLower, { recursive: true });
    lowers = [p.emptyLower];
  }
  await mountRootfs(lowers, p.upper, p.work, p.rootfs);
}

function pickName(ctx: EngineContext): string {
  for (let i = 0; i < 50; i++) {
    const name = i < 10 ? randomName() : `${randomName()}${i}`;
    if (!ctx.store.nameTaken(name)) return name;
  }
  return `${randomName()}_${newId().slice(0, 6)}`;
}

/**
 * Make a container: validate, merge the image config, mount the root filesystem, write the
 * bundle, persist the record. Each step pushes its undo; a failure runs them in reverse, so a
 * failed create leaves no folder, mount or record behind.
 */
export async function createContainer(
  ctx: EngineContext,
  req: CreateContainerRequest,
): Promise<{ Id: string; Warnings: string[] }> {
  refuseUnsupported(req.config, req.hostConfig, req.networkingConfig, {
    cgroupV2: ctx.cgroupVersion === "v2",
  });
  const name = req.name !== undefined && req.name !== "" ? validateName(req.name) : pickName(ctx);
  const image = ctx.images.resolve(req.config.Image);
  const id = newId();
  const hostConfig = defaultHostConfig(req.hostConfig ?? {});
  // The user's settings, as dockerd checks them; an image's HEALTHCHECK is taken as it is.
  validateHealthcheck(req.config.Healthcheck ?? undefined);
  const config = mergeConfig(id, req.config, image.config.config ?? {});
  validateSettings(config, hostConfig);
  validateHostConfigExtras(hostConfig, Boolean(req.config.Hostname));
  resolveNamespaceTargets(ctx, hostConfig);
  mergeEndpointLinks(hostConfig, req.networkingConfig?.EndpointsConfig);
  checkLinks(ctx, hostConfig);
  const plannedMounts = withVolumesFrom(
    planMounts(config, hostConfig),
    volumesFromMounts(ctx, hostConfig.VolumesFrom),
  );
  const { Path, Args } = pathAndArgs(config);
  const p = containerPaths(ctx, id);
  const target = containerModeTarget(hostConfig.NetworkMode);
  if (target !== undefined) hostConfig.NetworkMode = `container:${ctx.store.resolve(target).Id}`;
  const task = (config.Labels ?? {})[TASK_LABEL] !== undefined;
  const endpointsConfig = withConfigMacAddress(
    hostConfig.NetworkMode,
    req.config.MacAddress,
    req.networkingConfig?.EndpointsConfig,
  );
  // A cluster network made a moment ago on a manager may not have reached this node yet.
  await ctx.network.awaitClusterNetworks(hostConfig.NetworkMode, endpointsConfig, task);
  const networkSettings = ctx.network.settingsForCreate(
    hostConfig.NetworkMode,
    endpointsConfig,
    {
      bindings: hostConfig.PortBindings,
      exposed: config.ExposedPorts,
      publishAll: hostConfig.PublishAllPorts === true,
    },
    id,
    task,
  );
  // An attachable overlay network needs the leader at start: refuse now if it is out of reach.
  await ctx.network.checkClusterReachable(networkSettings, task);

  const undo: Array<() => Promise<void>> = [];
  try {
    ctx.store.reserveName(name, id);
    undo.push(async () => ctx.store.releaseName(name, id));

    await mkdir(ctx.paths.containersRoot, { recursive: true, mode: 0o710 });
    await mkdir(p.dir, { mode: 0o710 });
    undo.push(() => rm(p.dir, { recursive: true, force: true }));
    await Promise.all([
      mkdir(p.upper, { mode: 0o755 }),
      mkdir(p.work, { mode: 0o700 }),
      mkdir(p.rootfs, { mode: 0o755 }),
    ]);

    await mountContainerRootfs(ctx, id, image);
    undo.push(() => unmountRootfs(p.rootfs));
    // The bind-mount sources of /etc/hosts, /etc/resolv.conf, /etc/hostname; filled at start.
    await Promise.all(Object.values(p.etc).map((f) => writeFile(f, "", { mode: 0o644 })));
    // Volumes (made on first use, filled from the image when empty) and bind folders.
    const mounts = await prepareMounts(ctx, id, p.rootfs, plannedMounts, undo);

    const rec: ContainerRecord = {
      Id: id,
      Name: name,
      Created: new Date().toISOString(),
      ImageId: image.id,
      Path,
      Args,
      Config: config,
      HostConfig: hostConfig,
      State: {
        Status: "created",
        Pid: 0,
        ExitCode: 0,
        Error: "",
        OOMKilled: false,
        StartedAt: "0001-01-01T00:00:00Z",
        FinishedAt: "0001-01-01T00:00:00Z",
      },
      RestartCount: 0,
      LogPath: p.log,
      RootfsPath: p.rootfs,
      BundlePath: p.bundle,
      Mounts: mounts,
      NetworkSettings: networkSettings,
    };
    await writeBundleSpec(ctx, rec, image);
    await ctx.store.save(rec);
    undo.push(async () => ctx.store.drop(id));
    ctx.log.info({ id, name, image: image.id }, "container created");
    return { Id: id, Warnings: [] };
  } catch (e) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (undoError) {
        ctx.log.error(
          { id, err: undoError, cause: messageOf(e) },
          "undoing a failed container create failed",
        );
      }
    }
    throw e;
  } finally {
    // The saved record now names its volumes; until then the create held them.
    ctx.volumes.release(id);
  }
}
