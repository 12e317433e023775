// See bench/cluster. Prints a table, then one JSON line with the figures.
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { median, repo, run } from "./lib.mjs";

const { Lab } = await import(join(repo, "dist/deploy/lab/lab.js"));
const { formCluster } = await import(join(repo, "dist/deploy/lab/cluster.js"));

const { values: opt } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    "converge-runs": { type: "string", default: "2" },
    replicas: { type: "string", default: "100" },
    // Copy each host's shoald.log here before the lab is taken down.
    logs: { type: "string" },
  },
});
const runs = Number(opt.runs);
const convergeRuns = Number(opt["converge-runs"]);
const replicas = Number(opt.replicas);
if (![runs, convergeRuns, replicas].every((n) => Number.isInteger(n) && n > 0))
  throw new Error("--runs, --converge-runs and --replicas take positive whole numbers");

const RESCHEDULE_TARGET_S = 5;
const FAILOVER_TARGET_S = 3;
const shoald = join(repo, "dist/daemon/main.js");
const managers = ["m1", "m2", "m3"];
const workers = ["w1", "w2"];
const allHosts = [...managers, ...workers];
const SERVICE_LABEL = "com.docker.swarm.service.id";
const DIRECT_LABEL = "shoal.bench.direct";

const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const log = (msg) => console.error(`[cluster] ${msg}`);

// ---- the lab, and its taking down whatever happens --------------------------------------------

