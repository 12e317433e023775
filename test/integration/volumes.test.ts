// Volumes, bind mounts and tmpfs mounts, end to end: shoal's CLI and the Engine API against a
// real daemon running busybox containers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { shoal } from "../helpers/cli.js";
import { busyboxEnv, busyboxLayer } from "../fixtures/busybox-image.mjs";
import { dockerArchive, imageConfig, makeTar } from "../fixtures/tarlib.mjs";

let d: TestDaemon;
let host: string;
const sh = (args: string[]) => shoal(d.socket, args);

interface Mount {
  Type: string;
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

/** busybox plus /seed (1000:1000, 0750) holding hello.txt (0640) and a folder; VOLUME /seed. */
async function loadSeededImage(): Promise<void> {
  const base = await busyboxLayer();
  const seed = await makeTar([
    { name: "seed/", type: "directory", mode: 0o750, uid: 1000, gid: 1000 },
    { name: "seed/hello.txt", data: "seeded content\n", mode: 0o640, uid: 1000, gid: 1000 },
    { name: "seed/nested/", type: "directory", mode: 0o700, uid: 0, gid: 0 },
    { name: "seed/nested/deep.txt", data: "deep\n", mode: 0o600 },
    { name: "seed/link", type: "symlink", linkname: "hello.txt" },
  ]);
  const config = imageConfig([base, seed], { Env: busyboxEnv, Cmd: ["sh"], Volumes: { "/seed": {} } });
  const archive = await dockerArchive([{ config, layers: [base, seed], repoTags: ["seeded:1"] }]);
  const r = await api(d.socket, "POST", "/images/load", archive);
  if (r.status !== 200) throw new Error(`loading seeded:1 failed: ${r.status} ${r.body.toString()}`);
}

async function mountsOf(container: string): Promise<Mount[]> {
  const r = await sh(["inspect", "--format", "{{json .Mounts}}", container]);
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as Mount[];
}

async function volumeNames(): Promise<string[]> {
  const r = await sh(["volume", "ls", "-q"]);
  expect(r.code).toBe(0);
  return r.stdout.split("\n").filter(Boolean);
}

/** Host mount points under the test daemon's folders. */
async function hostMountsUnder(prefix: string): Promise<string[]> {
  const text = await readFile("/proc/mounts", "utf8");
  return text
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((t) => t.startsWith(prefix));
}

beforeAll(async () => {
  d = await startDaemon();
  host = join(d.root, "host");
  await mkdir(host, { recursive: true });
  await loadBusybox(d.socket);
  await loadSeededImage();
});
afterAll(async () => {
  await d?.destroy();
});

describe("named volumes", () => {
  it("keep data after the container is removed, for the next container to read", async () => {
    const w = await sh([
      "run",
      "--rm",
      "-v",
      "keep:/data",
      "busybox",
      "sh",
      "-c",
      "echo persisted > /data/f",
    ]);
    expect(w).toMatchObject({ code: 0, stderr: "" });
    expect(await volumeNames()).toContain("keep");
    const r = await sh(["run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f"]);
    expect(r.stdout).toBe("persisted\n");
    const where = await sh([
      "volume",
      "inspect",
      "--format",
      "{{.Mountpoint}} {{.Driver}} {{.Scope}}",
      "keep",
    ]);
    expect(where.stdout.trim()).toBe(`${join(d.dataRoot, "volumes", "keep", "_data")} local local`);
    expect(await readFile(join(d.dataRoot, "volumes", "keep", "_data", "f"), "utf8")).toBe("persisted\n");
  });

  it("volume create, ls, inspect and rm work as in Docker", async () => {
    const c = await sh(["volume", "create", "--label", "team=web", "made"]);
    expect(c).toMatchObject({ code: 0, stdout: "made\n" });
    expect((await sh(["volume", "create", "made"])).code).toBe(0); // idempotent
    const ls = await sh(["volume", "ls", "--filter", "label=team=web"]);
    expect(ls.stdout).toBe("DRIVER    VOLUME NAME\nlocal     made\n");
    const inspect = JSON.parse((await sh(["volume", "inspect", "made"])).stdout) as Array<
      Record<string, unknown>
    >;
    expect(inspect).toEqual([
      {
        CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        Driver: "local",
        Labels: { team: "web" },
        Mountpoint: join(d.dataRoot, "volumes", "made", "_data"),
        Name: "made",
        Options: {},
        Scope: "local",
      },
    ]);
    const bad = await sh(["volume", "create", "x"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/"x" includes invalid characters for a local volume name/);
    expect(await sh(["volume", "rm", "made"])).toMatchObject({ code: 0, stdout: "made\n" });
    const gone = await sh(["volume", "inspect", "made"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/No such volume: made/);
    expect((await sh(["volume", "rm", "-f", "made"])).code).toBe(0);
  });

  it("volume rm of a volume in use is a 409 naming the container, also when it is stopped", async () => {
    const id = (
      await sh(["create", "--name", "holder", "-v", "inuse:/data", "busybox", "true"])
    ).stdout.trim();
    const r = await api(d.socket, "DELETE", "/volumes/inuse?force=1");
    expect(r.status).toBe(409);
    expect(r.json<{ message: string }>().message).toBe(
      `remove inuse: volume is in use - [${id}] (container holder): remove the container first`,
    );
    const cli = await sh(["volume", "rm", "inuse"]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain(`Error response from daemon: remove inuse: volume is in use - [${id}]`);
    await sh(["rm", "holder"]);
    expect((await sh(["volume", "rm", "inuse"])).code).toBe(0);
  });
});

describe("copy-up from the image", () => {
  it("fills a fresh named volume with the image's content, owners and modes kept", async () => {
    const r = await sh([
      "run",
      "--rm",
      "-v",
      "seeded-vol:/seed",
      "seeded:1",
      "sh",
      "-c",
      "cat /seed/hello.txt /seed/nested/deep.txt; readlink /seed/link; stat -c '%n %u:%g %a' /seed /seed/hello.txt /seed/nested",
    ]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(
      "seeded content\ndeep\nhello.txt\n/seed 1000:1000 750\n/seed/hello.txt 1000:1000 640\n/seed/nested 0:0 700\n",
    );
    // A volume that is not empty is not filled again: the container's change stays.
    await sh(["run", "--rm", "-v", "seeded-vol:/seed", "seeded:1", "rm", "/seed/hello.txt"]);
    const again = await sh(["run", "--rm", "-v", "seeded-vol:/seed", "seeded:1", "ls", "/seed"]);
    expect(again.stdout.split("\n").filter(Boolean).sort()).toEqual(["link", "nested"]);
  });

  it("does not copy with volume-nocopy, nor into binds", async () => {
    const nocopy = await sh([
      "run",
      "--rm",
      "--mount",
      "type=volume,src=empty-vol,dst=/seed,volume-nocopy",
      "seeded:1",
      "ls",
      "-A",
      "/seed",
    ]);
    expect(nocopy).toMatchObject({ code: 0, stdout: "" });
    const dir = join(host, "bind-seed");
    await mkdir(dir);
    const bind = await sh(["run", "--rm", "-v", `${dir}:/seed`, "seeded:1", "ls", "-A", "/seed"]);
    expect(bind).toMatchObject({ code: 0, stdout: "" });
    expect(await readdir(dir)).toEqual([]);
  });

  it("gives an image VOLUME an anonymous volume, filled from the image; rm -v removes it", async () => {
    await sh(["create", "--name", "anon", "seeded:1", "cat", "/seed/hello.txt"]);
    const [m] = await mountsOf("anon");
    expect(m).toEqual({
      Type: "volume",
      Name: expect.stringMatching(/^[0-9a-f]{64}$/),
      Source: join(d.dataRoot, "volumes", m.Name ?? "", "_data"),
      Destination: "/seed",
      Driver: "local",
      Mode: "",
      RW: true,
      Propagation: "",
    });
    const started = await sh(["start", "-a", "anon"]);
    expect(started.stdout).toBe("seeded content\n");
    const labels = await sh(["volume", "inspect", "--format", "{{json .Labels}}", m.Name ?? ""]);
    expect(labels.stdout.trim()).toBe('{"com.docker.volume.anonymous":""}');
    expect((await sh(["rm", "-v", "anon"])).code).toBe(0);
    expect(await volumeNames()).not.toContain(m.Name);
  });
});

describe("read-only mounts", () => {
  it(":ro binds and readonly volumes refuse writes", async () => {
    const dir = join(host, "ro");
    await mkdir(dir);
    await writeFile(join(dir, "present"), "here\n");
    const r = await sh([
      "run",
      "--rm",
      "-v",
      `${dir}:/ro-bind:ro`,
      "--mount",
      "type=volume,source=ro-vol,target=/ro-vol,readonly",
      "busybox",
      "sh",
      "-c",
      "cat /ro-bind/present; touch /ro-bind/new || echo bind-refused; touch /ro-vol/new || echo volume-refused",
    ]);
    expect(r.stdout).toBe("here\nbind-refused\nvolume-refused\n");
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(await readdir(dir)).toEqual(["present"]);
    expect(await readdir(join(d.dataRoot, "volumes", "ro-vol", "_data"))).toEqual([]);
  });
});

describe("bind mounts", () => {
  it("show the host folder's files, and writes land on the host", async () => {
    const dir = join(host, "shared");
    await mkdir(dir);
    await writeFile(join(dir, "from-host.txt"), "hello from the host\n");
    const r = await sh([
      "run",
      "--rm",
      "--mount",
      `type=bind,source=${dir},target=/work`,
      "busybox",
      "sh",
      "-c",
      "cat /work/from-host.txt; echo from-container > /work/out.txt",
    ]);
    expect(r).toMatchObject({ code: 0, stdout: "hello from the host\n" });
    expect(await readFile(join(dir, "out.txt"), "utf8")).toBe("from-container\n");
  });

  it("-v makes a missing host folder, as Docker does", async () => {
    const dir = join(host, "made", "by", "v");
    const r = await sh(["run", "--rm", "-v", `${dir}:/x`, "busybox", "sh", "-c", "echo ok > /x/f"]);
    expect(r.code).toBe(0);
    expect(await readFile(join(dir, "f"), "utf8")).toBe("ok\n");
  });

  it("--mount type=bind of a missing path is a 400 and leaves no container and no new volume", async () => {
    const missing = join(host, "does-not-exist");
    const r = await api(d.socket, "POST", "/containers/create?name=nobind", {
      Image: "busybox",
      Cmd: ["true"],
      HostConfig: {
        Binds: ["fresh-vol:/a"],
        Mounts: [{ Type: "bind", Source: missing, Target: "/b" }],
      },
    });
    expect(r.status).toBe(400);
    expect(r.json<{ message: string }>().message).toBe(
      `invalid mount config for type "bind": bind source path does not exist: ${missing}`,
    );
    const cli = await sh([
      "run",
      "--name",
      "nobind",
      "--mount",
      `type=bind,src=${missing},dst=/b`,
      "busybox",
      "true",
    ]);
    expect(cli.code).toBe(125);
    expect(cli.stderr).toContain(`bind source path does not exist: ${missing}`);
    expect((await sh(["ps", "-a", "--filter", "name=nobind", "-q"])).stdout).toBe("");
    expect(await volumeNames()).not.toContain("fresh-vol");
    expect(await readdir(join(d.dataRoot, "volumes"))).not.toContain("fresh-vol");
  });
});

describe("tmpfs mounts", () => {
  it("--tmpfs and --mount type=tmpfs are tmpfs with the asked size and Docker's flags", async () => {
    const r = await sh([
      "run",
      "--rm",
      "--tmpfs",
      "/scratch:size=16m,mode=1777",
      "--mount",
      "type=tmpfs,target=/t2,tmpfs-size=8m",
      "busybox",
      "sh",
      "-c",
      "grep -E ' /(scratch|t2) ' /proc/mounts; stat -c %a /scratch",
    ]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(
      "tmpfs /scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=16384k 0 0\n" +
        "tmpfs /t2 tmpfs rw,nosuid,nodev,noexec,relatime,size=8192k 0 0\n" +
        "1777\n",
    );
  });
});

describe("bad mount settings are 400s that say what to fix", () => {
  it.each([
    [["-v", "data:relative"], /invalid mount path: 'relative' mount path must be absolute/],
    [["-v", "d1:/same", "-v", "d2:/same"], /Duplicate mount point: \/same/],
    [["-v", "data:/x:bogus"], /invalid mode: bogus/],
    [["--tmpfs", "/t:size=huge"], /invalid value in tmpfs option "size=huge"/],
    [["--tmpfs", "/t:color=red"], /invalid tmpfs option "color=red"/],
    [["--mount", "type=tmpfs,dst=/t,src=/x"], /field Source must not be specified/],
  ])("%j", async (flags, message) => {
    const r = await sh(["create", ...flags, "busybox", "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(message);
  });

  it("refuses an unknown --mount key in the CLI", async () => {
    const r = await sh(["create", "--mount", "type=bind,src=/tmp,dst=/x,colour=red", "busybox", "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/unexpected key 'colour' in 'colour=red'/);
  });
});

describe("removal", () => {
  it("rm -v removes anonymous volumes but not named ones; plain rm keeps both", async () => {
    await sh(["create", "--name", "both", "-v", "named-keep:/n", "-v", "/anon", "busybox", "true"]);
    const anon = (await mountsOf("both")).find((m) => m.Destination === "/anon")?.Name ?? "";
    expect(anon).toMatch(/^[0-9a-f]{64}$/);
    expect((await sh(["rm", "-v", "both"])).code).toBe(0);
    const after = await volumeNames();
    expect(after).toContain("named-keep");
    expect(after).not.toContain(anon);

    await sh(["create", "--name", "plain", "-v", "/anon2", "busybox", "true"]);
    const anon2 = (await mountsOf("plain"))[0].Name ?? "";
    await sh(["rm", "plain"]);
    expect(await volumeNames()).toContain(anon2);
  });

  it("--rm takes the container's anonymous volumes with it", async () => {
    const id = (
      await sh(["run", "-d", "--rm", "-v", "/scratch-anon", "busybox", "sleep", "1"])
    ).stdout.trim();
    const anon = (await mountsOf(id))[0].Name ?? "";
    expect(await volumeNames()).toContain(anon);
    await sh(["wait", id]); // may already be gone
    // The removal follows the exit; give it a moment.
    for (let i = 0; i < 100 && (await volumeNames()).includes(anon); i++) {
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(await volumeNames()).not.toContain(anon);
  });

  it("leaves no host mount of the container behind", async () => {
    const dir = join(host, "mounted");
    await mkdir(dir);
    const id = (
      await sh([
        "run",
        "-d",
        "-v",
        `${dir}:/b`,
        "-v",
        "mnt-vol:/v",
        "--tmpfs",
        "/t",
        "busybox",
        "sleep",
        "100",
      ])
    ).stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect((await hostMountsUnder(join(d.dataRoot, "containers", id))).length).toBeGreaterThan(0); // its root
    expect((await sh(["rm", "-f", id])).code).toBe(0);
    expect(await hostMountsUnder(join(d.dataRoot, "containers", id))).toEqual([]);
    expect(await hostMountsUnder(join(d.dataRoot, "volumes"))).toEqual([]);
    expect(await hostMountsUnder(dir)).toEqual([]);
  });
});

describe("volume prune", () => {
  it("removes unused anonymous volumes; --all also unused named ones; never ones in use", async () => {
    await sh(["create", "--name", "user", "-v", "used-named:/u", "-v", "/used-anon", "busybox", "true"]);
    const usedAnon = (await mountsOf("user")).find((m) => m.Destination === "/used-anon")?.Name ?? "";
    await sh(["create", "--name", "tmp-anon", "-v", "/loose", "busybox", "true"]);
    const loose = (await mountsOf("tmp-anon"))[0].Name ?? "";
    await sh(["rm", "tmp-anon"]);
    await writeFile(join(d.dataRoot, "volumes", loose, "_data", "bytes"), "0123456789");
    await sh(["volume", "create", "unused-named"]);

    const p = await sh(["volume", "prune", "-f"]);
    expect(p.code).toBe(0);
    expect(p.stdout).toContain(`Deleted Volumes:\n`);
    expect(p.stdout).toContain(`${loose}\n`);
    expect(p.stdout).toMatch(/Total reclaimed space: 10B\n$/);
    let names = await volumeNames();
    expect(names).not.toContain(loose);
    expect(names).toEqual(expect.arrayContaining(["unused-named", "used-named", usedAnon]));

    const all = await sh(["volume", "prune", "-f", "--all"]);
    expect(all.stdout).toContain("unused-named\n");
    names = await volumeNames();
    expect(names).not.toContain("unused-named");
    expect(names).toEqual(expect.arrayContaining(["used-named", usedAnon]));
    await sh(["rm", "-v", "user"]);
  });

  it("volumes survive a daemon restart", async () => {
    await sh(["volume", "create", "durable"]);
    await d.restart();
    expect(await volumeNames()).toContain("durable");
    const r = await sh([
      "run",
      "--rm",
      "-v",
      "durable:/d",
      "busybox",
      "sh",
      "-c",
      "echo ok > /d/f && cat /d/f",
    ]);
    expect(r.stdout).toBe("ok\n");
  });
});
