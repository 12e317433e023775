// What containers and images can do to the host's files, tried against a real shoald: a
// setuid binary or device node planted in a volume, copy-up through symlinks (planted by the
// image or raced in by another container), hardening options shoal would ignore, and a layer
// of PAX headers built to exhaust the daemon's memory.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { chmod, lstat, readFile, readdir, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";
import { busyboxEnv, busyboxLayer } from "../fixtures/busybox-image.mjs";
import { dockerArchive, imageConfig, makeTar, sha256, type TarEntrySpec } from "../fixtures/tarlib.mjs";
import { gzippedPaxBomb } from "../fixtures/hostile-tars.mjs";

const run = promisify(execFile);
let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);
const volumeData = (name: string) => join(d.dataRoot, "volumes", name, "_data");
const modeOf = async (path: string) => (await stat(path)).mode & 0o7777;

/**
 * Run a shell command as nobody (uid/gid 65534, no groups): a local user without privileges.
 * Through a shell: setpriv itself still passes permission checks when it execs its target.
 */
async function asNobody(script: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--",
      "/bin/sh",
      "-c",
      script,
    ]);
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === "number" ? err.code : 1,
      out: `${err.stdout ?? ""}${err.stderr ?? ""}`,
    };
  }
}

async function loadImage(tag: string, top: TarEntrySpec[], runtime: object): Promise<void> {
  const base = await busyboxLayer();
  const layer = await makeTar(top);
  const config = imageConfig([base, layer], { Env: busyboxEnv, Cmd: ["sh"], ...runtime });
  const r = await api(
    d.socket,
    "POST",
    "/images/load",
    await dockerArchive([{ config, layers: [base, layer], repoTags: [tag] }]),
  );
  if (r.status !== 200) throw new Error(`loading ${tag} failed: ${r.status} ${r.body.toString()}`);
}

async function logsOf(name: string): Promise<string> {
  return (await dk(["logs", name])).stdout;
}

beforeAll(async () => {
  d = await startDaemon();
  // As /var/lib is: anyone may walk down to the data root, so its own mode is what protects it.
  await chmod(d.root, 0o755);
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await d?.destroy();
});

describe("host files: the data root and volumes", () => {
  it("keeps the data root and volume folders at 0700, and narrows an older install's modes at start", async () => {
    expect((await dk(["volume", "create", "modes"])).code).toBe(0);
    expect(await modeOf(d.dataRoot)).toBe(0o700);
    expect(await modeOf(join(d.dataRoot, "volumes"))).toBe(0o700);
    expect(await modeOf(join(d.dataRoot, "volumes", "modes"))).toBe(0o700);
    // What earlier releases made.
    await chmod(d.dataRoot, 0o711);
    await chmod(join(d.dataRoot, "volumes"), 0o701);
    await chmod(join(d.dataRoot, "volumes", "modes"), 0o701);
    await d.restart();
    expect(await modeOf(d.dataRoot)).toBe(0o700);
    expect(await modeOf(join(d.dataRoot, "volumes"))).toBe(0o700);
    expect(await modeOf(join(d.dataRoot, "volumes", "modes"))).toBe(0o700);
    expect(d.logs()).toContain("narrowed the data root's mode");
  });

  it("a setuid-root busybox and a device node planted in a volume are out of a local user's reach", async () => {
    const plant = await dk([
      "run",
      "--name",
      "planter",
      "-v",
      "plant:/v",
      "busybox",
      "sh",
      "-c",
      "cp /bin/busybox /v/busybox && chmod 4755 /v/busybox && mknod /v/null c 1 3 && chmod 666 /v/null && echo planted",
    ]);
    expect(plant.stdout + plant.stderr).toContain("planted");
    // The plant is real: a setuid-root binary and a world-writable device on the host.
    const sbb = join(volumeData("plant"), "busybox");
    const st = await stat(sbb);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o4000).toBe(0o4000);
    expect((await lstat(join(volumeData("plant"), "null"))).isCharacterDevice()).toBe(true);

    const exec = await asNobody(`${sbb} id -u`);
    expect(exec.code).not.toBe(0);
    expect(exec.out).toContain("Permission denied");
    const write = await asNobody(`echo x > ${join(volumeData("plant"), "null")}`);
    expect(write.code).not.toBe(0);
    expect(write.out).toContain("Permission denied");
    const list = await asNobody(`ls ${join(d.dataRoot, "volumes")}`);
    expect(list.code).not.toBe(0);
  });
});

