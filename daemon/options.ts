// shoald's settings, named as dockerd names them so operators can carry their habits over:
// flags first, then the JSON config file (dockerd's daemon.json keys), then defaults.
import { readFile } from "node:fs/promises";
import { Command } from "commander";
import { defaultEngineConfig, type EngineConfig } from "../agent/engine/config.js";
import { errnoCode } from "../shared/errors.js";

export interface DaemonOptions extends EngineConfig {
  /** Unix socket path the Engine API listens on. */
  socketPath: string;
  logLevel: string;
  pidFile: string;
  configFile: string;
  /** Registries allowed over plain HTTP (names or CIDRs), besides 127.0.0.0/8 and localhost. */
  insecureRegistries: string[];
  /** Per-registry CAs and client certificates: <certs-dir>/<host:port>/ca.crt (Docker's certs.d). */
  certsDir: string;
  /** Layers pulled at once per pull, and pushed at once per push (dockerd's flags and defaults). */
  maxConcurrentDownloads: number;
  maxConcurrentUploads: number;
  /** Start even on a runc with a known container breakout (logged as an error at start). */
  allowVulnerableRuntime: boolean;
}

interface ConfigFile {
  "data-root"?: string;
  "exec-root"?: string;
  hosts?: string[];
  "log-level"?: string;
  "cgroup-parent"?: string;
  pidfile?: string;
  runtime?: string;
  conmon?: string;
  "init-path"?: string;
  bridge?: string;
  bip?: string;
  "ip-forward"?: boolean;
  "resolv-conf"?: string;
  "firewall-table"?: string;
  "insecure-registries"?: string[];
  "certs-dir"?: string;
  "max-concurrent-downloads"?: number;
  "max-concurrent-uploads"?: number;
  "allow-vulnerable-runtime"?: boolean;
}

export const DEFAULT_SOCKET = "/run/shoal/shoal.sock";

function socketFromHost(host: string): string {
  if (host.startsWith("unix://")) return host.slice("unix://".length);
  if (host.startsWith("/")) return host;
  throw new Error(
    `unsupported host "${host}": shoald listens on unix sockets for now (-H unix:///run/shoal/shoal.sock); TCP with mutual TLS comes with the cluster API`,
  );
}

function positive(value: string | number, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`invalid value "${value}" for ${flag}: use a whole number of 1 or more`);
  return n;
}

function parseBool(value: string, flag: string): boolean {
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new Error(`invalid value "${value}" for ${flag}: use true or false`);
}

