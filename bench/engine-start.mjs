// See bench/engine-start. Prints a table, then one JSON line with the figures.
import { spawn } from "node:child_process";
import { mkdtemp, mkdir, writeFile, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { cleanupUnder, makeNetns, median, repo, run, startShoald, stopProcess, unixRequest } from "./lib.mjs";

const runs = Number(process.argv[2] ?? 25);
// SHOAL_COMPARE_CLI=<path to another build's dist/cli/main.js>: that CLI is timed too, against the
// same daemon and alternating with this one, so a CLI change is measured without daemon noise.
const compareCli = process.env.SHOAL_COMPARE_CLI;
const root = await mkdtemp("/tmp/shoal-bench-");
const sock = join(root, "shoal.sock");
const cgroupParent = `shoal-bench-${root.slice(-6).toLowerCase()}`;
// The daemon runs in a network namespace of its own: its bridges, veths, nftables table and
// DNS listeners live (and die) there, and nothing it does reaches the host's network.
const netns = `shoal-bench-${root
  .slice(-6)
  .toLowerCase()
  .replace(/[^a-z0-9]/g, "x")}`;
const benchNetwork = "shoal-bench-net";

const api = (method, path, body) => unixRequest(sock, method, path, body);

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

await writeFile(join(root, "daemon.json"), "{}\n");
// Names the container DNS cannot answer go to 127.0.0.1 inside the namespace, never to the host's resolvers.
await writeFile(join(root, "resolv.conf"), "nameserver 127.0.0.1\n");
let daemon;
try {
  await makeNetns(netns);
} catch (e) {
  await rm(root, { recursive: true, force: true });
  throw e;
}
try {
  daemon = await startShoald({
    netns,
    dir: root,
    sock,
    cgroupParent,
    configFile: join(root, "daemon.json"),
    resolvConf: join(root, "resolv.conf"),
  });
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

  const cliArgs = (cli) => [cli, "-H", `unix://${sock}`, "run", "--rm", "busybox", "true"];
  const shoalArgs = cliArgs(join(repo, "dist/cli/main.js"));
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

  // The cost of networking at start: the same create+start+wait(removed) of `busybox true`
  // with no network at all, on a user-defined bridge, and on that bridge with one port published
  // (an ephemeral host port, picked and probed by the daemon as for `docker run -p 80`).
  const made = await api("POST", "/networks/create", { Name: benchNetwork });
  if (made.status !== 201) throw new Error(`network create failed: ${made.status} ${made.body}`);
  const variants = {
    none: { NetworkMode: "none" },
    bridge: { NetworkMode: benchNetwork },
    port: { NetworkMode: benchNetwork, PortBindings: { "80/tcp": [{ HostPort: "" }] } },
  };
  const createBody = (variant, cmd, autoRemove) => ({
    Image: "busybox",
    Cmd: cmd,
    ...(variant === "port" ? { ExposedPorts: { "80/tcp": {} } } : {}),
    HostConfig: { AutoRemove: autoRemove, ...variants[variant] },
  });
  const apiRunOn = async (variant) => {
    const t0 = process.hrtime.bigint();
    const created = await api("POST", "/containers/create", createBody(variant, ["true"], true));
    if (created.status !== 201)
      throw new Error(`create (${variant}) failed: ${created.status} ${created.body}`);
    const c = JSON.parse(created.body);
    const waited = api("POST", `/containers/${c.Id}/wait?condition=removed`);
    const started = await api("POST", `/containers/${c.Id}/start`);
    if (started.status !== 204)
      throw new Error(`start (${variant}) failed: ${started.status} ${started.body}`);
    const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await waited;
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, startMs };
  };
  // Once each, untimed and not auto-removed: check what the container saw and what was published,
  // so that the figures below measure what they claim.
  for (const variant of Object.keys(variants)) {
    const cmd = ["sh", "-c", "ip -o -4 addr show | grep -v ' lo '; echo end"];
    const c = JSON.parse((await api("POST", "/containers/create", createBody(variant, cmd, false))).body);
    await api("POST", `/containers/${c.Id}/start`);
    await api("POST", `/containers/${c.Id}/wait`);
    const logs = (await api("GET", `/containers/${c.Id}/logs?stdout=1&stderr=1`)).body;
    await api("DELETE", `/containers/${c.Id}?force=1`);
    const hasAddress = / eth0 +inet \d+\.\d+\.\d+\.\d+\//.test(logs);
    if (!logs.includes("end") || hasAddress !== (variant !== "none"))
      throw new Error(`the ${variant} container did not get the expected interfaces:\n${logs}`);
  }
  {
    const c = JSON.parse(
      (await api("POST", "/containers/create", createBody("port", ["sleep", "5"], false))).body,
    );
    await api("POST", `/containers/${c.Id}/start`);
    const ports = JSON.parse((await api("GET", `/containers/${c.Id}/json`)).body).NetworkSettings.Ports;
    await api("DELETE", `/containers/${c.Id}?force=1`);
    if (!/^\d+$/.test(ports?.["80/tcp"]?.[0]?.HostPort ?? ""))
      throw new Error(`the port variant published nothing: ${JSON.stringify(ports)}`);
  }
  // Warm up both paths (page cache, first-use costs), then alternate so drift hits both alike.
  await timeProcess("runc", ["--root", runcRoot, "run", "-b", bundle, "warm"]);
  await timeProcess(process.execPath, shoalArgs);
  if (compareCli) await timeProcess(process.execPath, cliArgs(compareCli));
  await apiRun();
  for (const variant of Object.keys(variants)) await apiRunOn(variant);
  const runcMs = [],
    shoalMs = [],
    apiMs = [],
    nodeMs = [],
    compareMs = [];
  const netMs = { none: [], bridge: [], port: [] };
  // The part until start answered (create + wiring + start), without the exit and the removal.
  const netStartMs = { none: [], bridge: [], port: [] };
  for (let i = 0; i < runs; i++) {
    runcMs.push(await timeProcess("runc", ["--root", runcRoot, "run", "-b", bundle, `ref${i}`]));
    shoalMs.push(await timeProcess(process.execPath, shoalArgs));
    if (compareCli) compareMs.push(await timeProcess(process.execPath, cliArgs(compareCli)));
    apiMs.push(await apiRun());
    nodeMs.push(await timeProcess(process.execPath, ["-e", "0"]));
    // The three network variants back to back, in a rotating order so none always goes first.
    const order = Object.keys(variants);
    for (let k = 0; k < order.length; k++) {
      const variant = order[(i + k) % order.length];
      const { ms, startMs } = await apiRunOn(variant);
      netMs[variant].push(ms);
      netStartMs[variant].push(startMs);
    }
  }
  // `docker exec` of `true` in one running container through the docker CLI, against `runc exec`
  // of the same container (its own process spec with the command replaced), alternating.
  const execTarget = JSON.parse(
    (await api("POST", "/containers/create", createBody("none", ["sleep", "100000"], false))).body,
  );
  await api("POST", `/containers/${execTarget.Id}/start`);
  const dockerConfig = join(root, "docker-config");
  await mkdir(dockerConfig);
  const dockerExec = () =>
    timeProcess("env", [
      `DOCKER_HOST=unix://${sock}`,
      `DOCKER_CONFIG=${dockerConfig}`,
      "docker",
      "exec",
      execTarget.Id,
      "true",
    ]);
  const runcExec = () =>
    timeProcess("runc", ["--root", join(root, "run", "runtime"), "exec", execTarget.Id, "true"]);
  await dockerExec();
  await runcExec();
  const execMs = [],
    execRuncMs = [];
  for (let i = 0; i < runs; i++) {
    execMs.push(await dockerExec());
    execRuncMs.push(await runcExec());
  }
  await api("DELETE", `/containers/${execTarget.Id}?force=1`);
  const fig = {
    runs,
    exec_ms: +median(execMs).toFixed(1),
    exec_runc_ms: +median(execRuncMs).toFixed(1),
    exec_ratio: +(median(execMs) / median(execRuncMs)).toFixed(2),
    median_ms: +median(shoalMs).toFixed(1),
    runc_median_ms: +median(runcMs).toFixed(1),
    ratio: +(median(shoalMs) / median(runcMs)).toFixed(2),
    api_median_ms: +median(apiMs).toFixed(1),
    api_ratio: +(median(apiMs) / median(runcMs)).toFixed(2),
    node_startup_median_ms: +median(nodeMs).toFixed(1),
    api_none_median_ms: +median(netMs.none).toFixed(1),
    api_bridge_median_ms: +median(netMs.bridge).toFixed(1),
    api_bridge_port_median_ms: +median(netMs.port).toFixed(1),
    network_added_ms: +(median(netMs.bridge) - median(netMs.none)).toFixed(1),
    port_added_ms: +(median(netMs.port) - median(netMs.bridge)).toFixed(1),
    network_added_until_started_ms: +(median(netStartMs.bridge) - median(netStartMs.none)).toFixed(1),
    port_added_until_started_ms: +(median(netStartMs.port) - median(netStartMs.bridge)).toFixed(1),
    ...(compareCli
      ? {
          compare_cli: compareCli,
          compare_cli_median_ms: +median(compareMs).toFixed(1),
          cli_vs_compare_ratio: +(median(shoalMs) / median(compareMs)).toFixed(3),
        }
      : {}),
  };
  const timesRunc = (ms) => +(ms / fig.runc_median_ms).toFixed(2);
  const rows = [
    ["shoal run --rm busybox true (CLI process)", fig.median_ms, fig.ratio],
    ...(compareCli
      ? [[`same with ${compareCli}`, fig.compare_cli_median_ms, timesRunc(fig.compare_cli_median_ms)]]
      : []),
    ["same through the Engine API (no CLI start)", fig.api_median_ms, fig.api_ratio],
    ["bare runc run (reference)", fig.runc_median_ms, 1],
    [
      "node -e 0 (CLI start-up floor)",
      fig.node_startup_median_ms,
      +(fig.node_startup_median_ms / fig.runc_median_ms).toFixed(2),
    ],
    ["API, --network none (networking baseline)", fig.api_none_median_ms, timesRunc(fig.api_none_median_ms)],
    ["API, user-defined bridge network", fig.api_bridge_median_ms, timesRunc(fig.api_bridge_median_ms)],
    [
      "API, bridge + one published port",
      fig.api_bridge_port_median_ms,
      timesRunc(fig.api_bridge_port_median_ms),
    ],
    ["  network added (bridge − none)", fig.network_added_ms, ""],
    ["  port added (bridge+port − bridge)", fig.port_added_ms, ""],
    ["  network added, until start answered", fig.network_added_until_started_ms, ""],
    ["  port added, until start answered", fig.port_added_until_started_ms, ""],
    ["docker exec <running container> true (CLI)", fig.exec_ms, timesRunc(fig.exec_ms)],
    ["runc exec of the same container", fig.exec_runc_ms, timesRunc(fig.exec_runc_ms)],
    ["  docker exec × runc exec", fig.exec_ratio, ""],
  ];
  console.log(`engine-start: median of ${runs} runs each`);
  console.log(`${"what".padEnd(46)} ${"median ms".padStart(10)} ${"× runc".padStart(8)}`);
  for (const [what, ms, ratio] of rows)
    console.log(`${what.padEnd(46)} ${String(ms).padStart(10)} ${String(ratio).padStart(8)}`);
  console.log(JSON.stringify(fig));
} finally {
  await stopProcess(daemon);
  const list = await run("runc", ["--root", join(root, "run", "runtime"), "list", "-q"]).catch(() => ({
    stdout: "",
  }));
  for (const id of list.stdout.split("\n").filter(Boolean))
    await run("runc", ["--root", join(root, "run", "runtime"), "delete", "-f", id]).catch(() => {});
  await cleanupUnder(root, cgroupParent);
  // Takes the bridges, veths and shoal's nftables table along with it.
  await run("ip", ["netns", "del", netns]).catch(() => {});
  await rm(root, { recursive: true, force: true });
}
