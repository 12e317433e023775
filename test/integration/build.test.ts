// The Dockerfile builder against a real shoald: a multi-stage build that runs, a rebuild that
// is all cache hits and starts no container, cache invalidation from the changed COPY on,
// .dockerignore, --target, --build-arg, the JSON-lines API, and errors that leave nothing behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { shoal } from "../helpers/cli.js";
import { makeTar } from "../fixtures/tarlib.mjs";

let d: TestDaemon;
let tmp: string;
let ctx: string;
const sh = (args: string[]) => shoal(d.socket, args);

const dockerfile = `# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM \${BASE} AS builder
ARG GREETING=hello
RUN mkdir -p /out && echo "$GREETING from stage one" > /out/greeting.txt \\
    && touch /out/empty && rm /bin/vi
FROM busybox
COPY --from=builder /out/greeting.txt /app/
COPY --chown=app:app files/*.txt /app/data/
COPY . /ctx/
ENV APP_HOME=/app MODE=test
WORKDIR $APP_HOME/work
USER 1000
LABEL org.example.name="demo app" version=1
EXPOSE 8080 53/udp
VOLUME /data
HEALTHCHECK --interval=5s --retries=2 CMD cat /app/greeting.txt
STOPSIGNAL SIGINT
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/greeting.txt /app/data/*.txt; id -u; pwd; echo $MODE; ls /ctx"]
`;

/** The steps of a build's output: "Step n/m : TEXT" and what followed it. */
function steps(output: string): Array<{ text: string; body: string }> {
  return output
    .split(/^Step \d+\/\d+ : /m)
    .slice(1)
    .map((chunk) => {
      const nl = chunk.indexOf("\n");
      return { text: chunk.slice(0, nl), body: chunk.slice(nl + 1) };
    });
}

const created = (): number => (d.logs().match(/"msg":"container created"/g) ?? []).length;

async function buildContainers(): Promise<unknown[]> {
  const r = await api(
    d.socket,
    "GET",
    `/containers/json?all=1&filters=${encodeURIComponent('{"label":["io.shoal.build"]}')}`,
  );
  return r.json<unknown[]>();
}

async function leakedMounts(): Promise<string[]> {
  const mounts = await readFile("/proc/mounts", "utf8");
  return mounts
    .split("\n")
    .map((l) => l.split(" ")[1])
    .filter((t): t is string => !!t && t.startsWith(d.dataRoot));
}

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
  tmp = await mkdtemp("/tmp/shoal-build-");
  ctx = join(tmp, "app");
  await mkdir(join(ctx, "files"), { recursive: true });
  await writeFile(join(ctx, "Dockerfile"), dockerfile);
  await writeFile(join(ctx, "files/a.txt"), "one\n");
  await writeFile(join(ctx, "files/b.txt"), "two\n");
  await writeFile(join(ctx, "files/c.md"), "not copied by the wildcard\n");
  await writeFile(join(ctx, "secret.key"), "must not reach the daemon\n");
  await writeFile(join(ctx, "debug.log"), "noise\n");
  await writeFile(join(ctx, ".dockerignore"), "# not for the image\nsecret.key\n*.log\n");
});