export async function parseDaemonOptions(argv: string[]): Promise<DaemonOptions> {
  const program = new Command("shoald")
    .description("the shoal daemon: container engine and cluster agent")
    .option("--data-root <dir>", "root of persistent state (images, containers)")
    .option("--exec-root <dir>", "root of runtime state (runc state, exit files)")
    .option("-H, --host <socket...>", "Engine API socket to listen on (unix:///path.sock)")
    .option("--config-file <file>", "daemon configuration file", "/etc/shoal/daemon.json")
    .option("-l, --log-level <level>", "log level: debug, info, warn, error, fatal")
    .option("--cgroup-parent <name>", "cgroup parent for containers")
    .option("-p, --pidfile <file>", "path of the daemon's pid file")
    .option("--runtime <path>", "OCI runtime binary (runc, crun, youki)")
    .option("--conmon <path>", "conmon binary")
    .option("--init-path <path>", "static init binary used for --init (tini)")
    .option("-b, --bridge <name>", "Linux name of the default bridge network's bridge")
    .option("--bip <cidr>", "the default bridge's address and prefix, e.g. 172.17.0.1/16")
    .option("--ip-forward <bool>", "turn on IPv4 forwarding at start (true|false)")
    .option("--resolv-conf <file>", "the host resolvers the container DNS forwards to")
    .option("--firewall-table <name>", "name of shoal's nftables table (family ip)")
    .option(
      "--insecure-registry <registry>",
      "registry (host[:port] or CIDR) that may be used over plain HTTP; repeatable",
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option("--certs-dir <dir>", "registry CAs and client certificates, one folder per host:port")
    .option("--max-concurrent-downloads <n>", "layers downloaded at once per pull (default 3)")
    .option("--max-concurrent-uploads <n>", "layers uploaded at once per push (default 5)")
    .option(
      "--allow-vulnerable-runtime",
      "start even on a runc with a known container breakout (CVE-2024-21626)",
    )
    .version(process.env.npm_package_version ?? "0.1.0");
  program.parse(argv, { from: "user" });
  const flags = program.opts<{
    dataRoot?: string;
    execRoot?: string;
    host?: string[];
    configFile: string;
    logLevel?: string;
    cgroupParent?: string;
    pidfile?: string;
    runtime?: string;
    conmon?: string;
    initPath?: string;
    bridge?: string;
    bip?: string;
    ipForward?: string;
    resolvConf?: string;
    firewallTable?: string;
    insecureRegistry?: string[];
    certsDir?: string;
    maxConcurrentDownloads?: string;
    maxConcurrentUploads?: string;
    allowVulnerableRuntime?: boolean;
  }>();

  let file: ConfigFile = {};
  try {
    file = JSON.parse(await readFile(flags.configFile, "utf8")) as ConfigFile;
  } catch (e) {
    const explicit = argv.includes("--config-file");
    if (errnoCode(e) !== "ENOENT" || explicit) {
      throw new Error(
        `cannot read config file ${flags.configFile}: ${(e as Error).message}; fix the file or pass another --config-file`,
        { cause: e },
      );
    }
  }

  const defaults = defaultEngineConfig();
  const execRoot = flags.execRoot ?? file["exec-root"] ?? defaults.execRoot;
  const hosts = flags.host ?? file.hosts;
  if (hosts && hosts.length > 1) throw new Error("shoald listens on one socket for now: pass a single -H");
  return {
    dataRoot: flags.dataRoot ?? file["data-root"] ?? defaults.dataRoot,
    execRoot,
    runtimePath: flags.runtime ?? file.runtime ?? defaults.runtimePath,
    conmonPath: flags.conmon ?? file.conmon ?? defaults.conmonPath,
    initPath: flags.initPath ?? file["init-path"] ?? defaults.initPath,
    cgroupParent: flags.cgroupParent ?? file["cgroup-parent"] ?? defaults.cgroupParent,
    socketPath: hosts?.[0] ? socketFromHost(hosts[0]) : DEFAULT_SOCKET,
    logLevel: flags.logLevel ?? file["log-level"] ?? "info",
    pidFile: flags.pidfile ?? file.pidfile ?? `${execRoot}/shoald.pid`,
    configFile: flags.configFile,
    bridgeName: flags.bridge ?? file.bridge ?? defaults.bridgeName,
    bridgeIp: flags.bip ?? file.bip,
    ipForward:
      flags.ipForward !== undefined
        ? parseBool(flags.ipForward, "--ip-forward")
        : (file["ip-forward"] ?? defaults.ipForward),
    resolvConfPath: flags.resolvConf ?? file["resolv-conf"] ?? defaults.resolvConfPath,
    firewallTable: flags.firewallTable ?? file["firewall-table"] ?? defaults.firewallTable,
    insecureRegistries: [...(file["insecure-registries"] ?? []), ...(flags.insecureRegistry ?? [])],
    certsDir: flags.certsDir ?? file["certs-dir"] ?? "/etc/shoal/certs.d",
    maxConcurrentDownloads: positive(
      flags.maxConcurrentDownloads ?? file["max-concurrent-downloads"] ?? 3,
      "--max-concurrent-downloads",
    ),
    maxConcurrentUploads: positive(
      flags.maxConcurrentUploads ?? file["max-concurrent-uploads"] ?? 5,
      "--max-concurrent-uploads",
    ),
    allowVulnerableRuntime: flags.allowVulnerableRuntime ?? file["allow-vulnerable-runtime"] ?? false,
  };
}
