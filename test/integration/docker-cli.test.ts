// The real docker CLI (client only on this machine) driving shoald through its socket.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { buildBusyboxArchive, loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";

let d: TestDaemon;
let tmp: string;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input);

beforeAll(async () => {
  d = await startDaemon({
    args: ["--insecure-registry", "registry.lab.test:5000", "--insecure-registry", "10.9.0.0/16"],
  });
  tmp = await mkdtemp("/tmp/shoal-docker-");
});
afterAll(async () => {
  await d?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("docker CLI against shoald", () => {
  it("version and info", async () => {
    const v = await dk(["version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}"]);
    expect(v.stderr).toBe("");
    expect(v.stdout.trim()).toBe("1.44 linux");
    const info = await dk(["info", "--format", "{{.Driver}} {{.CgroupDriver}} {{.OSType}}"]);
    expect(info.code).toBe(0);
    expect(info.stdout.trim()).toBe("overlay2 cgroupfs linux");
    // docker info lists the insecure registries the daemon was started with.
    const registries = await dk(["info"]);
    const listed = registries.stdout.slice(registries.stdout.indexOf("Insecure Registries:"));
    for (const r of ["registry.lab.test:5000", "10.9.0.0/16", "127.0.0.0/8"]) expect(listed).toContain(r);
  });

  it("answers a too-new API version with Docker's 400", async () => {
    const r = await api(d.socket, "GET", "/v1.50/version");
    expect(r.status).toBe(400);
    expect(r.json<{ message: string }>().message).toBe(
      "client version 1.50 is too new. Maximum supported API version is 1.44",
    );
    expect((await api(d.socket, "GET", "/v1.41/version")).status).toBe(200);
  });

  it("load, images, tag, inspect, save, rmi", async () => {
    const load = await dk(["load"], await buildBusyboxArchive());
    expect(load.code).toBe(0);
    expect(load.stdout).toContain("Loaded image: busybox:latest");
    const tag = await dk(["tag", "busybox", "localhost:5000/team/box:v1"]);
    expect(tag.code).toBe(0);
    const images = await dk(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    expect(images.stdout.split("\n")).toEqual(
      expect.arrayContaining(["busybox:latest", "localhost:5000/team/box:v1"]),
    );
    const inspect = await dk([
      "image",
      "inspect",
      "--format",
      "{{.Os}} {{json .Config.Cmd}}",
      "localhost:5000/team/box:v1",
    ]);
    expect(inspect.stdout.trim()).toBe('linux ["sh"]');
    const out = join(tmp, "saved.tar");
    const save = await dk(["save", "-o", out, "localhost:5000/team/box:v1"]);
    expect(save.code).toBe(0);
    expect((await stat(out)).size).toBeGreaterThan(500_000);
    const rmi = await dk(["rmi", "localhost:5000/team/box:v1"]);
    expect(rmi.stdout).toContain("Untagged: localhost:5000/team/box:v1");
    const reload = await dk(["load", "-i", out]);
    expect(reload.stdout).toContain("Loaded image: localhost:5000/team/box:v1");
    const missing = await dk(["image", "inspect", "nosuch:tag"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/No such image: nosuch:tag/);
  });

  it("run --rm prints output and passes the exit code through", async () => {
    await loadBusybox(d.socket);
    const r = await dk([
      "run",
      "--rm",
      "busybox",
      "sh",
      "-c",
      "echo from-docker; echo to-stderr >&2; exit 4",
    ]);
    expect(r.stdout).toBe("from-docker\n");
    expect(r.stderr).toBe("to-stderr\n");
    expect(r.code).toBe(4);
  });

  it("run --rm of a command that cannot start fails at once and leaves no container", async () => {
    await loadBusybox(d.socket);
    const r = await dk(["run", "--rm", "--name", "cannot-start", "busybox", "/nonexistent"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("/nonexistent");
    const ps = await dk(["ps", "-a", "--filter", "name=cannot-start", "--format", "{{.Names}}"]);
    expect(ps.stdout.trim()).toBe("");
  });

  it("run -d, ps -a, logs, inspect, stop, rm", async () => {
    const run = await dk([
      "run",
      "-d",
      "--name",
      "dk1",
      "busybox",
      "sh",
      "-c",
      "echo hello-docker; sleep 1000",
    ]);
    expect(run.code).toBe(0);
    const id = run.stdout.trim();
    const ps = await dk(["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.State}}"]);
    expect(ps.stdout).toContain(`${id.slice(0, 12)} dk1 busybox running`);
    let logs = await dk(["logs", "dk1"]);
    for (let i = 0; i < 50 && !logs.stdout.includes("hello"); i++) logs = await dk(["logs", "dk1"]);
    expect(logs.stdout).toBe("hello-docker\n");
    const inspect = await dk([
      "inspect",
      "--format",
      "{{.Name}} {{.State.Running}} {{.Config.Image}}",
      "dk1",
    ]);
    expect(inspect.stdout.trim()).toBe("/dk1 true busybox");
    const stop = await dk(["stop", "-t", "1", "dk1"]);
    expect(stop.stdout.trim()).toBe("dk1");
    const exited = await dk(["inspect", "--format", "{{.State.Status}}", "dk1"]);
    expect(exited.stdout.trim()).toBe("exited");
    const rm = await dk(["rm", "dk1"]);
    expect(rm.code).toBe(0);
    expect((await dk(["ps", "-aq"])).stdout.trim()).toBe("");
  });

  it("run -i with an empty stdin ends at once (interactive use: docker-cli-interactive.test.ts)", async () => {
    const r = await dk(["run", "-i", "--rm", "busybox", "cat"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("");
    expect(r.code).toBe(0);
  });
});