describe("host files: volume copy-up", () => {
  it("copies an image's symlinks as symlinks and writes nothing outside the volume", async () => {
    const passwd = await readFile("/etc/passwd", "utf8");
    await loadImage(
      "copyup-links:1",
      [
        { name: "seed/", type: "directory" },
        { name: "seed/passwd", type: "symlink", linkname: "/etc/passwd" },
        { name: "seed/up", type: "symlink", linkname: "../../../../../../../../etc" },
        { name: "data", type: "symlink", linkname: "/etc" },
      ],
      { Volumes: { "/seed": {}, "/data": {} } },
    );
    const create = await api(d.socket, "POST", "/containers/create?name=copyup-links", {
      Image: "copyup-links:1",
      HostConfig: { Binds: ["cu-seed:/seed", "cu-data:/data"] },
    });
    expect(create.status).toBe(201);
    expect(await readlink(join(volumeData("cu-seed"), "passwd"))).toBe("/etc/passwd");
    expect(await readlink(join(volumeData("cu-seed"), "up"))).toBe("../../../../../../../../etc");
    // /data -> /etc resolves inside the image: the volume gets the image's /etc, not the host's.
    const imagePasswd = await readFile(join(volumeData("cu-data"), "passwd"), "utf8");
    expect(imagePasswd).toContain("root:x:0:0:root:/root:/bin/sh");
    expect(imagePasswd).not.toBe(passwd);
    expect(await readFile("/etc/passwd", "utf8")).toBe(passwd);
  });

  it("a container racing to plant symlinks in the volume during copy-up cannot make the daemon write through them", async () => {
    const victim = join(d.root, "victim");
    await writeFile(victim, "victim\n");
    const files = Array.from({ length: 10 }, (_, i) => `f${i}`);
    // big comes first in the layer, so first in cp's order (inode order, one folder): the copy
    // is busy writing its 64 MiB while the racer, seeing big appear, plants a symlink for each
    // file still to come.
    await loadImage(
      "copyup-race:1",
      [
        { name: "seed/", type: "directory" },
        { name: "seed/big", data: Buffer.alloc(64 << 20, 0x62) },
        ...files.map((f) => ({ name: `seed/${f}`, data: "written by the image\n" })),
      ],
      { Volumes: { "/seed": {} } },
    );
    const plant = files.map((f) => `ln -s ${victim} /v/${f}`).join("; ");
    const racer = await dk([
      "run",
      "-d",
      "--name",
      "racer",
      "-v",
      "race:/v",
      "busybox",
      "sh",
      "-c",
      `echo ready; until [ -e /v/big ]; do :; done; ${plant}; echo planted; sleep 30`,
    ]);
    expect(racer.code).toBe(0);
    for (let i = 0; i < 100 && !(await logsOf("racer")).includes("ready"); i++) await sleep(100);
    const create = await api(d.socket, "POST", "/containers/create?name=race-victim", {
      Image: "copyup-race:1",
      HostConfig: { Binds: ["race:/seed"] },
    });
    expect([201, 500]).toContain(create.status);
    for (let i = 0; i < 100 && !(await logsOf("racer")).includes("planted"); i++) await sleep(100);
    expect(await logsOf("racer")).toContain("planted");
    expect(await readFile(victim, "utf8")).toBe("victim\n");
    // The image's content arrived, and nothing of the copy is left beside the volume.
    expect((await stat(join(volumeData("race"), "big"))).size).toBe(64 << 20);
    expect((await readdir(join(d.dataRoot, "volumes", "race"))).sort()).toEqual(["_data", "volume.json"]);
  });
});

// no-new-privileges, seccomp, --device and --device-cgroup-rule work now (docs/engine-hostconfig.md,
// docker-cli-hostconfig.test.ts); what shoal still cannot honour must stay a refusal.
describe("host files: hardening options shoal cannot honour", () => {
  it.each([
    [{ SecurityOpt: ["apparmor=docker-default"] }, "--security-opt apparmor=docker-default"],
    [{ SecurityOpt: ["label=type:svirt_t"] }, "--security-opt label=type:svirt_t"],
    [{ DeviceRequests: [{ Driver: "", Count: -1, Capabilities: [["gpu"]] }] }, "--gpus"],
  ])("the API refuses %j with a 400 naming %s", async (host, flag) => {
    const r = await api(d.socket, "POST", "/containers/create", { Image: "busybox", HostConfig: host });
    expect(r.status).toBe(400);
    expect(r.json<{ message: string }>().message).toContain(flag);
  });

  it.each([
    [["--security-opt", "apparmor=docker-default"], "--security-opt apparmor=docker-default"],
    [["--security-opt", "label=type:svirt_t"], "--security-opt label=type:svirt_t"],
    [["--gpus", "all"], "--gpus"],
  ])("docker run %j fails with the message and leaves no container", async (flags, flag) => {
    const before = (await dk(["ps", "-aq"])).stdout;
    const r = await dk(["run", "--rm", ...flags, "busybox", "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`${flag} is not supported by shoal`);
    expect((await dk(["ps", "-aq"])).stdout).toBe(before);
  });
});

/** VmRSS and VmHWM (peak) of a process, in bytes. */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const text = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

describe("host files: a PAX-bomb layer", () => {
  it("is refused with a 400 naming the layer and the limit, and the daemon's memory stays bounded", async () => {
    // 120 extended headers of 1 MB before one file: 120 MB of metadata, 130 KB gzipped.
    const bomb = await gzippedPaxBomb({ kind: "chain", flag: "x", count: 120, size: 1_000_000 });
    const good = await makeTar([{ name: "good", data: "good\n" }]);
    const config = imageConfig([good, bomb.gz]);
    config.rootfs.diff_ids = [sha256(good), bomb.diffId];
    const archive = await dockerArchive([{ config, layers: [good, bomb.gz], repoTags: ["bomb:1"] }]);
    const pid = d.process.pid as number;
    // Reset the peak to now, so VmHWM afterwards is the peak during the load.
    await writeFile(`/proc/${pid}/clear_refs`, "5");
    const before = await memoryOf(pid);
    const r = await api(d.socket, "POST", "/images/load", archive);
    const after = await memoryOf(pid);
    expect(r.status).toBe(400);
    const message = r.json<{ message: string }>().message;
    expect(message).toContain(`layer ${sha256(bomb.gz).slice(7)}/layer.tar`);
    expect(message).toContain("more than 1 MiB");
    expect(after.peak - before.rss).toBeLessThan(50 * 1024 * 1024);
    expect((await api(d.socket, "GET", "/images/bomb:1/json")).status).toBe(404);
    expect(await readdir(join(d.dataRoot, "image", "tmp"))).toEqual([]);
  });
});
