// The lab: a small data centre on one machine (DESIGN.md §8). One "switch" network namespace
// holds a bridge with no route out; each host is a namespace joined to it by a veth, with its
// own underlay address and its own shoald (state folder, socket, cgroup parent, exec root).
// Daemons are entered with `nsenter --net` only, never `ip netns exec`, so they share the
// machine's mount namespace and a restarted daemon still sees the mounts of its containers.
import { spawn } from "node:child_process";
import { copyFile, mkdir, open, readFile, readdir, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { runCommand } from "../../agent/engine/runtime/command.js";
import { pidAlive } from "../../agent/engine/container/run.js";
import { readJsonIfExists, writeJsonAtomic } from "../../shared/fsutil.js";
import { errnoCode } from "../../shared/errors.js";

export type LabRole = "manager" | "worker";

export interface LabHost {
  name: string;
  role: LabRole;
  netns: string;
  /** Underlay address on the switch, without prefix. */
  address: string;
  dir: string;
  socket: string;
  cgroupParent: string;
  pid?: number;
}

export interface LabState {
  name: string;
  root: string;
  switchNetns: string;
  /** The underlay subnet, e.g. 10.99.0.0/24. */
  subnet: string;
  hosts: LabHost[];
  /** The lab's registry (docker-registry in the switch namespace, on the switch's own address). */
  registry?: { addr: string; pid?: number };
}

export interface LabOptions {
  name?: string;
  managers: number;
  workers: number;
  /** Where state lives; default /var/lib/shoal-lab/<name>. */
  root?: string;
  /** The shoald entry point; default the built one next to this file. */
  shoald?: string;
  /** Second octet of 10.X.0.0/24 for the underlay. */
  octet?: number;
  /** Run a registry on the switch (10.X.0.1:5000), which every host's daemon may use over plain HTTP. */
  registry?: boolean;
}

const REGISTRY_PORT = 5000;

const DEFAULT_SHOALD = join(import.meta.dirname, "../../daemon/main.js");
const UNDERLAY_PREFIX = 24;
const CUT_TABLE = "lab_cut";

async function ip(args: string[]): Promise<void> {
  await runCommand("ip", args);
}

export function labRoot(name: string): string {
  return join("/var/lib/shoal-lab", name);
}

/** Run a command inside a namespace, without a private mount namespace. */
export function inNamespace(
  netns: string,
  cmd: string[],
  timeoutMs = 60_000,
): Promise<{ stdout: string; stderr: string }> {
  return runCommand("nsenter", [`--net=/run/netns/${netns}`, ...cmd], { timeoutMs });
}

export class Lab {
  private constructor(readonly state: LabState) {}

  static async load(name: string, root = labRoot(name)): Promise<Lab> {
    const state = await readJsonIfExists<LabState>(join(root, "lab.json"));
    if (!state) throw new Error(`no lab named ${name} (looked in ${root}): start one with lab up`);
    return new Lab(state);
  }

  /** Build the switch, the hosts and their daemons; on failure everything made is taken down. */
  static async up(opts: LabOptions): Promise<Lab> {
    const name = opts.name ?? "lab";
    if (!/^[a-z0-9]{1,8}$/.test(name))
      throw new Error(`invalid lab name "${name}": 1-8 lower-case letters or digits`);
    const root = opts.root ?? labRoot(name);
    if (await readJsonIfExists(join(root, "lab.json")))
      throw new Error(`lab ${name} is already up (${root}): run lab down first`);
    const octet = opts.octet ?? 99;
    const hosts: LabHost[] = [];
    const roles: LabRole[] = [
      ...Array.from({ length: opts.managers }, () => "manager" as const),
      ...Array.from({ length: opts.workers }, () => "worker" as const),
    ];
    let m = 0;
    let w = 0;
    roles.forEach((role, i) => {
      const host = role === "manager" ? `m${++m}` : `w${++w}`;
      const dir = join(root, host);
      hosts.push({
        name: host,
        role,
        netns: `${name}-${host}`,
        address: `10.${octet}.0.${i + 2}`,
        dir,
        socket: join(dir, "shoal.sock"),
        cgroupParent: `${name}-${host}`,
      });
    });
    const lab = new Lab({
      name,
      root,
      switchNetns: `${name}-switch`,
      subnet: `10.${octet}.0.0/${UNDERLAY_PREFIX}`,
      hosts,
      ...(opts.registry ? { registry: { addr: `10.${octet}.0.1:${REGISTRY_PORT}` } } : {}),
    });
    await mkdir(root, { recursive: true, mode: 0o700 });
    await lab.save();
    try {
      await lab.buildSwitch();
      if (lab.state.registry) await lab.startRegistry();
      for (const h of hosts) await lab.buildHost(h);
      for (const h of hosts) await lab.start(h.name, opts.shoald ?? DEFAULT_SHOALD);
    } catch (e) {
      await lab.down().catch(() => undefined);
      throw e;
    }
    return lab;
  }

  private save(): Promise<void> {
    return writeJsonAtomic(join(this.state.root, "lab.json"), this.state);
  }

  host(name: string): LabHost {
    const h = this.state.hosts.find((x) => x.name === name);
    if (!h)
      throw new Error(
        `no host ${name} in lab ${this.state.name}: hosts are ${this.state.hosts.map((x) => x.name).join(", ")}`,
      );
    return h;
  }

  private async buildSwitch(): Promise<void> {
    const sw = this.state.switchNetns;
    await ip(["netns", "add", sw]);
    await ip(["-n", sw, "link", "set", "lo", "up"]);
    await ip(["-n", sw, "link", "add", "br0", "type", "bridge"]);
    await ip(["-n", sw, "link", "set", "br0", "up"]);
    if (this.state.registry) {
      const ipAddr = this.state.registry.addr.split(":")[0];
      await ip(["-n", sw, "addr", "add", `${ipAddr}/${UNDERLAY_PREFIX}`, "dev", "br0"]);
    }
  }

  /** docker-registry inside the switch namespace: reachable from every host, from nothing else. */
  private async startRegistry(): Promise<void> {
    const reg = this.state.registry;
    if (!reg) return;
    const dir = join(this.state.root, "registry");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // JSON is YAML: the registry reads this as its config.yml.
    const config = {
      version: 0.1,
      log: { level: "info", accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(dir, "data") }, delete: { enabled: true } },
      http: { addr: reg.addr },
    };
    await writeFile(join(dir, "config.yml"), JSON.stringify(config, null, 1));
    const logPath = join(dir, "registry.log");
    const log = await open(logPath, "a");
    const child = spawn(
      "nsenter",
      [
        `--net=/run/netns/${this.state.switchNetns}`,
        "/usr/bin/docker-registry",
        "serve",
        join(dir, "config.yml"),
      ],
      { detached: true, stdio: ["ignore", log.fd, log.fd] },
    );
    child.unref();
    await log.close();
    reg.pid = child.pid;
    await this.save();
    for (let i = 0; i < 200; i++) {
      const out = await readFile(logPath, "utf8").catch(() => "");
      if (out.includes("listening on")) return;
      if (!(await pidAlive(reg.pid ?? 0)))
        throw new Error(`the lab's registry exited at start:\n${out.slice(-2000)}`);
      await sleep(50);
    }
    throw new Error("the lab's registry did not start listening within 10 s");
  }

  private async buildHost(h: LabHost): Promise<void> {
    const sw = this.state.switchNetns;
    await ip(["netns", "add", h.netns]);
    await ip(["-n", h.netns, "link", "set", "lo", "up"]);
    // The host's end is made inside the switch and moved: its name there is the host's name.
    await ip(["-n", sw, "link", "add", h.name, "type", "veth", "peer", "name", "eth0", "netns", h.netns]);
    await ip(["-n", sw, "link", "set", h.name, "master", "br0", "up"]);
    await ip(["-n", h.netns, "addr", "add", `${h.address}/${UNDERLAY_PREFIX}`, "dev", "eth0"]);
    await ip(["-n", h.netns, "link", "set", "eth0", "up"]);
    await mkdir(h.dir, { recursive: true, mode: 0o700 });
    await writeFile(
      join(h.dir, "daemon.json"),
      `${JSON.stringify(this.state.registry ? { "insecure-registries": [this.state.registry.addr] } : {})}\n`,
    );
    // No resolver outside the lab: forwarded names go to the host's own loopback.
    await writeFile(join(h.dir, "resolv.conf"), "nameserver 127.0.0.1\n");
  }

  /** Start (or restart) a host's shoald; resolves once its socket answers. */
  async start(hostName: string, shoald = DEFAULT_SHOALD): Promise<void> {
    const h = this.host(hostName);
    if (h.pid && (await pidAlive(h.pid))) throw new Error(`${h.name}'s shoald already runs (pid ${h.pid})`);
    const log = await open(join(h.dir, "shoald.log"), "a");
    const child = spawn(
      "nsenter",
      [
        `--net=/run/netns/${h.netns}`,
        // Its own UTS namespace, so each host has its own host name (what `node ls` shows). Every
        // step execs, so the pid is the daemon's.
        "unshare",
        "--uts",
        "--",
        "sh",
        "-c",
        'hostname "$0" && exec "$@"',
        h.name,
        process.execPath,
        shoald,
        "--data-root",
        join(h.dir, "data"),
        "--exec-root",
        join(h.dir, "run"),
        "-H",
        `unix://${h.socket}`,
        "--cgroup-parent",
        h.cgroupParent,
        "--config-file",
        join(h.dir, "daemon.json"),
        "--resolv-conf",
        join(h.dir, "resolv.conf"),
      ],
      { detached: true, stdio: ["ignore", log.fd, log.fd] },
    );
    child.unref();
    await log.close();
    h.pid = child.pid;
    await this.save();
    for (let i = 0; i < 300; i++) {
      if (!(await pidAlive(h.pid ?? 0))) {
        const tail = (await readFile(join(h.dir, "shoald.log"), "utf8").catch(() => "")).slice(-2000);
        throw new Error(`${h.name}'s shoald exited at start:\n${tail}`);
      }
      if (await this.answers(h)) return;
      await sleep(100);
    }
    throw new Error(`${h.name}'s shoald did not answer on ${h.socket} within 30 s`);
  }

  private async answers(h: LabHost): Promise<boolean> {
    const { request } = await import("node:http");
    return new Promise((resolve) => {
      const req = request({ socketPath: h.socket, path: "/_ping", timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on("error", () => resolve(false));
      req.on("timeout", () => {
        req.destroy();
        resolve(false);
      });
      req.end();
    });
  }

  /** A host failure: its daemon and every container process it started die at once. */
  async kill(hostName: string): Promise<void> {
    const h = this.host(hostName);
    if (h.pid) {
      try {
        process.kill(h.pid, "SIGKILL");
      } catch {
        // already gone
      }
      // SIGKILL is asynchronous: wait until the kernel has taken the process down, so that a
      // restart right after cannot meet the old daemon's socket or lock.
      for (let i = 0; i < 100 && (await pidAlive(h.pid)); i++) await sleep(20);
    }
    await this.killContainers(h);
    h.pid = undefined;
    await this.save();
  }

  /** Stop a daemon the gentle way (containers keep running, as after `systemctl stop`). */
  async stop(hostName: string): Promise<void> {
    const h = this.host(hostName);
    if (h.pid && (await pidAlive(h.pid))) {
      process.kill(h.pid, "SIGTERM");
      for (let i = 0; i < 100 && (await pidAlive(h.pid)); i++) await sleep(100);
    }
    h.pid = undefined;
    await this.save();
  }

  private async killContainers(h: LabHost): Promise<void> {
    const runtimeRoot = join(h.dir, "run", "runtime");
    const list = await runCommand("runc", ["--root", runtimeRoot, "list", "-q"]).catch(() => ({
      stdout: "",
    }));
    for (const id of list.stdout.split("\n").filter(Boolean))
      await runCommand("runc", ["--root", runtimeRoot, "delete", "-f", id]).catch(() => undefined);
    for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
      const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      if (cmd.includes("conmon") && cmd.includes(h.dir)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  }

  /** Cut a host off the switch (its own nftables table drops all but loopback). */
  async cut(hostName: string): Promise<void> {
    const h = this.host(hostName);
    const rules = [
      `table inet ${CUT_TABLE}`,
      `delete table inet ${CUT_TABLE}`,
      `table inet ${CUT_TABLE} {`,
      `  chain cut_in { type filter hook input priority -300; policy accept; iifname "eth0" drop; }`,
      `  chain cut_out { type filter hook output priority -300; policy accept; oifname "eth0" drop; }`,
      `  chain cut_fwd { type filter hook forward priority -300; policy accept; iifname "eth0" drop; oifname "eth0" drop; }`,
      `}`,
    ];
    await runCommand("nsenter", [`--net=/run/netns/${h.netns}`, "nft", "-f", "-"], {
      input: rules.join("\n") + "\n",
    });
  }

  async heal(hostName: string): Promise<void> {
    const h = this.host(hostName);
    await runCommand("nsenter", [`--net=/run/netns/${h.netns}`, "nft", "-f", "-"], {
      input: `table inet ${CUT_TABLE}\ndelete table inet ${CUT_TABLE}\n`,
    });
  }

  exec(hostName: string, cmd: string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string }> {
    return inNamespace(this.host(hostName).netns, cmd, timeoutMs);
  }

  /** Take everything down: daemons, containers, mounts, cgroups, namespaces, files. Idempotent. */
  async down(): Promise<void> {
    // SHOAL_LAB_LOGS=<dir> keeps each daemon's log past teardown, to read a failed run later.
    const keep = process.env.SHOAL_LAB_LOGS;
    if (keep) {
      await mkdir(keep, { recursive: true });
      for (const h of this.state.hosts)
        await copyFile(join(h.dir, "shoald.log"), join(keep, `${h.netns}.log`)).catch(() => undefined);
    }
    for (const h of this.state.hosts) {
      await this.kill(h.name).catch(() => undefined);
      await unmountUnder(h.dir);
      await removeCgroups(h.cgroupParent);
      await ip(["netns", "del", h.netns]).catch(() => undefined);
    }
    const reg = this.state.registry;
    if (reg?.pid && (await pidAlive(reg.pid))) {
      process.kill(reg.pid, "SIGKILL");
      for (let i = 0; i < 100 && (await pidAlive(reg.pid)); i++) await sleep(20);
    }
    await ip(["netns", "del", this.state.switchNetns]).catch(() => undefined);
    await rm(this.state.root, { recursive: true, force: true });
  }
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = await readFile("/proc/mounts", "utf8");
  const targets = mounts
    .split("\n")
    .map((l) => l.split(" ")[1])
    .filter((t): t is string => t !== undefined && t.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const t of targets) await runCommand("umount", ["-l", t]).catch(() => undefined);
}

/** The cgroup folders of a parent in every hierarchy (v1) or the unified one (v2). */
async function removeCgroups(parent: string): Promise<void> {
  const roots = [
    "/sys/fs/cgroup",
    ...(await readdir("/sys/fs/cgroup").catch(() => [])).map((h) => join("/sys/fs/cgroup", h)),
  ];
  for (const r of roots) await removeTree(join(r, parent));
}

async function removeTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => null);
  if (!entries) return;
  for (const e of entries) if (e.isDirectory()) await removeTree(join(dir, e.name));
  for (let i = 0; i < 20; i++) {
    // Whatever still lives in it (a `runc init` of a container caught half-made when its daemon
    // was killed) belongs to the lab and goes too.
    const procs = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
    for (const pid of procs.split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    }
    try {
      await rmdir(dir);
      return;
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return;
      await sleep(50);
    }
  }
}
