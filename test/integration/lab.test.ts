// The lab (deploy/lab): hosts in their own network namespaces on one switch, each with its own
// shoald; cutting, killing and taking it down leave the machine as it was.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { Lab } from "../../deploy/lab/lab.js";
import { api, repoRoot } from "../helpers/daemon.js";
import { pidAlive } from "../../agent/engine/container/run.js";

const run = promisify(execFile);
let lab: Lab;

async function pings(from: string, to: string): Promise<boolean> {
  return lab
    .exec(from, ["busybox", "ping", "-c", "1", "-W", "1", lab.host(to).address], 5000)
    .then(() => true)
    .catch(() => false);
}

beforeAll(async () => {
  const name = `t${randomBytes(3).toString("hex")}`;
  lab = await Lab.up({
    name,
    managers: 1,
    workers: 2,
    root: await mkdtemp("/tmp/shoal-lab-"),
    octet: 100 + Math.floor(Math.random() * 100),
    shoald: join(repoRoot, "dist/daemon/main.js"),
  });
}, 120_000);

afterAll(async () => {
  await lab?.down();
});

describe("lab", () => {
  it("every host runs its own daemon and reaches the others over the switch", async () => {
    for (const h of lab.state.hosts) {
      const r = await api(h.socket, "GET", "/_ping");
      expect(r.status).toBe(200);
    }
    expect(await pings("m1", "w1")).toBe(true);
    expect(await pings("w2", "m1")).toBe(true);
  });

  it("a cut host neither reaches nor is reached; healing joins it again", async () => {
    await lab.cut("w1");
    expect(await pings("m1", "w1")).toBe(false);
    expect(await pings("w1", "w2")).toBe(false);
    // Its daemon still answers locally.
    expect((await api(lab.host("w1").socket, "GET", "/_ping")).status).toBe(200);
    await lab.heal("w1");
    expect(await pings("m1", "w1")).toBe(true);
  });

  it("a killed host's daemon is gone and starts again on the same state", async () => {
    const pid = lab.host("w2").pid as number;
    await lab.kill("w2");
    await expect(api(lab.host("w2").socket, "GET", "/_ping")).rejects.toThrow();
    // Gone or a zombie its parent (this test process) has yet to reap; either way not running.
    expect(await pidAlive(pid)).toBe(false);
    await lab.start("w2", join(repoRoot, "dist/daemon/main.js"));
    expect((await api(lab.host("w2").socket, "GET", "/_ping")).status).toBe(200);
  });

  it("has no route out of the lab", async () => {
    const routes = await lab.exec("m1", ["ip", "route"]);
    expect(routes.stdout).not.toMatch(/^default/m);
  });

  it("down removes every namespace, process and file", async () => {
    const { root, hosts, switchNetns } = lab.state;
    await lab.down();
    const { stdout } = await run("ip", ["netns", "list"]);
    for (const ns of [switchNetns, ...hosts.map((h) => h.netns)]) expect(stdout).not.toContain(ns);
    for (const h of hosts) if (h.pid) expect(() => process.kill(h.pid as number, 0)).toThrow();
    await expect(readFile(join(root, "lab.json"))).rejects.toThrow();
    expect(await readFile("/proc/mounts", "utf8")).not.toContain(root);
  });
});