afterAll(async () => {
  await d?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("shoal build", () => {
  let firstId = "";

  it("builds a multi-stage Dockerfile into an image that runs and carries its config", async () => {
    const r = await sh(["build", "-t", "demo:1", ctx]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const s = steps(r.stdout);
    expect(s.map((x) => x.text)[0]).toBe("ARG BASE=busybox");
    expect(s).toHaveLength(18);
    expect(s[3].body).toMatch(/ ---> Running in [0-9a-f]{12}\n/);
    expect(s[3].body).toMatch(/ ---> Removed intermediate container [0-9a-f]{12}\n/);
    const m = /Successfully built ([0-9a-f]{12})\nSuccessfully tagged demo:1\n$/.exec(r.stdout);
    expect(m).not.toBeNull();
    firstId = (m as RegExpExecArray)[1];

    const run = await sh(["run", "--rm", "demo:1"]);
    expect(run.stderr).toBe("");
    expect(run.stdout.split("\n")).toEqual([
      "hello from stage one",
      "one",
      "two",
      "1000",
      "/app/work",
      "test",
      "Dockerfile",
      "files",
      "",
    ]);
    const owners = await sh([
      "run",
      "--rm",
      "demo:1",
      "stat -c '%u:%g %a %n' /app/data/a.txt /app/greeting.txt; ls -a /ctx",
    ]);
    expect(owners.stdout).toContain("1000:1000 644 /app/data/a.txt");
    expect(owners.stdout).toContain("0:0 644 /app/greeting.txt");
    expect(owners.stdout).toContain(".dockerignore");
    expect(owners.stdout).not.toContain("secret.key");
    expect(owners.stdout).not.toContain("debug.log");

    const inspect = (await api(d.socket, "GET", "/images/demo:1/json")).json<{
      Id: string;
      Parent: string;
      Config: Record<string, unknown>;
      RootFS: { Layers: string[] };
    }>();
    expect(inspect.Id.slice(7, 19)).toBe(firstId);
    expect(inspect.Parent).toMatch(/^sha256:/);
    expect(inspect.Config).toMatchObject({
      User: "1000",
      WorkingDir: "/app/work",
      Entrypoint: ["sh", "-c"],
      Cmd: ["cat /app/greeting.txt /app/data/*.txt; id -u; pwd; echo $MODE; ls /ctx"],
      Labels: { "org.example.name": "demo app", version: "1" },
      ExposedPorts: { "8080/tcp": {}, "53/udp": {} },
      Volumes: { "/data": {} },
      StopSignal: "SIGINT",
      Healthcheck: { Test: ["CMD-SHELL", "cat /app/greeting.txt"], Interval: 5_000_000_000, Retries: 2 },
    });
    expect(inspect.Config.Env).toEqual(expect.arrayContaining(["APP_HOME=/app", "MODE=test"]));
    // busybox + COPY --from + COPY files + COPY . + WORKDIR (made the folder)
    expect(inspect.RootFS.Layers).toHaveLength(5);

    const history = (await api(d.socket, "GET", "/images/demo:1/history")).json<
      Array<{ CreatedBy: string }>
    >();
    expect(history.map((h) => h.CreatedBy)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^\/bin\/sh -c #\(nop\) COPY --chown=app:app multi:[0-9a-f]{64} in \/app\/data\/ $/,
        ),
        "/bin/sh -c #(nop)  ENV APP_HOME=/app MODE=test",
      ]),
    );
    // Intermediate images are not listed, but are with -a; the builder stage's result is dangling.
    const listed = (await api(d.socket, "GET", "/images/json")).json<unknown[]>();
    const all = (await api(d.socket, "GET", "/images/json?all=1")).json<unknown[]>();
    expect(listed).toHaveLength(3);
    expect(all.length).toBeGreaterThan(15);
    expect(await buildContainers()).toEqual([]);
  });

  it("rebuilds from the cache without running anything", async () => {
    const before = created();
    const r = await sh(["build", "-t", "demo:1", ctx]);
    expect(r.code).toBe(0);
    for (const s of steps(r.stdout)) {
      if (s.text.startsWith("FROM") || s.text === "ARG BASE=busybox") continue;
      expect([s.text, s.body]).toEqual([
        s.text,
        expect.stringMatching(/^ ---> Using cache\n ---> [0-9a-f]{12}\n/),
      ]);
    }
    expect(r.stdout).not.toContain("Running in");
    expect(r.stdout).toContain(`Successfully built ${firstId}\n`);
    expect(created()).toBe(before);
    // A file .dockerignore excludes changes nothing either.
    await writeFile(join(ctx, "secret.key"), "rotated\n");
    const again = await sh(["build", "-q", ctx]);
    expect(again.stdout.trim().slice(7, 19)).toBe(firstId);
    expect(created()).toBe(before);
  });

  it("keeps the cache across a daemon restart", async () => {
    await d.restart();
    const before = created();
    const r = await sh(["build", "-t", "demo:1", ctx]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Successfully built ${firstId}\n`);
    expect(r.stdout).not.toContain("Running in");
    expect(created()).toBe(before);
  });

  it("invalidates the cache only from the COPY whose content changed", async () => {
    await writeFile(join(ctx, "files/b.txt"), "TWO\n");
    const r = await sh(["build", "-t", "demo:2", ctx]);
    expect(r.code).toBe(0);
    const s = steps(r.stdout);
    const changed = s.findIndex((x) => x.text.startsWith("COPY --chown=app:app"));
    expect(changed).toBeGreaterThan(0);
    for (const [i, step] of s.entries()) {
      if (step.text.startsWith("FROM") || step.text === "ARG BASE=busybox") continue;
      expect([step.text, step.body.includes("Using cache")]).toEqual([step.text, i < changed]);
    }
    const run = await sh(["run", "--rm", "demo:2"]);
    expect(run.stdout).toContain("one\nTWO\n");
  });

  it("--target stops at a stage; --build-arg changes what RUN sees", async () => {
    const t = await sh(["build", "--target", "builder", "-t", "stage1", ctx]);
    expect(t.code).toBe(0);
    expect(steps(t.stdout)).toHaveLength(4);
    const run = await sh([
      "run",
      "--rm",
      "stage1",
      "sh",
      "-c",
      "cat /out/greeting.txt; ls /out; ls /bin/vi || echo vi-gone",
    ]);
    expect(run.stdout).toBe("hello from stage one\nempty\ngreeting.txt\nvi-gone\n");
    const inspect = (await api(d.socket, "GET", "/images/stage1/json")).json<{ Config: { Cmd: string[] } }>();
    expect(inspect.Config.Cmd).toEqual(["sh"]);

    const a = await sh([
      "build",
      "--target",
      "builder",
      "--build-arg",
      "GREETING=bonjour",
      "--build-arg",
      "UNUSED=1",
      "-t",
      "stage1:fr",
      ctx,
    ]);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain("Running in");
    expect(a.stdout).toContain("[Warning] One or more build-args [UNUSED] were not consumed");
    const fr = await sh(["run", "--rm", "stage1:fr", "cat", "/out/greeting.txt"]);
    expect(fr.stdout).toBe("bonjour from stage one\n");
    const history = (await api(d.socket, "GET", "/images/stage1:fr/history")).json<
      Array<{ CreatedBy: string }>
    >();
    expect(history[0].CreatedBy).toMatch(/^\|1 GREETING=bonjour \/bin\/sh -c mkdir -p \/out/);
  });

  it("--no-cache runs every step again; --label lands on the final image", async () => {
    const r = await sh(["build", "--no-cache", "--label", "team=core", "-t", "demo:nc", ctx]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("Using cache");
    expect(r.stdout).toContain('LABEL "team"="core"');
    const inspect = (await api(d.socket, "GET", "/images/demo:nc/json")).json<{
      Config: { Labels: Record<string, string> };
    }>();
    expect(inspect.Config.Labels).toMatchObject({ team: "core", version: "1" });
  });

  it("ADD unpacks local archives (tar, tar.gz) and refuses URLs", async () => {
    const dir = join(tmp, "add");
    await mkdir(dir, { recursive: true });
    const tar = await makeTar([
      { name: "pkg/", type: "directory" },
      { name: "pkg/bin.sh", data: "echo from-archive\n", mode: 0o755, uid: 7, gid: 8 },
      { name: "pkg/link", type: "symlink", linkname: "bin.sh" },
    ]);
    await writeFile(join(dir, "plain.tar"), tar);
    await writeFile(join(dir, "packed.tar.gz"), gzipSync(tar));
    await writeFile(join(dir, "notes.txt.gz"), gzipSync(Buffer.from("not a tar\n")));
    await writeFile(
      join(dir, "Dockerfile"),
      "FROM busybox\nADD plain.tar /opt/a/\nADD packed.tar.gz /opt/b\nADD notes.txt.gz /opt/\n",
    );
    const r = await sh(["build", "-t", "added", dir]);
    expect(r.stderr).toBe("");
    const run = await sh([
      "run",
      "--rm",
      "added",
      "sh",
      "-c",
      "sh /opt/a/pkg/bin.sh; /opt/b/pkg/link; stat -c '%u:%g %a' /opt/b/pkg/bin.sh; ls /opt",
    ]);
    expect(run.stdout).toBe("from-archive\nfrom-archive\n7:8 755\na\nb\nnotes.txt.gz\n");
    await writeFile(join(dir, "Dockerfile"), "FROM busybox\nADD https://example.com/file.txt /\n");
    const url = await sh(["build", dir]);
    expect(url.code).not.toBe(0);
    expect(url.stderr).toMatch(
      /ADD failed: https:\/\/example.com\/file.txt is a URL; shoal builds have no network access/,
    );
  });

  it("FROM scratch, COPY --from a stage and an image, SHELL, exec-form RUN, ENTRYPOINT", async () => {
    const dir = join(tmp, "misc");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "hello.txt"), "hi\n");
    await writeFile(
      join(dir, "Dockerfile"),
      [
        "FROM scratch AS files",
        "COPY hello.txt /",
        "FROM busybox",
        'SHELL ["/bin/sh", "-ec"]',
        'RUN ["sh", "-c", "echo exec-form > /exec.txt"]',
        "COPY --from=files /hello.txt /from-stage.txt",
        "COPY --from=busybox /etc/group /copied-group",
        'RUN test "$(cat /from-stage.txt)" = hi && grep -q app /copied-group',
        'ENTRYPOINT ["cat"]',
        "",
      ].join("\n"),
    );
    const r = await sh(["build", "-t", "misc", dir]);
    expect(r.stderr).toBe("");
    const run = await sh(["run", "--rm", "misc", "/exec.txt", "/from-stage.txt"]);
    expect(run.stdout).toBe("exec-form\nhi\n");
    const inspect = (await api(d.socket, "GET", "/images/misc/json")).json<{
      Config: Record<string, unknown>;
    }>();
    expect(inspect.Config).toMatchObject({ Entrypoint: ["cat"], Cmd: null, Shell: ["/bin/sh", "-ec"] });
    const history = (await api(d.socket, "GET", "/images/misc/history")).json<Array<{ CreatedBy: string }>>();
    expect(history.map((h) => h.CreatedBy)).toContain("sh -c echo exec-form > /exec.txt");
  });

  it("streams Docker's JSON lines over the API", async () => {
    const tar = await makeTar([{ name: "Dockerfile", data: "FROM busybox\nENV X=1\n" }]);
    const r = await api(d.socket, "POST", "/v1.44/build?t=api:1&rm=1", tar);
    expect(r.status).toBe(200);
    const lines = r.body
      .toString()
      .trim()
      .split(/\r?\n/)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toEqual({ stream: "Step 1/2 : FROM busybox\n" });
    expect(lines).toContainEqual({ stream: "Step 2/2 : ENV X=1\n" });
    const aux = lines.find((l) => l.aux) as { aux: { ID: string } };
    expect(aux.aux.ID).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(lines).toContainEqual({ stream: `Successfully built ${aux.aux.ID.slice(7, 19)}\n` });
    expect(lines[lines.length - 1]).toEqual({ stream: "Successfully tagged api:1\n" });
  });
});

describe("shoal build errors", () => {
  const errCtx = async (name: string, text: string, extra: Record<string, string> = {}): Promise<string> => {
    const dir = join(tmp, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "Dockerfile"), text);
    for (const [f, data] of Object.entries(extra)) await writeFile(join(dir, f), data);
    return dir;
  };

  it("a syntax error is a 400 naming the line and the instruction", async () => {
    const tar = await makeTar([{ name: "Dockerfile", data: "FROM busybox\nRUN true\nFROMM busybox\n" }]);
    const r = await api(d.socket, "POST", "/build", tar);
    expect(r.status).toBe(400);
    expect(r.json<{ message: string }>().message).toBe(
      "dockerfile parse error on line 3: unknown instruction: FROMM",
    );
    const cli = await sh(["build", await errCtx("syntax", "FROM busybox\nCOPY onlyone\n")]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/line 2: COPY requires at least two arguments/);
    const missing = await api(d.socket, "POST", "/build?dockerfile=Nope", tar);
    expect(missing.status).toBe(400);
    expect(missing.json<{ message: string }>().message).toContain("Cannot locate specified Dockerfile: Nope");
  });

  it("a failing RUN reports its exit code and the end of its output", async () => {
    const dir = await errCtx(
      "failrun",
      "FROM busybox\nRUN for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line-$i; done; echo last-words >&2; exit 7\n",
    );
    const r = await sh(["build", dir]);
    expect(r.code).toBe(7);
    expect(r.stdout).toContain("line-1\n");
    expect(r.stderr).toContain("returned a non-zero code: 7");
    expect(r.stderr).toContain("line-12\nlast-words");
    expect(r.stderr).not.toContain("line-1\n");
  });

  it("a COPY from outside the context is refused", async () => {
    await writeFile(join(tmp, "outside"), "secret\n");
    const r = await sh(["build", await errCtx("escape", "FROM busybox\nCOPY ../outside /x\n")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/forbidden path outside the build context: \.\.\/outside/);
    const missing = await sh(["build", await errCtx("nofile", "FROM busybox\nCOPY nothere /x\n")]);
    expect(missing.stderr).toMatch(/file not found in build context/);
  });

  it("leaves no build container and no mount behind", async () => {
    expect(await buildContainers()).toEqual([]);
    const ps = await sh(["ps", "-a", "-q"]);
    expect(ps.stdout.trim()).toBe("");
    expect(await leakedMounts()).toEqual([]);
  });
});
