// Restart policies and --rm when shoald starts, as dockerd's restore applies them: a container
// that died while no daemon ran (its processes killed, as a crash or reboot would) comes back if
// its policy says so, a user's stop is honoured by unless-stopped, --rm containers that ended
// meanwhile are removed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";

let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await d?.destroy();
});

async function state(name: string): Promise<{ status: string; pid: number; restarts: number; exit: number }> {
  const r = await dk([
    "inspect",
    "--format",
    "{{.State.Status}} {{.State.Pid}} {{.RestartCount}} {{.State.ExitCode}}",
    name,
  ]);
  if (r.code !== 0) throw new Error(`inspect ${name}: ${r.stderr}`);
  const [status, pid, restarts, exit] = r.stdout.trim().split(" ");
  return { status, pid: Number(pid), restarts: Number(restarts), exit: Number(exit) };
}

async function parentOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

function kill(pid: number): void {
  // 0 or less would signal a whole process group.
  if (pid <= 0) throw new Error(`no process to kill (pid ${pid})`);
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

async function gone(pid: number): Promise<void> {
  if (pid <= 0) throw new Error(`no process to wait for (pid ${pid})`);
  for (let i = 0; i < 400; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(50);
  }
  throw new Error(`process ${pid} did not go away`);
}

/** Wait until `docker inspect` agrees; the daemon starts policy containers after it opened. */
async function becomes(name: string, ok: (s: Awaited<ReturnType<typeof state>>) => boolean) {
  let s = await state(name);
  for (let i = 0; i < 80 && !ok(s); i++) {
    await sleep(250);
    s = await state(name);
  }
  return s;
}

describe("restart policies when the daemon starts", () => {
  it("brings back containers whose processes died while the daemon was down, as their policy says", async () => {
    const run = async (name: string, ...flags: string[]) => {
      const r = await dk(["run", "-d", "--name", name, ...flags, "busybox", "sleep", "1000"]);
      expect(r.stderr).toBe("");
    };
    await run("always", "--restart", "always");
    await run("unless", "--restart", "unless-stopped");
    await run("failing", "--restart", "on-failure:3");
    await run("nopolicy");
    await run("lost", "--restart", "always");
    // Stopped by the user before the daemon went down.
    await run("stopped-unless", "--restart", "unless-stopped");
    await run("stopped-always", "--restart", "always");
    expect((await dk(["stop", "-t", "1", "stopped-unless", "stopped-always"])).code).toBe(0);
    // Ends on its own with 0: on-failure does not bring it back.
    const ok = await dk(["run", "-d", "--name", "succeeded", "--restart", "on-failure", "busybox", "true"]);
    expect(ok.code).toBe(0);
    expect((await becomes("succeeded", (s) => s.status === "exited")).exit).toBe(0);

    const before = Object.fromEntries(
      await Promise.all(
        ["always", "unless", "failing", "nopolicy", "lost"].map(async (n) => [n, await state(n)]),
      ),
    ) as Record<string, Awaited<ReturnType<typeof state>>>;

    await d.stop("SIGKILL");
    // The containers die while no daemon runs: conmon records the exit of a killed process...
    for (const n of ["always", "unless", "failing", "nopolicy"]) kill(before[n].pid);
    // ...or, as after a reboot, conmon goes too and nothing records it.
    const conmon = await parentOf(before.lost.pid);
    kill(conmon);
    await gone(conmon);
    kill(before.lost.pid);
    for (const n of Object.keys(before)) await gone(before[n].pid);
    await d.restart();

    for (const n of ["always", "unless", "failing", "lost"]) {
      const s = await becomes(n, (x) => x.status === "running" && x.pid !== before[n].pid);
      expect(s.status, n).toBe("running");
      expect(s.pid, n).not.toBe(before[n].pid);
    }
    expect((await state("failing")).restarts).toBe(1);
    // dockerd's restore: `always` comes back even after the user's stop; unless-stopped does not.
    expect((await becomes("stopped-always", (s) => s.status === "running")).status).toBe("running");
    const nopolicy = await state("nopolicy");
    expect([nopolicy.status, nopolicy.exit]).toEqual(["exited", 137]);
    await sleep(1000);
    expect((await state("stopped-unless")).status).toBe("exited");
    expect((await state("succeeded")).status).toBe("exited");

    // The restarted containers are fully managed again.
    expect((await dk(["stop", "-t", "1", "always"])).code).toBe(0);
    expect((await state("always")).status).toBe("exited");
    const names = [
      "always",
      "unless",
      "failing",
      "nopolicy",
      "lost",
      "stopped-unless",
      "stopped-always",
      "succeeded",
    ];
    expect((await dk(["rm", "-f", ...names])).code).toBe(0);
    expect((await dk(["ps", "-aq"])).stdout.trim()).toBe("");
  });

  it("removes --rm containers that ended while the daemon was down", async () => {
    const r = await dk(["run", "-d", "--rm", "--name", "ephemeral", "busybox", "sleep", "1000"]);
    expect(r.code).toBe(0);
    const quick = await dk(["run", "-d", "--rm", "--name", "quick", "busybox", "sh", "-c", "sleep 5"]);
    expect(quick.code).toBe(0);
    // It ends on its own a few seconds from now, while no daemon runs.
    const quickPid = (await state("quick")).pid;
    expect(quickPid).toBeGreaterThan(0);
    const kept = await dk(["run", "-d", "--rm", "--name", "kept", "busybox", "sleep", "1000"]);
    expect(kept.code).toBe(0);
    const pid = (await state("ephemeral")).pid;
    await d.stop("SIGKILL");
    kill(pid);
    await gone(pid);
    await gone(quickPid);
    await d.restart();
    let names = "";
    for (let i = 0; i < 40; i++) {
      names = (await dk(["ps", "-a", "--format", "{{.Names}}"])).stdout.trim();
      if (names === "kept") break;
      await sleep(250);
    }
    expect(names).toBe("kept");
    expect((await dk(["inspect", "ephemeral"])).stderr).toMatch(/No such (container|object): ephemeral/);
    expect((await dk(["rm", "-f", "kept"])).code).toBe(0);
  });
});
