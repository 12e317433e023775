// The real docker CLI (client only) logs in, pushes and pulls through shoald, against a real
// registry with basic auth running in the daemon's network namespace.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

let d: TestDaemon;
let reg: TestRegistry;
let dockerConfig: string;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input, { DOCKER_CONFIG: dockerConfig });

beforeAll(async () => {
  d = await startDaemon();
  reg = await startRegistry({ netns: d.netns, auth: { username: "bob", password: "hunter2" } });
  dockerConfig = await mkdtemp("/tmp/shoal-docker-config-");
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await reg?.stop();
  await d?.destroy();
  if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
});

describe("docker CLI with a registry, through shoal", () => {
  it("docker login, push, pull and run", async () => {
    const wrong = await dk(["login", "-u", "bob", "--password-stdin", reg.host], Buffer.from("nope\n"));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("unauthorized: authentication required");

    const login = await dk(["login", "-u", "bob", "--password-stdin", reg.host], Buffer.from("hunter2\n"));
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain("Login Succeeded");
    const config = JSON.parse(await readFile(join(dockerConfig, "config.json"), "utf8")) as {
      auths: Record<string, { auth?: string }>;
    };
    expect(Buffer.from(config.auths[reg.host].auth ?? "", "base64").toString()).toBe("bob:hunter2");

    const name = `${reg.host}/docker/busybox:1`;
    expect((await dk(["tag", "busybox", name])).code).toBe(0);
    const push = await dk(["push", name]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toContain(`The push refers to repository [${reg.host}/docker/busybox]`);
    const digest = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(push.stdout)?.[1];
    expect(digest).toBeDefined();

    expect((await dk(["rmi", name, "busybox"])).code).toBe(0);
    const pull = await dk(["pull", name]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain("Pull complete");
    expect(pull.stdout).toContain(`Digest: ${digest}`);
    expect(pull.stdout).toContain(`Status: Downloaded newer image for ${name}`);
    const digests = await dk(["image", "inspect", "--format", "{{json .RepoDigests}}", name]);
    expect(JSON.parse(digests.stdout)).toEqual([`${reg.host}/docker/busybox@${digest}`]);
    const run = await dk(["run", "--rm", name, "echo", "via-docker"]);
    expect(run.stdout).toBe("via-docker\n");

    // What docker pushed, shoal pulls by digest with the same credentials file format.
    const byDigest = await shoal(d.socket, ["pull", `${reg.host}/docker/busybox@${digest}`], undefined, {
      SHOAL_CONFIG: dockerConfig,
    });
    expect(byDigest.code, byDigest.stderr).toBe(0);

    const logout = await dk(["logout", reg.host]);
    expect(logout.code).toBe(0);
    const denied = await dk(["pull", `${reg.host}/docker/busybox:2`]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain("unauthorized: authentication required");
  });
});
