// The real docker CLI against shoald: docker cp both ways (files and folders, running and
// stopped containers), the traversal cases staying inside the container, all-or-nothing PUTs,
// diff, export, commit with --change, ps -s and system df.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { chmod, lstat, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import tar from "tar-stream";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";

const run = promisify(execFile);
let d: TestDaemon;
let work: string;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input);
const probe = `shoal-cp-probe-${process.pid}`;

async function ok(args: string[], input?: Buffer): Promise<string> {
  const r = await dk(args, input);
  if (r.code !== 0) throw new Error(`docker ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** A tar built entry by entry, for the hostile PUTs the docker CLI would never send. */
async function tarOf(
  entries: Array<{ name: string; type?: "file" | "directory" | "symlink"; body?: string; linkname?: string }>,
): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? "file";
    const header = { name: e.name, type, mode: type === "directory" ? 0o755 : 0o644, linkname: e.linkname };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (type === "file") pack.entry(header, e.body ?? "", done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

async function catFrom(container: string, path: string): Promise<string> {
  const out = join(work, `cat-${Math.random().toString(16).slice(2)}`);
  await ok(["cp", `${container}:${path}`, out]);
  return readFile(out, "utf8");
}

async function waitExit(name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await ok(["inspect", "--format", "{{.State.Status}}", name])).trim() === "exited") return;
    await sleep(100);
  }
  throw new Error(`${name} did not exit`);
}

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
  work = join(d.root, "cp-work");
  await mkdir(work);
});
afterAll(async () => {
  if (d) {
    for (const img of ["shoal-committed:1", "shoal-committed:2"])
      await dk(["rmi", "-f", img]).catch(() => undefined);
    await d.destroy();
  }
});

describe("docker cp", () => {
  it("copies a file and a folder into a running container, which sees them, and back out with modes", async () => {
    await ok([
      "run",
      "-d",
      "--name",
      "cprun",
      "busybox",
      "sh",
      "-c",
      "while [ ! -f /tmp/go ]; do sleep 0.1; done; cat /tmp/in.txt; cat /tmp/tree/sub/leaf; ls -ln /tmp/in.txt",
    ]);
    const file = join(work, "in.txt");
    await writeFile(file, "hello from the host\n");
    await chmod(file, 0o640);
    const tree = join(work, "tree");
    await mkdir(join(tree, "sub"), { recursive: true });
    await writeFile(join(tree, "sub/leaf"), "leaf\n");
    await chmod(join(tree, "sub/leaf"), 0o600);
    await chmod(join(tree, "sub"), 0o750);
    await ok(["cp", file, "cprun:/tmp/in.txt"]);
    await ok(["cp", tree, "cprun:/tmp/"]);
    await ok(["cp", file, "cprun:/tmp/go"]);
    await waitExit("cprun");
    const logs = await ok(["logs", "cprun"]);
    expect(logs).toMatch(/^hello from the host\nleaf\n-rw-r----- +1 0 +0 +20 /);

    // and back out, from the now stopped container
    const back = join(work, "back");
    await ok(["cp", "cprun:/tmp/tree", back]);
    expect(await readFile(join(back, "sub/leaf"), "utf8")).toBe("leaf\n");
    expect((await stat(join(back, "sub/leaf"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(back, "sub"))).mode & 0o777).toBe(0o750);
    const single = join(work, "single.txt");
    await ok(["cp", "cprun:/tmp/in.txt", single]);
    expect(await readFile(single, "utf8")).toBe("hello from the host\n");
    expect((await stat(single)).mode & 0o777).toBe(0o640);
    // the tar form, to stdout
    const streamed = await dk(["cp", "cprun:/tmp/in.txt", "-"]);
    expect(streamed.code).toBe(0);
    expect(streamed.stdout).toContain("hello from the host");
    await ok(["rm", "cprun"]);
  });

  it("copies into a created container before it starts, and out of a running one", async () => {
    await ok([
      "create",
      "--name",
      "cpnew",
      "busybox",
      "sh",
      "-c",
      "cat /srv/app.conf; echo made > /tmp/made; sleep 1000",
    ]);
    const conf = join(work, "conf");
    await mkdir(conf);
    await writeFile(join(conf, "app.conf"), "port=80\n");
    // /srv does not exist: like cp -a, the folder is copied as /srv itself
    await ok(["cp", conf, "cpnew:/srv"]);
    await ok(["start", "cpnew"]);
    for (let i = 0; i < 100 && !(await ok(["logs", "cpnew"])).includes("port"); i++) await sleep(100);
    expect(await ok(["logs", "cpnew"])).toBe("port=80\n");
    for (let i = 0; i < 100; i++) {
      const r = await dk(["cp", "cpnew:/tmp/made", join(work, "made")]);
      if (r.code === 0) break;
      await sleep(100);
    }
    expect(await readFile(join(work, "made"), "utf8")).toBe("made\n");
    await ok(["rm", "-f", "cpnew"]);
  });

  it("refuses a running container's tmpfs by name, and reads its mount point once stopped", async () => {
    await ok(["run", "-d", "--name", "cptmp", "--tmpfs", "/scratch", "busybox", "sleep", "1000"]);
    const inside = await dk(["cp", "cptmp:/scratch/x", join(work, "x")]);
    expect(inside.code).not.toBe(0);
    expect(inside.stderr).toMatch(/tmpfs mount \/scratch of the running container cptmp/);
    const whole = await dk(["cp", "cptmp:/", join(work, "whole")]);
    expect(whole.code).not.toBe(0);
    expect(whole.stderr).toMatch(/tmpfs mount \/scratch/);
    // commit pauses a running container while it reads its files, then lets it run on
    const image = (await ok(["commit", "cptmp"])).trim();
    expect(image).toMatch(/^sha256:/);
    expect((await ok(["inspect", "--format", "{{.State.Status}}", "cptmp"])).trim()).toBe("running");
    await ok(["rmi", image]);
    await ok(["stop", "-t", "0", "cptmp"]);
    const empty = await dk(["cp", "cptmp:/scratch", "-"]);
    expect(empty.code).toBe(0);
    await ok(["rm", "cptmp"]);
  });

  it("answers Docker's errors for a missing container or file", async () => {
    const noContainer = await dk(["cp", "nosuch:/etc/passwd", join(work, "x")]);
    expect(noContainer.code).not.toBe(0);
    expect(noContainer.stderr).toMatch(/No such container: nosuch/);
    await ok(["create", "--name", "cperr", "busybox", "true"]);
    const noFile = await dk(["cp", "cperr:/no/such/file", join(work, "x")]);
    expect(noFile.code).not.toBe(0);
    expect(noFile.stderr).toMatch(/Could not find the file \/no\/such\/file in container cperr/);
    await ok(["rm", "cperr"]);
  });
});

describe("traversal stays inside the container", () => {
  beforeAll(async () => {
    await ok([
      "run",
      "--name",
      "cptrav",
      "busybox",
      "sh",
      "-c",
      "ln -s /etc /tmp/etclink; mkdir -p /tmp/a/b; ln -s ../../../../../.. /tmp/a/b/up; ln -s /etc/passwd /tmp/pw; echo old > /tmp/keep.txt",
    ]);
  });
  afterAll(async () => {
    await dk(["rm", "-f", "cptrav"]);
  });

  it("reads the container's /etc/passwd through .., climbing and absolute links, never the host's", async () => {
    const hostPasswd = await readFile("/etc/passwd", "utf8");
    const inContainer = await catFrom("cptrav", "/etc/passwd");
    expect(inContainer).not.toBe(hostPasswd);
    expect(inContainer).toMatch(/^root:x:0:0:/);
    expect(await catFrom("cptrav", "../../../etc/passwd")).toBe(inContainer);
    expect(await catFrom("cptrav", "/tmp/a/b/up/etc/passwd")).toBe(inContainer);
    expect(await catFrom("cptrav", "/tmp/etclink/passwd")).toBe(inContainer);
    // docker cp -L follows the link itself (inside the container)
    const followed = join(work, "followed");
    await ok(["cp", "-L", "cptrav:/tmp/pw", followed]);
    expect(await readFile(followed, "utf8")).toBe(inContainer);
  });

  it("writes through the container's links land in the container, not on the host", async () => {
    const file = join(work, probe);
    await writeFile(file, "probe\n");
    await ok(["cp", file, "cptrav:/tmp/etclink/"]);
    await ok(["cp", file, "cptrav:/tmp/a/b/up/"]);
    await expect(lstat(join("/etc", probe))).rejects.toThrow();
    await expect(lstat(join("/", probe))).rejects.toThrow();
    expect(await catFrom("cptrav", `/etc/${probe}`)).toBe("probe\n");
    expect(await catFrom("cptrav", `/${probe}`)).toBe("probe\n");
  });

  it("refuses hostile tars with a 400 and leaves the container's files as they were", async () => {
    const put = (body: Buffer, path = "/tmp") =>
      api(
        d.socket,
        "PUT",
        `/containers/cptrav/archive?path=${encodeURIComponent(path)}&noOverwriteDirNonDir=1`,
        body,
      );
    const cases: Array<[Buffer, RegExp]> = [
      [
        await tarOf([
          { name: "keep.txt", body: "new" },
          { name: `../${probe}`, body: "x" },
        ]),
        /"\.\." component/,
      ],
      [
        await tarOf([
          { name: "keep.txt", body: "new" },
          { name: "l", type: "symlink", linkname: "/etc" },
          { name: `l/${probe}`, body: "x" },
        ]),
        /through the symbolic link "l"/,
      ],
      [await tarOf([{ name: "up", type: "symlink", linkname: "../../../../etc" }]), /invalid symlink/],
      [await tarOf([{ name: `/etc/${probe}`, body: "x" }]), /absolute path/],
    ];
    for (const [body, message] of cases) {
      const r = await put(body);
      expect(r.status).toBe(400);
      expect(r.json<{ message: string }>().message).toMatch(message);
    }
    // a tar cut off halfway
    const whole = await tarOf([{ name: "keep.txt", body: "new".repeat(2000) }]);
    const cut = await put(whole.subarray(0, 1024));
    expect(cut.status).toBe(400);
    expect(await catFrom("cptrav", "/tmp/keep.txt")).toBe("old\n");
    await expect(lstat(join("/etc", probe))).rejects.toThrow();
    const listing = await dk(["cp", "cptrav:/tmp", "-"]);
    expect(listing.stdout).not.toMatch(/\.shoal-cp-|tmp\/l\b/);
    // a folder where the tar has a file: Docker's conflict, nothing changed
    await ok(["cp", join(work, probe), "cptrav:/tmp/keep-dir-probe"]);
    const conflict = await put(await tarOf([{ name: "a", body: "file over a folder" }]));
    expect(conflict.status).toBe(400);
    expect(conflict.json<{ message: string }>().message).toMatch(/cannot overwrite directory "\/tmp\/a"/);
    expect(await catFrom("cptrav", "/tmp/a/b/up/etc/passwd")).toMatch(/^root:x:0:0:/);
  });

  it("HEAD answers the path stat header, with a link's target resolved inside", async () => {
    const r = await api(d.socket, "HEAD", "/containers/cptrav/archive?path=/tmp/a/b/up");
    expect(r.status).toBe(200);
    const stat = JSON.parse(
      Buffer.from(String(r.headers["x-docker-container-path-stat"]), "base64").toString(),
    ) as {
      name: string;
      linkTarget: string;
      mode: number;
    };
    expect(stat).toMatchObject({ name: "up", linkTarget: "/" });
    expect(stat.mode & (2 ** 27)).toBe(2 ** 27);
    const missing = await api(d.socket, "HEAD", "/containers/cptrav/archive?path=/nope");
    expect(missing.status).toBe(404);
  });
});

describe("diff, export, commit and sizes", () => {
  beforeAll(async () => {
    await ok([
      "run",
      "--name",
      "cpchg",
      "-v",
      "cpvol:/data",
      "busybox",
      "sh",
      "-c",
      "echo new > /tmp/new.txt; rm /etc/group; echo more >> /etc/passwd; echo in-volume > /data/v.txt",
    ]);
  });
  afterAll(async () => {
    await dk(["rm", "-f", "cpchg", "cpcommitted"]);
    await dk(["volume", "rm", "cpvol"]);
  });

  it("docker diff shows added, changed and deleted files", async () => {
    const lines = (await ok(["diff", "cpchg"])).trim().split("\n");
    expect(lines).toEqual(
      expect.arrayContaining(["A /tmp/new.txt", "C /etc/passwd", "D /etc/group", "C /etc"]),
    );
    expect(lines.some((l) => /hosts|hostname|resolv|v\.txt/.test(l))).toBe(false);
  });

  it("docker export has the container's files and not its volumes", async () => {
    const out = join(work, "export.tar");
    await ok(["export", "-o", out, "cpchg"]);
    const { stdout } = await run("tar", ["-tf", out]);
    const names = stdout.split("\n");
    expect(names).toContain("tmp/new.txt");
    expect(names).toContain("bin/busybox");
    expect(names).not.toContain("etc/group");
    expect(names).not.toContain("data/v.txt");
    const { stdout: content } = await run("tar", ["-xOf", out, "tmp/new.txt"]);
    expect(content).toBe("new\n");
  });

  it("docker commit makes an image whose containers see the file and the --change CMD", async () => {
    const id = (
      await ok([
        "commit",
        "-c",
        'CMD ["cat", "/tmp/new.txt"]',
        "-c",
        "ENV COMMITTED=yes",
        "-m",
        "a message",
        "-a",
        "tester",
        "cpchg",
        "shoal-committed:1",
      ])
    ).trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await ok(["run", "--name", "cpcommitted", "shoal-committed:1"])).toBe("new\n");
    const meta = await ok([
      "inspect",
      "--format",
      "{{.Comment}}|{{.Author}}|{{json .Config.Cmd}}",
      "shoal-committed:1",
    ]);
    expect(meta.trim()).toBe('a message|tester|["cat","/tmp/new.txt"]');
    expect(
      await ok([
        "run",
        "--rm",
        "shoal-committed:1",
        "sh",
        "-c",
        "echo $COMMITTED; ls /etc/group 2>&1; cat /data/v.txt 2>&1; true",
      ]),
    ).toMatch(/^yes\n.*No such file.*\n.*No such file/s);
    const refused = await dk(["commit", "-c", "ONBUILD RUN true", "cpchg", "shoal-committed:2"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/ONBUILD is not a valid change instruction/);
    expect((await dk(["image", "inspect", "shoal-committed:2"])).code).not.toBe(0);
  });

  it("ps -s, inspect -s and system df report sizes", async () => {
    const size = (await ok(["ps", "-a", "-s", "--filter", "name=cpchg", "--format", "{{.Size}}"])).trim();
    expect(size).toMatch(/^[1-9][\d.]*k?B \(virtual [1-9][\d.]*[kM]?B\)$/);
    const rw = Number((await ok(["inspect", "-s", "--format", "{{.SizeRw}}", "cpchg"])).trim());
    expect(rw).toBeGreaterThan(0);
    const df = await ok(["system", "df"]);
    expect(df).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE/);
    expect(df).toMatch(/Images\s+\d+\s+\d+\s+[1-9][\d.]*[kM]?B/);
    expect(df).toMatch(/Containers\s+\d+\s+\d+\s+[1-9][\d.]*k?B/);
    expect(df).toMatch(/Local Volumes\s+1\s+1\s+[1-9][\d.]*B/);
    const verbose = await ok(["system", "df", "-v"]);
    expect(verbose).toMatch(/cpchg/);
    expect(verbose).toMatch(/cpvol\s+1\s+[1-9]/);
  });
});

describe("the shoal CLI's cp, diff, export, commit and system df", () => {
  it("copies both ways and reports changes, an export, a commit and disk usage", async () => {
    const sh = async (args: string[]): Promise<string> => {
      const r = await shoal(d.socket, args);
      if (r.code !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
      return r.stdout;
    };
    await ok(["create", "--name", "shcp", "busybox", "cat", "/tmp/named.txt"]);
    const dir = join(work, "shdir");
    await mkdir(dir);
    await writeFile(join(dir, "f.txt"), "from shoal\n");
    await sh(["cp", dir, "shcp:/tmp/"]);
    await sh(["cp", join(dir, "f.txt"), "shcp:/tmp/named.txt"]);
    const back = join(work, "shback");
    await sh(["cp", "shcp:/tmp/shdir", back]);
    expect(await readFile(join(back, "f.txt"), "utf8")).toBe("from shoal\n");
    expect(await sh(["diff", "shcp"])).toMatch(
      /^C \/tmp\nA \/tmp\/named\.txt\nA \/tmp\/shdir\nA \/tmp\/shdir\/f\.txt\n$/,
    );
    const out = join(work, "sh-export.tar");
    await sh(["export", "-o", out, "shcp"]);
    expect((await run("tar", ["-tf", out])).stdout.split("\n")).toContain("tmp/named.txt");
    expect(await sh(["commit", "-c", "ENV FROM_SHOAL=1", "shcp", "shoal-committed:2"])).toMatch(/^sha256:/);
    expect(await ok(["run", "--rm", "shoal-committed:2"])).toBe("from shoal\n");
    expect(await sh(["system", "df"])).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+\d+/);
    await ok(["rm", "shcp"]);
  });
});
