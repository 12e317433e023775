// Health checks through the real docker CLI: --health-* flags, a built image's HEALTHCHECK,
// --no-healthcheck, `.State.Health` in inspect and "(healthy)" in ps.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";

let d: TestDaemon;
let tmp: string;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input);

interface Health {
  Status: string;
  FailingStreak: number;
  Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }>;
}

async function health(name: string): Promise<Health | null> {
  const r = await dk(["inspect", "--format", "{{json .State.Health}}", name]);
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as Health | null;
}

/** Poll inspect until the health status is `status` (each check runs every second here). */
async function healthBecomes(name: string, status: string, tries = 60): Promise<Health> {
  let last: Health | null = null;
  for (let i = 0; i < tries; i++) {
    last = await health(name);
    if (last?.Status === status) return last;
    await sleep(500);
  }
  throw new Error(`${name} never became ${status}: ${JSON.stringify(last)}`);
}

async function mergedDir(name: string): Promise<string> {
  return (await dk(["inspect", "--format", "{{.GraphDriver.Data.MergedDir}}", name])).stdout.trim();
}

/** The STATUS column of `docker ps` for one container, "" when ps does not list it. */
async function psStatus(name: string): Promise<string> {
  const lines = (await dk(["ps", "--format", "{{.Names}}\t{{.Status}}"])).stdout.split("\n");
  return lines.find((l) => l.startsWith(`${name}\t`))?.slice(name.length + 1) ?? "";
}

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
  tmp = await mkdtemp("/tmp/shoal-health-");
});
afterAll(async () => {
  await d?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("docker health checks", () => {
  it("a check turns a container healthy when its file appears and unhealthy when it goes", async () => {
    const since = String(Math.floor(Date.now() / 1000) - 1);
    const run = await dk([
      "run",
      "-d",
      "--name",
      "hc",
      "--health-cmd",
      "test -f /tmp/ok && echo ok-$(hostname)",
      "--health-interval",
      "1s",
      "--health-start-interval",
      "1s",
      "--health-start-period",
      "10m",
      "--health-retries",
      "2",
      "busybox",
      "sleep",
      "1000",
    ]);
    expect(run.stderr).toBe("");
    try {
      const cfg = await dk(["inspect", "--format", "{{json .Config.Healthcheck}}", "hc"]);
      expect(JSON.parse(cfg.stdout)).toEqual({
        Test: ["CMD-SHELL", "test -f /tmp/ok && echo ok-$(hostname)"],
        Interval: 1e9,
        StartPeriod: 600e9,
        StartInterval: 1e9,
        Retries: 2,
      });
      // Inside the start period failures do not count: still starting, streak 0.
      expect(await psStatus("hc")).toMatch(/^Up .* \(health: starting\)$/);
      let h = await health("hc");
      for (let i = 0; i < 40 && (h?.Log.length ?? 0) < 3; i++) {
        await sleep(500);
        h = await health("hc");
      }
      expect(h?.Status).toBe("starting");
      expect(h?.FailingStreak).toBe(0);
      expect(h?.Log.length).toBeGreaterThanOrEqual(3);
      expect(h?.Log.every((e) => e.ExitCode === 1)).toBe(true);

      // The check runs inside the container: its hostname, its file system.
      const root = await mergedDir("hc");
      await writeFile(join(root, "tmp/ok"), "");
      h = await healthBecomes("hc", "healthy");
      const hostname = (await dk(["inspect", "--format", "{{.Config.Hostname}}", "hc"])).stdout.trim();
      const last = h.Log[h.Log.length - 1];
      expect(last.ExitCode).toBe(0);
      expect(last.Output).toBe(`ok-${hostname}\n`);
      expect(Date.parse(last.End)).toBeGreaterThanOrEqual(Date.parse(last.Start));
      expect(h.FailingStreak).toBe(0);
      expect(await psStatus("hc")).toMatch(/^Up .* \(healthy\)$/);
      const filtered = await dk(["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]);
      expect(filtered.stdout.trim()).toBe("hc");

      // Out of the start period's grace once healthy: two failures in a row make it unhealthy.
      await rm(join(root, "tmp/ok"));
      h = await healthBecomes("hc", "unhealthy");
      expect(h.FailingStreak).toBeGreaterThanOrEqual(2);
      expect(h.Log.length).toBeLessThanOrEqual(5);
      expect(h.Log[h.Log.length - 1].ExitCode).toBe(1);
      expect(await psStatus("hc")).toMatch(/^Up .* \(unhealthy\)$/);
      // docker events: one health_status event per change, with dockerd's wording.
      const events = await dk([
        "events",
        "--since",
        since,
        "--until",
        String(Math.ceil(Date.now() / 1000) + 1),
        "--filter",
        "event=health_status",
        "--filter",
        "container=hc",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
      ]);
      expect(events.stderr).toBe("");
      expect(events.stdout.trim().split("\n")).toEqual([
        "container health_status: healthy hc",
        "container health_status: unhealthy hc",
      ]);
      // Five results at most, oldest first.
      for (let i = 0; i < 20 && h.Log.length < 5; i++) {
        await sleep(500);
        h = (await health("hc")) as Health;
      }
      expect(h.Log.length).toBe(5);
      const starts = h.Log.map((e) => Date.parse(e.Start));
      expect([...starts].sort((a, b) => a - b)).toEqual(starts);

      // A stopped container keeps its results; its monitor stops (dockerd shows "unhealthy").
      expect((await dk(["stop", "-t", "1", "hc"])).code).toBe(0);
      const stopped = await health("hc");
      expect(stopped?.Status).toBe("unhealthy");
      const count = stopped?.Log.length;
      await sleep(2500);
      expect((await health("hc"))?.Log.length).toBe(count);
      expect(await psStatus("hc")).toBe("");
    } finally {
      await dk(["rm", "-f", "hc"]);
    }
  });

  it("a check that outlives --health-timeout is killed and counts as a failure", async () => {
    const run = await dk([
      "run",
      "-d",
      "--name",
      "slow",
      "--health-cmd",
      "echo started; sleep 30",
      "--health-interval",
      "1s",
      "--health-timeout",
      "1s",
      "--health-retries",
      "1",
      "busybox",
      "sleep",
      "1000",
    ]);
    expect(run.stderr).toBe("");
    try {
      const h = await healthBecomes("slow", "unhealthy");
      expect(h.Log[0].ExitCode).toBe(-1);
      expect(h.Log[0].Output).toBe("Health check exceeded timeout (1s): started\n");
      // The killed check leaves no process behind in the container.
      const pid = (await dk(["inspect", "--format", "{{.State.Pid}}", "slow"])).stdout.trim();
      const procs = await runTop(Number(pid));
      expect(procs.filter((c) => c.startsWith("/bin/sh"))).toEqual([]);
    } finally {
      await dk(["rm", "-f", "slow"]);
    }
  });

  it("a built image's HEALTHCHECK applies, --health-* flags override parts of it, and --no-healthcheck disables it", async () => {
    const ctx = join(tmp, "ctx");
    await rm(ctx, { recursive: true, force: true });
    await import("node:fs/promises").then((fs) => fs.mkdir(ctx, { recursive: true }));
    await writeFile(
      join(ctx, "Dockerfile"),
      'FROM busybox\nHEALTHCHECK --interval=1s --start-interval=1s --retries=4 CMD ["sh", "-c", "echo from-image"]\n',
    );
    const build = await dk(["build", "-q", "-t", "checked", ctx]);
    expect(build.code, build.stderr).toBe(0);
    expect(
      JSON.parse(
        (await dk(["image", "inspect", "--format", "{{json .Config.Healthcheck}}", "checked"])).stdout,
      ),
    ).toEqual({
      Test: ["CMD", "sh", "-c", "echo from-image"],
      Interval: 1e9,
      StartInterval: 1e9,
      Retries: 4,
    });
    try {
      expect((await dk(["run", "-d", "--name", "img", "checked", "sleep", "1000"])).code).toBe(0);
      const h = await healthBecomes("img", "healthy");
      expect(h.Log[h.Log.length - 1].Output).toBe("from-image\n");

      // A flag replaces only its own field (dockerd's merge).
      const part = await dk([
        "run",
        "-d",
        "--name",
        "part",
        "--health-retries",
        "7",
        "checked",
        "sleep",
        "1000",
      ]);
      expect(part.stderr).toBe("");
      const cfg = await dk(["inspect", "--format", "{{json .Config.Healthcheck}}", "part"]);
      expect(JSON.parse(cfg.stdout)).toEqual({
        Test: ["CMD", "sh", "-c", "echo from-image"],
        Interval: 1e9,
        StartInterval: 1e9,
        Retries: 7,
      });

      expect(
        (await dk(["run", "-d", "--name", "none", "--no-healthcheck", "checked", "sleep", "1000"])).code,
      ).toBe(0);
      // dockerd's merge keeps the image's timings beside NONE; the test is what counts.
      expect(
        (await dk(["inspect", "--format", "{{json .Config.Healthcheck.Test}}", "none"])).stdout.trim(),
      ).toBe('["NONE"]');
      await sleep(2500);
      expect(await health("none")).toBeNull();
      expect(await psStatus("none")).toMatch(/^Up \d+ seconds$/);
    } finally {
      await dk(["rm", "-f", "img", "part", "none"]);
      await dk(["rmi", "checked"]);
    }
  });

  it("a container without a check has no Health, and bad health settings get a 400", async () => {
    expect((await dk(["run", "-d", "--name", "plain", "busybox", "sleep", "1000"])).code).toBe(0);
    try {
      expect(await health("plain")).toBeNull();
      expect(await psStatus("plain")).toMatch(/^Up (Less than a second|\d+ seconds?)$/);
    } finally {
      await dk(["rm", "-f", "plain"]);
    }
    const bad = await dk([
      "run",
      "-d",
      "--health-cmd",
      "true",
      "--health-interval",
      "100us",
      "busybox",
      "true",
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Interval in Healthcheck cannot be less than 1ms/);
    expect((await dk(["ps", "-aq"])).stdout.trim()).toBe("");
  });
});

describe("shoal CLI health flags", () => {
  const sh = (args: string[]) => shoal(d.socket, args);

  it("shoal run --health-* sets the check and shoal ps shows (healthy)", async () => {
    const r = await sh([
      "run",
      "-d",
      "--name",
      "shoal-hc",
      "--health-cmd",
      "true",
      "--health-interval",
      "1s",
      "--health-retries",
      "2",
      "busybox",
      "sleep",
      "1000",
    ]);
    expect(r.stderr).toBe("");
    try {
      const cfg = await dk(["inspect", "--format", "{{json .Config.Healthcheck}}", "shoal-hc"]);
      expect(JSON.parse(cfg.stdout)).toEqual({ Test: ["CMD-SHELL", "true"], Interval: 1e9, Retries: 2 });
      await healthBecomes("shoal-hc", "healthy");
      const ps = await sh(["ps", "--format", "{{.Names}} {{.Status}}"]);
      expect(ps.stdout).toMatch(/^shoal-hc Up .* \(healthy\)$/m);
    } finally {
      await dk(["rm", "-f", "shoal-hc"]);
    }
  });

  it("shoal refuses --no-healthcheck with --health-* and negative durations, as docker does", async () => {
    const both = await sh(["create", "--no-healthcheck", "--health-cmd", "true", "busybox"]);
    expect(both.code).toBe(125);
    expect(both.stderr).toMatch(/--no-healthcheck conflicts with --health-\* options/);
    const negative = await sh(["create", "--health-interval", "-1s", "busybox"]);
    expect(negative.code).toBe(125);
    expect(negative.stderr).toMatch(/--health-interval cannot be negative/);
    const none = await sh(["create", "--name", "shoal-none", "--no-healthcheck", "busybox"]);
    expect(none.code).toBe(0);
    try {
      const test = await dk(["inspect", "--format", "{{json .Config.Healthcheck.Test}}", "shoal-none"]);
      expect(test.stdout.trim()).toBe('["NONE"]');
    } finally {
      await dk(["rm", "-f", "shoal-none"]);
    }
    expect((await dk(["ps", "-aq"])).stdout.trim()).toBe("");
  });
});

/** Command lines of the processes in a container's pid namespace, from the host's /proc. */
async function runTop(pid: number): Promise<string[]> {
  const { readdir, readFile, readlink } = await import("node:fs/promises");
  const ns = await readlink(`/proc/${pid}/ns/pid`);
  const out: string[] = [];
  for (const p of await readdir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if ((await readlink(`/proc/${p}/ns/pid`)) !== ns) continue;
      out.push((await readFile(`/proc/${p}/cmdline`, "utf8")).split("\0").join(" ").trim());
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}
