// See bench/images. Prints a table, then one JSON line with the figures.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, writeFile, rm, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { cleanupUnder, makeNetns, median, repo, run, startShoald, stopProcess, unixRequest } from "./lib.mjs";
import { dockerArchive, imageConfig, makeTar } from "../test/fixtures/tarlib.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const rounds = opt("--rounds", 3);
const layerCount = opt("--layers", 5);
const layerMb = opt("--layer-mb", 40);
const root = await mkdtemp("/tmp/shoal-bench-images-");
const tag = root
  .slice(-6)
  .toLowerCase()
  .replace(/[^a-z0-9]/g, "x");
// Everything runs in a network namespace of its own (like bench/engine-start): the daemons, the
// registry and skopeo. The namespace goes at the end, with every socket in it.
const netns = `shoal-bench-img-${tag}`;
const cgroupParent = `shoal-bench-img-${tag}`;
const port = 20_000 + Math.floor(Math.random() * 30_000);
const registryHost = `127.0.0.1:${port}`;
const imageRef = `${registryHost}/bench/big:1`;
const warmRef = `${registryHost}/bench/warm:1`;
const children = new Set();

const api = unixRequest;

function timeProcess(file, argv) {
  return new Promise((ok, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(file, argv, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (c) => (err += c));
    child.on("exit", (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) ok(s);
      else fail(new Error(`${file} ${argv.join(" ")} exited ${code}: ${err}`));
    });
  });
}

/** A layer of ~layerMb MB: 8 files, half random (incompressible), half random text (gzip ~1/4 off). */
async function makeLayer(index) {
  const files = [];
  const per = Math.floor((layerMb * 1024 * 1024) / 8);
  for (let f = 0; f < 8; f++) {
    const data = f % 2 === 0 ? randomBytes(per) : Buffer.from(randomBytes((per * 3) / 4).toString("base64"));
    files.push({ name: `layer${index}/file${f}.bin`, data });
  }
  return makeTar([{ name: `layer${index}/`, type: "directory" }, ...files]);
}

let daemon;
async function startDaemon(name) {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const sock = join(dir, "shoal.sock");
  const child = await startShoald({
    netns,
    dir,
    sock,
    cgroupParent,
    configFile: join(root, "daemon.json"),
    resolvConf: join(root, "resolv.conf"),
    args: [
      "--certs-dir",
      join(root, "certs.d"),
      "--bridge",
      "none",
      // One download per layer of the image (dockerd's default, 3, leaves two layers waiting).
      "--max-concurrent-downloads",
      String(layerCount),
    ],
  });
  children.add(child);
  return { child, sock, dir };
}

async function stop(child) {
  await stopProcess(child);
  children.delete(child);
}

