// See bench/engine-start. Prints a table, then one JSON line with the figures.
import { spawn, execFile } from "node:child_process";
import { mkdtemp, mkdir, writeFile, readFile, rm, readdir } from "node:fs/promises";
import { request } from "node:http";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, "..");
const runs = Number(process.argv[2] ?? 25);
const root = await mkdtemp("/tmp/shoal-bench-");
const sock = join(root, "shoal.sock");
const cgroupParent = `shoal-bench-${root.slice(-6).toLowerCase()}`;

function api(method, path, body) {
  return new Promise((ok, fail) => {
    const payload =
      body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        socketPath: sock,
        method,
        path,
        headers: payload
          ? { "Content-Type": Buffer.isBuffer(body) ? "application/x-tar" : "application/json" }
          : {},
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => ok({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", fail);
    if (payload) req.write(payload);
    req.end();
  });
}

function timeProcess(file, args) {
  return new Promise((ok, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (c) => (err += c));
    child.on("exit", (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code === 0) ok(ms);
      else fail(new Error(`${file} ${args.join(" ")} exited ${code}: ${err}`));
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

await writeFile(join(root, "daemon.json"), "{}\n");
const daemon = spawn(
  process.execPath,
  [
    join(repo, "dist/daemon/main.js"),
    "--data-root",
    join(root, "data"),
    "--exec-root",
    join(root, "run"),
    "-H",
    `unix://${sock}`,
    "--cgroup-parent",
    cgroupParent,
    "--config-file",
    join(root, "daemon.json"),
    "--log-level",
    "warn",
  ],
  { stdio: ["ignore", "ignore", "inherit"] },
);
try {
  for (let i = 0; ; i++) {
    try {
      if ((await api("GET", "/_ping")).status === 200) break;
    } catch {
      // not listening yet
    }
    if (i > 200) throw new Error("shoald did not start");
    await sleep(50);
  }
  const tar = join(root, "busybox.tar");
  await run(process.execPath, [join(repo, "test/fixtures/busybox-image.mjs"), tar, "busybox:latest"]);
  const loaded = await api("POST", "/images/load", await readFile(tar));
  if (loaded.status !== 200) throw new Error(`load failed: ${loaded.body}`);
  const image = JSON.parse((await api("GET", "/images/busybox/json")).body);
  // A one-layer image: overlay2's inspect shows that layer as UpperDir.
  const rootfs = image.GraphDriver.Data.UpperDir;

  // The reference: runc's own default spec on the same (read-only) root filesystem.
  const bundle = join(root, "bundle");
  await mkdir(bundle);
  await run("runc", ["spec"], { cwd: bundle });
  const spec = JSON.parse(await readFile(join(bundle, "config.json"), "utf8"));
  spec.process.terminal = false;
  spec.process.args = ["true"];
  spec.root = { path: rootfs, readonly: true };
  spec.linux.cgroupsPath = `/${cgroupParent}/runc-ref`;
  await writeFile(join(bundle, "config.json"), JSON.stringify(spec));
  const runcRoot = join(root, "runc-root");

  const shoalArgs = [
    join(repo, "dist/cli/main.js"),
    "-H",
    `unix://${sock}`,
    "run",
    "--rm",
    "busybox",
    "true",
  ];
  const apiRun = async () => {
    const t0 = process.hrtime.bigint();
    const c = JSON.parse(
      (
        await api("POST", "/containers/create", {
          Image: "busybox",
          Cmd: ["true"],
          HostConfig: { AutoRemove: true },
        })
      ).body,
    );
    const waited = api("POST", `/containers/${c.Id}/wait?condition=removed`);
    await api("POST", `/containers/${c.Id}/start`);
    await waited;
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  // Warm up both paths (page cache, first-use costs), then alternate so drift hits both alike.
  await timeProcess("runc", ["--root", runcRoot, "run", "-b", bundle, "warm"]);
  await timeProcess(process.execPath, shoalArgs);
  await apiRun();
  const runcMs = [],
    shoalMs = [],
    apiMs = [],
    nodeMs = [];
  for (let i = 0; i < runs; i++) {
    runcMs.push(await timeProcess("runc", ["--root", runcRoot, "run", "-b", bundle, `ref${i}`]));
    shoalMs.push(await timeProcess(process.execPath, shoalArgs));
    apiMs.push(await apiRun());
    nodeMs.push(await timeProcess(process.execPath, ["-e", "0"]));
  }
  const fig = {
    runs,
    median_ms: +median(shoalMs).toFixed(1),
    runc_median_ms: +median(runcMs).toFixed(1),
    ratio: +(median(shoalMs) / median(runcMs)).toFixed(2),
    api_median_ms: +median(apiMs).toFixed(1),
    api_ratio: +(median(apiMs) / median(runcMs)).toFixed(2),
    node_startup_median_ms: +median(nodeMs).toFixed(1),
  };
  const rows = [
    ["shoal run --rm busybox true (CLI process)", fig.median_ms, fig.ratio],
    ["same through the Engine API (no CLI start)", fig.api_median_ms, fig.api_ratio],
    ["bare runc run (reference)", fig.runc_median_ms, 1],
    [
      "node -e 0 (CLI start-up floor)",
      fig.node_startup_median_ms,
      +(fig.node_startup_median_ms / fig.runc_median_ms).toFixed(2),
    ],
  ];
  console.log(`engine-start: median of ${runs} runs each`);
  console.log(`${"what".padEnd(46)} ${"median ms".padStart(10)} ${"× runc".padStart(8)}`);
  for (const [what, ms, ratio] of rows)
    console.log(`${what.padEnd(46)} ${String(ms).padStart(10)} ${String(ratio).padStart(8)}`);
  console.log(JSON.stringify(fig));
} finally {
  daemon.kill("SIGTERM");
  await new Promise((r) => daemon.once("exit", r));
  const list = await run("runc", ["--root", join(root, "run", "runtime"), "list", "-q"]).catch(() => ({
    stdout: "",
  }));
  for (const id of list.stdout.split("\n").filter(Boolean))
    await run("runc", ["--root", join(root, "run", "runtime"), "delete", "-f", id]).catch(() => {});
  const mounts = (await readFile("/proc/mounts", "utf8"))
    .split("\n")
    .map((l) => l.split(" ")[1])
    .filter((m) => m && m.startsWith(root));
  for (const m of mounts.reverse()) await run("umount", ["-l", m]).catch(() => {});
  for (const h of await readdir("/sys/fs/cgroup").catch(() => [])) {
    await run("find", [
      join("/sys/fs/cgroup", h, cgroupParent),
      "-depth",
      "-type",
      "d",
      "-exec",
      "rmdir",
      "{}",
      ";",
    ]).catch(() => {});
  }
  await rm(root, { recursive: true, force: true });
}
