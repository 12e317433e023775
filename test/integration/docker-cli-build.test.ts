// The real docker CLI building through shoald: the classic builder (DOCKER_BUILDKIT=0), and plain
// `docker build`, which must either fall back to the classic builder or fail clearly, not hang.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";

let d: TestDaemon;
let tmp: string;
let ctx: string;
const legacy = { DOCKER_BUILDKIT: "0" };

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
  tmp = await mkdtemp("/tmp/shoal-docker-build-");
  ctx = join(tmp, "ctx");
  await mkdir(join(ctx, "src"), { recursive: true });
  await writeFile(join(ctx, "src/message.txt"), "built by shoal\n");
  await writeFile(join(ctx, "ignored.tmp"), "x\n");
  await writeFile(join(ctx, ".dockerignore"), "*.tmp\n");
  await writeFile(
    join(ctx, "Dockerfile"),
    [
      "FROM busybox",
      "ARG WHO=docker",
      "COPY src/ /opt/",
      'RUN echo "hello $WHO" > /opt/hello.txt',
      "WORKDIR /opt",
      'CMD ["sh", "-c", "cat hello.txt message.txt; ls /opt"]',
      "",
    ].join("\n"),
  );
});

afterAll(async () => {
  await d?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("docker build against shoald", () => {
  it("DOCKER_BUILDKIT=0 docker build works and the image runs", async () => {
    const b = await docker(
      d.socket,
      ["build", "-t", "x", "--build-arg", "WHO=world", ctx],
      undefined,
      legacy,
    );
    expect(b.code).toBe(0);
    expect(b.stdout).toContain("Step 1/6 : FROM busybox");
    expect(b.stdout).toMatch(/Successfully built [0-9a-f]{12}\n/);
    expect(b.stdout).toContain("Successfully tagged x:latest");
    const r = await docker(d.socket, ["run", "--rm", "x"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello world\nbuilt by shoal\nhello.txt\nmessage.txt\n");
    // A second build is served from the cache.
    const again = await docker(d.socket, ["build", "-q", "--build-arg", "WHO=world", ctx], undefined, legacy);
    expect(again.code).toBe(0);
    const inspect = await docker(d.socket, ["image", "inspect", "--format", "{{.Id}}", "x"]);
    expect(again.stdout.trim()).toBe(inspect.stdout.trim());
  });

  it("passes a failing RUN's exit code and message through", async () => {
    const dir = join(tmp, "fail");
    await mkdir(dir);
    await writeFile(join(dir, "Dockerfile"), "FROM busybox\nRUN echo about to fail; exit 5\n");
    const b = await docker(d.socket, ["build", dir], undefined, legacy);
    expect(b.code).toBe(5);
    expect(b.stdout).toContain("about to fail");
    expect(b.stderr).toContain("returned a non-zero code: 5");
    const ps = await docker(d.socket, ["ps", "-aq"]);
    expect(ps.stdout.trim()).toBe("");
  });

  it("plain docker build uses the classic builder or says why it cannot", async () => {
    const b = await docker(d.socket, ["build", "-t", "plain", ctx], undefined, { DOCKER_BUILDKIT: "" });
    if (b.code === 0) {
      expect(b.stdout).toContain("Successfully tagged plain:latest");
    } else {
      // With the buildx plugin installed the CLI wants BuildKit, which shoal does not serve.
      expect(b.stderr).toMatch(/BuildKit|buildx/i);
    }
  }, 60_000);
});
