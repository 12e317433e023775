// The control API's membership and update side on a one-node cluster, through the real docker
// CLI and shoal's: join tokens (show, rotate), demote and rm refused on the only manager with
// the reason, swarm update, service update replacing tasks (env, image, force, rollback), and
// shoal's convergence progress for update and scale.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runningTasks, tasksOf, until } from "../helpers/cluster.js";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";

let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);
const sh = (args: string[]) => shoal(d.socket, args);

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
  const init = await dk(["swarm", "init"]);
  if (init.code !== 0) throw new Error(`swarm init failed: ${init.stderr}`);
});
afterAll(async () => {
  await d?.destroy();
});

/** The running tasks' ids, once `n` of them run and none is of `old`. */
async function replaced(service: string, n: number, old: string[]): Promise<string[]> {
  return until(
    `${n} new running tasks of ${service}`,
    async () => {
      const r = await runningTasks(d.socket, service);
      return r.length === n && r.every((t) => !old.includes(t.ID)) ? r.map((t) => t.ID) : undefined;
    },
    40_000,
  );
}

async function containerEnv(service: string): Promise<string[][]> {
  const envs: string[][] = [];
  for (const t of await runningTasks(d.socket, service)) {
    const id = t.Status.ContainerStatus?.ContainerID ?? "";
    envs.push(
      (await api(d.socket, "GET", `/containers/${id}/json`)).json<{ Config: { Env: string[] } }>().Config.Env,
    );
  }
  return envs;
}

