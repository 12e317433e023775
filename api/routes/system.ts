// /_ping, /version and /info: what this daemon is and runs.
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import type { EngineApiDeps } from "../deps.js";

/** dockerd's RegistryConfig: CIDRs listed as such, names as index configs marked insecure. */
function registryConfig(insecure: string[]) {
  const cidrs = insecure.filter((e) => /^[\d.]+\/\d+$/.test(e));
  const names = insecure.filter((e) => !cidrs.includes(e));
  return {
    IndexConfigs: Object.fromEntries(
      names.map((n) => [n, { Name: n, Mirrors: [], Secure: false, Official: false }]),
    ),
    InsecureRegistryCIDRs: ["127.0.0.0/8", ...cidrs],
    Mirrors: [],
  };
}

export type SystemRoutesOptions = Pick<
  EngineApiDeps,
  "info" | "containers" | "images" | "swarmInfo" | "events"
>;

export const systemRoutes: FastifyPluginAsync<SystemRoutesOptions> = async (app, deps) => {
  const { info } = deps;
  const ping = async (_req: unknown, reply: FastifyReply) => {
    reply
      .header("OSType", "linux")
      .header("Docker-Experimental", "false")
      .header("Builder-Version", "1")
      .header("Swarm", deps.swarmInfo?.()?.ControlAvailable ? "active/manager" : "inactive")
      .header("Cache-Control", "no-cache, no-store, must-revalidate")
      .header("Pragma", "no-cache")
      .type("text/plain; charset=utf-8");
    return "OK";
  };
  app.get("/_ping", ping);

  app.get("/version", async () => ({
    Platform: { Name: "shoal" },
    Components: [
      {
        Name: "Engine",
        Version: info.version,
        Details: {
          ApiVersion: "1.44",
          Arch: process.arch === "x64" ? "amd64" : process.arch,
          GitCommit: info.gitCommit,
          KernelVersion: info.kernelVersion,
          MinAPIVersion: "1.24",
          Os: "linux",
          NodeVersion: process.version,
        },
      },
    ],
    Version: info.version,
    ApiVersion: "1.44",
    MinAPIVersion: "1.24",
    GitCommit: info.gitCommit,
    GoVersion: `node ${process.version}`,
    Os: "linux",
    Arch: process.arch === "x64" ? "amd64" : process.arch,
    KernelVersion: info.kernelVersion,
    BuildTime: info.startedAt,
  }));

  app.get("/info", async () => {
    const containers = deps.containers.list({ all: true });
    const count = (status: string) => containers.filter((c) => c.State.Status === status).length;
    return {
      ID: info.id,
      Containers: containers.length,
      ContainersRunning: count("running"),
      ContainersPaused: count("paused"),
      ContainersStopped: containers.length - count("running") - count("paused"),
      Images: deps.images.list().length,
      Driver: "overlay2",
      DriverStatus: [["Backing Filesystem", "extfs"]],
      Plugins: { Volume: [], Network: [], Authorization: null, Log: ["k8s-file"] },
      MemoryLimit: true,
      SwapLimit: true,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      OomKillDisable: false,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: "k8s-file",
      CgroupDriver: "cgroupfs",
      CgroupVersion: info.cgroupVersion,
      NEventsListener: deps.events?.listenerCount ?? 0,
      KernelVersion: info.kernelVersion,
      OperatingSystem: info.operatingSystem,
      OSVersion: "",
      OSType: "linux",
      Architecture: process.arch === "x64" ? "x86_64" : process.arch,
      IndexServerAddress: "https://index.docker.io/v1/",
      RegistryConfig: registryConfig(info.insecureRegistries),
      NCPU: info.ncpu,
      MemTotal: info.memTotal,
      DockerRootDir: info.dataRoot,
      Name: info.name,
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: info.version,
      Runtimes: { runc: { path: info.runtimePath } },
      DefaultRuntime: "runc",
      Swarm: deps.swarmInfo?.() ?? {
        NodeID: "",
        NodeAddr: "",
        LocalNodeState: "inactive",
        ControlAvailable: false,
        Error: "",
        RemoteManagers: null,
      },
      LiveRestoreEnabled: true,
      Isolation: "",
      InitBinary: "docker-init",
      ContainerdCommit: { ID: "", Expected: "" },
      RuncCommit: { ID: "", Expected: "" },
      InitCommit: { ID: "", Expected: "" },
      SecurityOptions: ["name=seccomp,profile=builtin", `name=cgroupns`],
      Warnings: [],
    };
  });
};