await writeFile(join(root, "daemon.json"), "{}\n");
await writeFile(join(root, "resolv.conf"), "nameserver 127.0.0.1\n");
let netnsMade = false;
try {
  await makeNetns(netns);
  netnsMade = true;

  // The registry: Debian's docker-registry on the namespace's loopback, storage in our folder.
  const regConfig = {
    version: 0.1,
    log: { level: "info", accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(root, "registry") }, delete: { enabled: true } },
    http: { addr: registryHost, secret: randomBytes(8).toString("hex") },
  };
  await writeFile(join(root, "registry.yml"), JSON.stringify(regConfig));
  const registry = spawn(
    "nsenter",
    [`--net=/run/netns/${netns}`, "/usr/bin/docker-registry", "serve", join(root, "registry.yml")],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.add(registry);
  let regLog = "";
  registry.stdout.on("data", (c) => (regLog += c));
  registry.stderr.on("data", (c) => (regLog += c));
  for (let i = 0; !regLog.includes("listening on"); i++) {
    if (registry.exitCode !== null || i > 200) throw new Error(`docker-registry did not start:\n${regLog}`);
    await sleep(50);
  }

  // The image: layerCount layers of random and random-text files, as a docker-save archive.
  const layers = [];
  for (let i = 0; i < layerCount; i++) layers.push(await makeLayer(i));
  const imageBytes = layers.reduce((n, l) => n + l.length, 0);
  // A small image too: each fresh daemon pulls it first, untimed, so the timed pull measures the
  // transfer rather than the JIT warming up (a daemon is long-lived; skopeo is a compiled program).
  const warmLayer = await makeTar([
    { name: "warm/random.bin", data: randomBytes(8 << 20) },
    { name: "warm/text.txt", data: Buffer.from(randomBytes(6 << 20).toString("base64")) },
  ]);
  const archive = await dockerArchive([
    { config: imageConfig(layers, { Cmd: ["sh"] }), layers, repoTags: [imageRef] },
    { config: imageConfig([warmLayer], { Cmd: ["sh"] }), layers: [warmLayer], repoTags: [warmRef] },
  ]);
  layers.length = 0;

  // Load it into a first daemon and push it to the registry.
  daemon = await startDaemon("pusher");
  const loaded = await api(daemon.sock, "POST", "/images/load", archive);
  if (loaded.status !== 200) throw new Error(`load failed: ${loaded.status} ${loaded.body}`);
  const t0 = process.hrtime.bigint();
  const pushed = await api(daemon.sock, "POST", `/images/${registryHost}/bench/big/push?tag=1`);
  const pushS = Number(process.hrtime.bigint() - t0) / 1e9;
  if (pushed.status !== 200 || pushed.body.includes('"error"'))
    throw new Error(`push failed: ${pushed.body}`);
  const warmPushed = await api(daemon.sock, "POST", `/images/${registryHost}/bench/warm/push?tag=1`);
  if (warmPushed.status !== 200 || warmPushed.body.includes('"error"'))
    throw new Error(`push failed: ${warmPushed.body}`);
  await stop(daemon.child);
  daemon = undefined;

  const shoalCli = join(repo, "dist/cli/main.js");
  const pullS = [];
  const skopeoS = [];
  // Warm-up of both (page cache of the registry's blobs, first-use costs), then alternate.
  for (let i = -1; i < rounds; i++) {
    daemon = await startDaemon(`puller-${i + 1}`);
    await timeProcess(process.execPath, [shoalCli, "-H", `unix://${daemon.sock}`, "pull", "-q", warmRef]);
    // No dirty pages of an earlier round may be written back during this one.
    await run("sync");
    const p = await timeProcess(process.execPath, [
      shoalCli,
      "-H",
      `unix://${daemon.sock}`,
      "pull",
      "-q",
      imageRef,
    ]);
    const image = JSON.parse((await api(daemon.sock, "GET", `/images/${imageRef}/json`)).body);
    if (!image.RepoDigests?.length)
      throw new Error(`the pulled image has no RepoDigests: ${JSON.stringify(image)}`);
    await stop(daemon.child);
    await rm(daemon.dir, { recursive: true, force: true });
    daemon = undefined;

    const target = join(root, `skopeo-${i + 1}`);
    await run("sync");
    const s = await timeProcess("nsenter", [
      `--net=/run/netns/${netns}`,
      "skopeo",
      "--insecure-policy",
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      `docker://${imageRef}`,
      `dir:${target}`,
    ]);
    await rm(target, { recursive: true, force: true });
    if (i >= 0) {
      pullS.push(p);
      skopeoS.push(s);
    }
  }

  // The Dockerfile builder: an unchanged rebuild of a small multi-step Dockerfile, every step a
  // cache hit and no container started; timed as the whole CLI process, median of the rounds.
  const { buildBusyboxArchive } = await import("../test/fixtures/busybox-image.mjs");
  daemon = await startDaemon("builder");
  const bb = await api(daemon.sock, "POST", "/images/load", await buildBusyboxArchive());
  if (bb.status !== 200) throw new Error(`loading busybox failed: ${bb.status} ${bb.body}`);
  const ctx = join(root, "build-context");
  await mkdir(join(ctx, "src"), { recursive: true });
  for (let i = 0; i < 50; i++)
    await writeFile(join(ctx, "src", `file${i}.txt`), randomBytes(4096).toString("hex"));
  await writeFile(
    join(ctx, "Dockerfile"),
    [
      "FROM busybox",
      "ARG VERSION=1",
      "ENV APP_HOME=/app",
      "WORKDIR /app",
      "COPY src/ /app/src/",
      "RUN cat src/*.txt | wc -c > /app/size",
      'RUN echo "$VERSION" > /app/version',
      "USER 1000",
      'CMD ["cat", "/app/size"]',
      "",
    ].join("\n"),
  );
  const buildArgv = [shoalCli, "-H", `unix://${daemon.sock}`, "build", "-t", "bench/app:1", ctx];
  await timeProcess(process.execPath, buildArgv); // the first build runs every step
  const rebuildS = [];
  for (let i = 0; i < rounds; i++) rebuildS.push(await timeProcess(process.execPath, buildArgv));
  const check = await run(process.execPath, buildArgv);
  if (check.stdout.includes("Running in") || !check.stdout.includes("Using cache"))
    throw new Error(`the rebuild was not all cache hits:\n${check.stdout}`);
  await stop(daemon.child);
  daemon = undefined;

  const fig = {
    image_mb: +(imageBytes / 1e6).toFixed(1),
    layers: layerCount,
    max_concurrent_downloads: layerCount,
    rounds,
    push_s: +pushS.toFixed(2),
    pull_s: +median(pullS).toFixed(2),
    skopeo_s: +median(skopeoS).toFixed(2),
    pull_ratio: +(median(pullS) / median(skopeoS)).toFixed(2),
    // An unchanged rebuild of a 9-step Dockerfile (2 RUN, 1 COPY of 50 files): all cache hits.
    cached_rebuild_s: +median(rebuildS).toFixed(2),
  };
  console.log(`images: ${fig.image_mb} MB in ${layerCount} layers, median of ${rounds} rounds each`);
  console.log(`${"what".padEnd(52)} ${"seconds".padStart(8)} ${"× skopeo".padStart(9)}`);
  const rows = [
    ["shoal pull into an empty daemon (CLI process)", fig.pull_s, fig.pull_ratio],
    ["skopeo copy docker:// → dir: (reference)", fig.skopeo_s, 1],
    ["shoal push (first push: gzip + upload, once)", fig.push_s, ""],
    ["shoal build, unchanged rebuild (all cache hits)", fig.cached_rebuild_s, ""],
  ];
  for (const [what, s, r] of rows)
    console.log(`${what.padEnd(52)} ${String(s).padStart(8)} ${String(r).padStart(9)}`);
  console.log(JSON.stringify(fig));
} finally {
  for (const c of children) await stopProcess(c, "SIGKILL");
  await cleanupUnder(root, cgroupParent);
  if (netnsMade) await run("ip", ["netns", "del", netns]).catch(() => {});
  await rm(root, { recursive: true, force: true });
}