describe("join tokens", () => {
  it("docker swarm join-token --rotate worker prints a new token; the manager's stays", async () => {
    const before = (await dk(["swarm", "join-token", "-q", "worker"])).stdout.trim();
    const manager = (await dk(["swarm", "join-token", "-q", "manager"])).stdout.trim();
    expect(before).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    const rotated = await dk(["swarm", "join-token", "--rotate", "worker"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain("Successfully rotated worker join token.");
    const after = (await dk(["swarm", "join-token", "-q", "worker"])).stdout.trim();
    expect(after).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    expect(after).not.toBe(before);
    expect(rotated.stdout).toContain(`docker swarm join --token ${after} `);
    // Same CA, new secret.
    expect(after.split("-")[2]).toBe(before.split("-")[2]);
    expect((await dk(["swarm", "join-token", "-q", "manager"])).stdout.trim()).toBe(manager);
  });

  it("shoal cluster join-token prints the command to run; --rotate -q prints only the new token", async () => {
    const token = (await dk(["swarm", "join-token", "-q", "worker"])).stdout.trim();
    const r = await sh(["cluster", "join-token", "worker"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^To add a worker to this cluster, run the following command:\\n\\n    shoal cluster join --token ${token} \\S+:\\d+\\n`,
      ),
    );
    const m = await sh(["cluster", "join-token", "manager"]);
    expect(m.stdout).toContain("To add a manager to this cluster");
    const q = await sh(["cluster", "join-token", "-q", "--rotate", "manager"]);
    expect(q.code, q.stderr).toBe(0);
    const newManager = q.stdout.trim();
    expect(newManager).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    expect((await dk(["swarm", "join-token", "-q", "manager"])).stdout.trim()).toBe(newManager);
    const bad = await sh(["cluster", "join-token", "boss"]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain("use worker or manager");
  });

  it("docker swarm update keeps the history limit; what shoal does not do is refused", async () => {
    const r = await dk(["swarm", "update", "--task-history-limit", "7"]);
    expect(r.code, r.stderr).toBe(0);
    const limit = await dk([
      "info",
      "--format",
      "{{.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit}}",
    ]);
    expect(limit.stdout.trim()).toBe("7");
    const lock = await dk(["swarm", "update", "--autolock=true"]);
    expect(lock.code).not.toBe(0);
    expect(lock.stderr).toContain("--autolock");
    const stale = await api(d.socket, "POST", "/swarm/update?version=1", { Name: "default" });
    expect(stale.status).toBe(409);
  });
});

describe("nodes", () => {
  it("the only manager cannot be demoted or removed, and the reason is given", async () => {
    const demote = await dk(["node", "demote", "self"]);
    expect(demote.code).not.toBe(0);
    expect(demote.stderr).toContain("without a manager");
    const rm = await dk(["node", "rm", "self"]);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toMatch(/is a manager and cannot be removed: demote it first with `node demote /);
    const forced = await sh(["node", "rm", "--force", "self"]);
    expect(forced.code).not.toBe(0);
    expect(forced.stderr).toContain("demote it first");
    const shDemote = await sh(["node", "demote", "self"]);
    expect(shDemote.code).not.toBe(0);
    expect(shDemote.stderr).toContain("without a manager");
    const promote = await sh(["node", "promote", "self"]);
    expect(promote.code, promote.stderr).toBe(0);
    expect(promote.stdout).toContain("is already a manager");
    expect((await api(d.socket, "DELETE", "/nodes/nosuchnode")).status).toBe(404);
    const role = await dk(["node", "inspect", "self", "--format", "{{.Spec.Role}}"]);
    expect(role.stdout.trim()).toBe("manager");
  });
});

describe("service update", () => {
  it("docker service update --env-add, --image, --force and rollback replace the tasks", async () => {
    const c = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "envy",
      "--replicas",
      "2",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(c.code, c.stderr).toBe(0);
    const first = await replaced("envy", 2, []);

    // Without -d the docker CLI follows the update (it asks for the _up-to-date tasks).
    const env = await dk(["service", "update", "--env-add", "FOO=bar", "envy"]);
    expect(env.code, env.stderr).toBe(0);
    expect(env.stdout).toContain("overall progress: 2 out of 2 tasks");
    expect(env.stdout).toMatch(/verify: Service (envy )?converged/);
    const second = await replaced("envy", 2, first);
    for (const e of await containerEnv("envy")) expect(e).toContain("FOO=bar");
    const old = (await tasksOf(d.socket, "envy")).filter((t) => first.includes(t.ID));
    expect(old.every((t) => t.DesiredState === "shutdown")).toBe(true);

    // The docker CLI wrote "busybox" as busybox:latest: another tag is another image.
    expect((await dk(["tag", "busybox", "busybox:v2"])).code).toBe(0);
    const image = await dk(["service", "update", "-d", "--image", "busybox:v2", "envy"]);
    expect(image.code, image.stderr).toBe(0);
    const third = await replaced("envy", 2, second);
    const spec = await dk([
      "service",
      "inspect",
      "envy",
      "--format",
      "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.PreviousSpec.TaskTemplate.ContainerSpec.Image}}",
    ]);
    expect(spec.stdout.trim()).toBe("busybox:v2 busybox:latest");

    // Rollback goes back to the spec before the last update.
    const back = await dk(["service", "rollback", "-d", "envy"]);
    expect(back.code, back.stderr).toBe(0);
    const fourth = await replaced("envy", 2, third);
    const rolled = await dk([
      "service",
      "inspect",
      "envy",
      "--format",
      "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    ]);
    expect(rolled.stdout.trim()).toBe("busybox:latest");
    for (const e of await containerEnv("envy")) expect(e).toContain("FOO=bar");

    // --force replaces the tasks though nothing else changed.
    const force = await dk(["service", "update", "-d", "--force", "envy"]);
    expect(force.code, force.stderr).toBe(0);
    await replaced("envy", 2, fourth);

    // A replicas change alone replaces nothing.
    const before = (await runningTasks(d.socket, "envy")).map((t) => t.ID);
    expect((await dk(["service", "update", "-d", "--replicas", "3", "envy"])).code).toBe(0);
    await until("3 running", async () =>
      (await runningTasks(d.socket, "envy")).length === 3 ? true : undefined,
    );
    const after = (await runningTasks(d.socket, "envy")).map((t) => t.ID);
    for (const id of before) expect(after).toContain(id);
    expect((await dk(["service", "rm", "envy"])).code).toBe(0);
  });

  it("shoal service update and scale show progress up to converged (plain lines off a terminal)", async () => {
    const c = await sh([
      "service",
      "create",
      "--name",
      "prog",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain("overall progress: 1 out of 1 tasks");
    expect(c.stdout).toContain("verify: Service converged");
    const up = await sh(["service", "update", "--replicas", "3", "--env-add", "X=1", "prog"]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^prog$/m);
    expect(up.stdout).toContain("overall progress: 3 out of 3 tasks");
    expect(up.stdout).toMatch(/^1\/3: running$/m);
    expect(up.stdout).toMatch(/^3\/3: running$/m);
    expect(up.stdout).toContain("verify: Service converged");
    expect(up.stdout).not.toContain("\x1b[");
    for (const e of await containerEnv("prog")) expect(e).toContain("X=1");
    const down = await sh(["service", "scale", "prog=1"]);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain("overall progress: 1 out of 1 tasks");
    expect(down.stdout).toContain("verify: Service converged");
    const bad = await sh(["service", "update", "--replicas", "x", "prog"]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain("--replicas");
    expect((await sh(["service", "rm", "prog"])).code).toBe(0);
  });

  it("shoal service create stops waiting when tasks keep failing, showing the error", async () => {
    const r = await sh([
      "service",
      "create",
      "--name",
      "crash",
      "--restart-delay",
      "100ms",
      "busybox",
      "sh",
      "-c",
      "exit 3",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /service crash is not converging: \d+ of its tasks failed, the last \(crash\.1\) with/,
    );
    expect(r.stderr).toContain("task: non-zero exit (3)");
    expect(r.stderr).toContain("shoal service ps --no-trunc crash");
    expect((await sh(["service", "rm", "crash"])).code).toBe(0);
  });
});
