// Tasks pull their image on the node that runs them, with the credentials the service was made
// with (`--with-registry-auth`); without them the task is rejected with the registry's words.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tasksOf as clusterTasks, until as waitUntil, type Task } from "../helpers/cluster.js";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

let d: TestDaemon;
let reg: TestRegistry;
let dockerConfig: string;
let shoalConfig: string;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input, { DOCKER_CONFIG: dockerConfig });
const sh = (args: string[], input?: Buffer) => shoal(d.socket, args, input, { SHOAL_CONFIG: shoalConfig });

const tasksOf = (service: string): Promise<Task[]> => clusterTasks(d.socket, service);
const until = <T>(what: string, fn: () => Promise<T | undefined>): Promise<T> => waitUntil(what, fn, 30_000);

beforeAll(async () => {
  d = await startDaemon();
  dockerConfig = await mkdtemp("/tmp/shoal-dockercfg-");
  shoalConfig = await mkdtemp("/tmp/shoal-cfg-");
  await loadBusybox(d.socket);
  reg = await startRegistry({ netns: d.netns, auth: { username: "bob", password: "pw" } });
  const image = `${reg.host}/private/busybox:1`;
  expect((await sh(["tag", "busybox", image])).code).toBe(0);
  expect((await sh(["login", "-u", "bob", "--password-stdin", reg.host], Buffer.from("pw"))).code).toBe(0);
  const push = await sh(["push", image]);
  expect(push.code, push.stderr).toBe(0);
  // Only the registry has it now.
  expect((await sh(["rmi", image])).code).toBe(0);
  expect((await dk(["swarm", "init"])).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await d?.destroy();
  for (const dir of [dockerConfig, shoalConfig]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe("task images from a registry", () => {
  it("without credentials the task is rejected with the registry's message", async () => {
    const r = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "anon",
      `${reg.host}/private/busybox:1`,
      "sleep",
      "300",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const t = await until("a rejected task", async () => {
      const tasks = await tasksOf("anon");
      return tasks.find((x) => x.Status.State === "rejected");
    });
    expect(t.Status.Err).toMatch(/unauthorized|authentication required|401/i);
    const ps = await dk(["service", "ps", "--no-trunc", "anon"]);
    expect(ps.stdout).toMatch(/Rejected/);
    expect((await dk(["service", "rm", "anon"])).code).toBe(0);
  });

  it("--with-registry-auth lets the node pull it, and the credentials are not shown", async () => {
    const login = await dk(["login", "-u", "bob", "--password-stdin", reg.host], Buffer.from("pw"));
    expect(login.code, login.stderr).toBe(0);
    const r = await dk([
      "service",
      "create",
      "-d",
      "--with-registry-auth",
      "--name",
      "priv",
      `${reg.host}/private/busybox:1`,
      "sleep",
      "300",
    ]);
    expect(r.code, r.stderr).toBe(0);
    await until("a running task", async () => {
      const tasks = await tasksOf("priv");
      return tasks.some((x) => x.Status.State === "running") ? true : undefined;
    });
    const inspect = (await api(d.socket, "GET", "/services/priv")).body.toString();
    expect(inspect).not.toContain("RegistryAuth");
    // A scale made from inspect's output keeps the stored credentials for later pulls.
    expect((await dk(["service", "scale", "-d", "priv=2"])).code).toBe(0);
    expect((await sh(["rmi", "-f", `${reg.host}/private/busybox:1`])).code).toBe(0);
    await until("two running tasks", async () => {
      const tasks = await tasksOf("priv");
      return tasks.filter((x) => x.Status.State === "running").length === 2 ? true : undefined;
    });
  });
});