const name = `b${randomBytes(3).toString("hex")}`;
const root = await mkdtemp("/tmp/shoal-lab-");
let lab;
let labUp; // Lab.up's promise, while it runs
let teardown;
function down() {
  teardown ??= (async () => {
    // A Ctrl-C while Lab.up runs: let it finish (or fail and take itself down), then take it down.
    const l =
      lab ?? (await labUp?.catch(() => undefined)) ?? (await Lab.load(name, root).catch(() => undefined));
    // No daemon is (re)started from here on, whatever the measurements are in the middle of.
    if (l) l.start = async () => Promise.reject(new Error("the lab is being taken down"));
    if (l && opt.logs) {
      await mkdir(opt.logs, { recursive: true });
      for (const h of l.state.hosts)
        await cp(join(h.dir, "shoald.log"), join(opt.logs, `${h.name}.log`)).catch(() => {});
    }
    if (l) await l.down().catch((e) => log(`lab down failed: ${e.message}`));
    await rm(root, { recursive: true, force: true });
  })();
  return teardown;
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"])
  process.once(sig, () => {
    log(`${sig}: taking the lab down`);
    void down().finally(() => process.exit(130));
  });

// ---- Engine API on a lab host's socket -----------------------------------------------------------

/** One request with a deadline; answers { status, body, json() } or throws on a socket error. */
function call(host, method, path, body, timeoutMs = 30_000) {
  const sock = lab.host(host).socket;
  const payload =
    body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  return new Promise((ok, fail) => {
    const req = request(
      {
        socketPath: sock,
        method,
        path,
        timeout: timeoutMs,
        headers: payload
          ? {
              "Content-Type": Buffer.isBuffer(body) ? "application/x-tar" : "application/json",
              "Content-Length": payload.length,
            }
          : {},
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          ok({ status: res.statusCode, body: text, json: () => JSON.parse(text) });
        });
        res.on("error", fail);
      },
    );
    req.on("error", fail);
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} on ${host} timed out`)));
    req.end(payload);
  });
}

async function must(host, method, path, body, expect = [200, 201, 204]) {
  const r = await call(host, method, path, body);
  if (!expect.includes(r.status))
    throw new Error(`${host}: ${method} ${path} answered ${r.status}: ${r.body}`);
  return r;
}

/** Poll `fn` every `everyMs` until it returns something other than undefined. */
async function until(what, fn, ms = 120_000, everyMs = 100) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

const nodes = async (via) => (await must(via, "GET", "/nodes")).json();
async function hostNames(via) {
  return new Map((await nodes(via)).map((n) => [n.ID, n.Description.Hostname]));
}
async function tasksOf(service, via) {
  const f = encodeURIComponent(JSON.stringify({ service: [service] }));
  return (await must(via, "GET", `/tasks?filters=${f}`, undefined, [200])).json();
}

const sleeper = (service, n) => ({
  Name: service,
  TaskTemplate: {
    ContainerSpec: { Image: "busybox:latest", Args: ["sleep", "100000"], StopGracePeriod: 1e9 },
  },
  Mode: { Replicated: { Replicas: n } },
});

async function createService(via, spec) {
  return (await must(via, "POST", "/services/create", spec, [201])).json().ID;
}

/** The running tasks of a service once exactly `n` are desired and all of them run. */
async function settled(service, n, via, accept = () => true) {
  const ts = (await tasksOf(service, via)).filter((t) => t.DesiredState === "running");
  const running = ts.filter((t) => t.Status.State === "running");
  return ts.length === n && running.length === n && accept(running) ? running : undefined;
}

/** Remove a service and wait until no host has a container of it left; stragglers are forced out. */
async function removeService(id, via) {
  await must(via, "DELETE", `/services/${id}`, undefined, [200, 204, 404]);
  const f = encodeURIComponent(JSON.stringify({ label: [`${SERVICE_LABEL}=${id}`] }));
  const leftOn = async (h) => (await must(h, "GET", `/containers/json?all=1&filters=${f}`)).json();
  const gone = await until(
    "the service's containers to go",
    async () => {
      for (const h of allHosts) if ((await leftOn(h)).length) return undefined;
      return true;
    },
    60_000,
    200,
  ).catch(() => false);
  if (!gone)
    for (const h of allHosts)
      for (const c of await leftOn(h)) await call(h, "DELETE", `/containers/${c.Id}?force=1`).catch(() => {});
}

async function leaderOf() {
  return until("a leader", async () => {
    for (const h of managers) {
      if (!lab.host(h).pid) continue;
      const l = (await nodes(h).catch(() => [])).find((n) => n.ManagerStatus?.Leader);
      if (l) return l.Description.Hostname;
    }
    return undefined;
  });
}

async function allReady(via = "m1") {
  return until("5 ready nodes, every manager reachable", async () => {
    const ns = await nodes(via);
    return ns.length === allHosts.length &&
      ns.every((n) => n.Status.State === "ready") &&
      ns.filter((n) => n.ManagerStatus).every((n) => n.ManagerStatus.Reachability === "reachable")
      ? ns
      : undefined;
  });
}

// ---- the measurements ---------------------------------------------------------------------------

/** create+start of `replicas` containers through the engines, spread evenly, hosts in parallel. */
async function direct(tag) {
  const per = Math.ceil(replicas / allHosts.length);
  const made = new Map(allHosts.map((h) => [h, []]));
  const t0 = process.hrtime.bigint();
  await Promise.all(
    allHosts.map(async (h, hi) => {
      for (let i = 0; i < per && hi * per + i < replicas; i++) {
        const c = (
          await must(h, "POST", "/containers/create", {
            Image: "busybox:latest",
            Cmd: ["sleep", "100000"],
            StopTimeout: 1,
            Labels: { [DIRECT_LABEL]: tag },
          })
        ).json();
        made.get(h).push(c.Id);
        await must(h, "POST", `/containers/${c.Id}/start`, undefined, [204]);
      }
    }),
  );
  const s = seconds(t0);
  await Promise.all(
    allHosts.map(async (h) => {
      for (const id of made.get(h)) await must(h, "DELETE", `/containers/${id}?force=1`, undefined, [204]);
    }),
  );
  return s;
}

/** POST /services/create of `replicas` until all run; also when each task reported running. */
async function converge(service) {
  const t0 = process.hrtime.bigint();
  const wall0 = Date.now();
  const id = await createService("m1", sleeper(service, replicas));
  const acceptedS = seconds(t0);
  let firstRunningS;
  let running;
  for (;;) {
    const ts = (await tasksOf(id, "m1").catch(() => [])).filter((t) => t.DesiredState === "running");
    const n = ts.filter((t) => t.Status.State === "running").length;
    if (n > 0 && firstRunningS === undefined) firstRunningS = seconds(t0);
    if (ts.length === replicas && n === replicas) {
      running = ts;
      break;
    }
    if (seconds(t0) > 600) throw new Error(`${service}: ${n} of ${replicas} running after 600 s`);
    await sleep(100);
  }
  const s = seconds(t0);
  // Where the time went: per host, how many tasks and when its last one reported running
  // (the task's own status timestamp, relative to the create request).
  const names = await hostNames("m1");
  const perHost = {};
  for (const t of running) {
    const h = names.get(t.NodeID) ?? t.NodeID;
    const at = (Date.parse(t.Status.Timestamp) - wall0) / 1000;
    perHost[h] ??= { tasks: 0, first_s: Infinity, last_s: 0 };
    perHost[h].tasks++;
    perHost[h].first_s = Math.min(perHost[h].first_s, at);
    perHost[h].last_s = Math.max(perHost[h].last_s, at);
  }
  await removeService(id, "m1");
  return { s, acceptedS, firstRunningS, perHost };
}

/** Kill a worker that has tasks of a fresh 10-replica service; time until 10 run elsewhere. */
async function reschedule(service) {
  const id = await createService("m1", sleeper(service, 10));
  const before = await until(`10 running tasks of ${service}`, () => settled(id, 10, "m1"));
  const names = await hostNames("m1");
  const count = (w) => before.filter((t) => names.get(t.NodeID) === w).length;
  const victim = [...workers].sort((a, b) => count(b) - count(a))[0];
  if (!count(victim)) throw new Error(`no worker has tasks of ${service}`);
  const victimId = [...names].find(([, h]) => h === victim)[0];
  const t0 = process.hrtime.bigint();
  await lab.kill(victim);
  const killS = seconds(t0);
  let downS;
  for (;;) {
    if (downS === undefined) {
      const n = (await nodes("m1").catch(() => [])).find((x) => x.ID === victimId);
      if (n?.Status.State === "down") downS = seconds(t0);
    }
    const ok = await settled(id, 10, "m1", (ts) => ts.every((t) => t.NodeID !== victimId)).catch(
      () => undefined,
    );
    if (ok) break;
    if (seconds(t0) > 120) throw new Error(`${service}: not rescheduled off ${victim} within 120 s`);
    await sleep(50);
  }
  const s = seconds(t0);
  await lab.start(victim, shoald);
  await until(`${victim} ready again`, async () =>
    (await nodes("m1")).find((x) => x.ID === victimId)?.Status.State === "ready" ? true : undefined,
  );
  await removeService(id, "m1");
  return { s, victim, moved: count(victim), killS, downS };
}

/** Kill the Raft leader; time until an update of `id` is accepted through a surviving manager. */
async function failover(id, round) {
  await allReady("m1").catch(() => allReady("m2"));
  const old = await leaderOf();
  const via = managers.find((h) => h !== old);
  const target = 1 + (round % 2 ? 0 : 1); // alternately 2 and 1 replicas: always a change
  const t0 = process.hrtime.bigint();
  await lab.kill(old);
  let attempts = 0;
  let lastErr;
  for (;;) {
    attempts++;
    try {
      const s = (await call(via, "GET", `/services/${id}`, undefined, 5_000)).json();
      if (s.Spec.Mode.Replicated.Replicas === target) break; // an earlier attempt got through late
      const r = await call(
        via,
        "POST",
        `/services/${id}/update?version=${s.Version.Index}`,
        { ...s.Spec, Mode: { Replicated: { Replicas: target } } },
        5_000,
      );
      if (r.status === 200) break;
      lastErr = `${r.status} ${r.body.trim()}`;
    } catch (e) {
      lastErr = e.message;
    }
    if (seconds(t0) > 120) throw new Error(`no write accepted within 120 s after killing ${old}: ${lastErr}`);
    await sleep(50);
  }
  const s = seconds(t0);
  // GET /nodes shows the new leader once it has written ManagerStatus (it does so about once a
  // second): until then the killed host may still be shown as the leader.
  const next = await until(
    "a new leader shown",
    async () => {
      const l = await leaderOf();
      return l !== old ? l : undefined;
    },
    60_000,
    50,
  );
  const shownS = seconds(t0);
  await lab.start(old, shoald);
  await until(`${old} back as a reachable manager`, async () => {
    const n = (await nodes(via)).find((x) => x.Description.Hostname === old);
    return n?.Status.State === "ready" && n.ManagerStatus?.Reachability === "reachable" ? true : undefined;
  });
  return { s, old, next, via, attempts, shownS };
}

// ---- the run ------------------------------------------------------------------------------------

const fmt = (x, d = 2) => (x === undefined ? "-" : x.toFixed(d));
try {
  log(`lab ${name} in ${root}: 3 managers, 2 workers`);
  labUp = Lab.up({
    name,
    managers: 3,
    workers: 2,
    root,
    octet: 100 + Math.floor(Math.random() * 100),
    shoald,
  });
  lab = await labUp;
  await formCluster(lab);
  const tar = join(root, "busybox.tar");
  await run(process.execPath, [join(repo, "test/fixtures/busybox-image.mjs"), tar, "busybox:latest"]);
  const archive = await readFile(tar);
  await Promise.all(allHosts.map((h) => must(h, "POST", "/images/load", archive, [200])));
  await allReady();

  // A warm-up of both paths (first container on each host, JIT), untimed.
  log("warming up");
  await direct("warm");
  {
    const id = await createService("m1", sleeper("warm", 10));
    await until("10 running tasks of warm", () => settled(id, 10, "m1"));
    await removeService(id, "m1");
  }

  const conv = [];
  const dir = [];
  for (let i = 0; i < convergeRuns; i++) {
    log(`converge run ${i + 1}/${convergeRuns}: direct`);
    dir.push(await direct(`run${i}`));
    log(`  direct ${fmt(dir.at(-1))} s; service`);
    conv.push(await converge(`conv${i}`));
    log(`  converge ${fmt(conv.at(-1).s)} s`);
  }
  const resch = [];
  for (let i = 0; i < runs; i++) {
    log(`reschedule run ${i + 1}/${runs}`);
    resch.push(await reschedule(`resch${i}`));
    log(`  ${fmt(resch.at(-1).s)} s (${resch.at(-1).victim})`);
  }
  const fo = [];
  {
    const id = await createService("m1", sleeper("failover", 1));
    await until("1 running task of failover", () => settled(id, 1, "m1"));
    for (let i = 0; i < runs; i++) {
      log(`failover run ${i + 1}/${runs}`);
      fo.push(await failover(id, i));
      log(`  ${fmt(fo.at(-1).s)} s (${fo.at(-1).old} → ${fo.at(-1).next})`);
    }
    await removeService(id, "m1");
  }

  const r3 = (x) => +x.toFixed(3);
  const fig = {
    converge_runs: convergeRuns,
    replicas,
    converge_100_s: r3(median(conv.map((c) => c.s))),
    direct_100_s: r3(median(dir)),
    converge_ratio: +(median(conv.map((c) => c.s)) / median(dir)).toFixed(2),
    runs,
    reschedule_s: r3(median(resch.map((r) => r.s))),
    reschedule_target_s: RESCHEDULE_TARGET_S,
    reschedule_pass: median(resch.map((r) => r.s)) < RESCHEDULE_TARGET_S,
    failover_api_s: r3(median(fo.map((r) => r.s))),
    failover_target_s: FAILOVER_TARGET_S,
    failover_pass: median(fo.map((r) => r.s)) < FAILOVER_TARGET_S,
  };

  const each = (xs) => xs.map((x) => fmt(x)).join(", ");
  const rows = [
    [
      `service create, ${replicas} replicas → all running`,
      convergeRuns,
      fig.converge_100_s,
      "",
      each(conv.map((c) => c.s)),
    ],
    [
      `  create answered`,
      convergeRuns,
      r3(median(conv.map((c) => c.acceptedS))),
      "",
      each(conv.map((c) => c.acceptedS)),
    ],
    [
      `  first task running`,
      convergeRuns,
      r3(median(conv.map((c) => c.firstRunningS))),
      "",
      each(conv.map((c) => c.firstRunningS)),
    ],
    [`direct create+start, ${replicas} containers (ref)`, convergeRuns, fig.direct_100_s, "", each(dir)],
    [`  converge / direct`, "", fig.converge_ratio, "", ""],
    [
      "worker killed → 10 tasks running elsewhere",
      runs,
      fig.reschedule_s,
      `< ${RESCHEDULE_TARGET_S} ${fig.reschedule_pass ? "PASS" : "FAIL"}`,
      each(resch.map((r) => r.s)),
    ],
    ["  lab.kill returned", runs, r3(median(resch.map((r) => r.killS))), "", each(resch.map((r) => r.killS))],
    [
      "  node seen down",
      runs,
      resch.every((r) => r.downS !== undefined) ? r3(median(resch.map((r) => r.downS))) : "-",
      "",
      each(resch.map((r) => r.downS)),
    ],
    [
      "leader killed → write accepted",
      runs,
      fig.failover_api_s,
      `< ${FAILOVER_TARGET_S} ${fig.failover_pass ? "PASS" : "FAIL"}`,
      each(fo.map((r) => r.s)),
    ],
    [
      "  new leader shown in GET /nodes",
      runs,
      r3(median(fo.map((r) => r.shownS))),
      "",
      each(fo.map((r) => r.shownS)),
    ],
  ];
  console.log(`cluster: lab of 3 managers + 2 workers; medians (runs as shown)`);
  console.log(
    `${"what".padEnd(46)} ${"runs".padStart(4)} ${"median s".padStart(9)} ${"target".padStart(11)}  each run (s)`,
  );
  for (const [what, n, s, target, all] of rows)
    console.log(
      `${what.padEnd(46)} ${String(n).padStart(4)} ${String(s).padStart(9)} ${target.padStart(11)}  ${all}`,
    );
  for (const [i, c] of conv.entries()) {
    const parts = Object.entries(c.perHost)
      .sort()
      .map(([h, p]) => `${h} ${p.tasks} tasks ${fmt(p.first_s, 1)}–${fmt(p.last_s, 1)} s`);
    console.log(`converge run ${i + 1}, running reported per host: ${parts.join("; ")}`);
  }
  for (const r of resch) console.log(`reschedule: killed ${r.victim} (${r.moved} tasks moved)`);
  for (const r of fo)
    console.log(`failover: killed ${r.old}, new leader ${r.next}, via ${r.via}, ${r.attempts} attempts`);
  console.log(JSON.stringify(fig));
} finally {
  log("taking the lab down");
  await down();
}
