// See bench/raft. Prints a table, then one JSON line with the figures.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Pool } from "undici";

const { values: opt } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    clients: { type: "string", default: "100" },
    "tick-ms": { type: "string", default: "100" },
    "election-ticks": { type: "string", default: "10" },
    "value-bytes": { type: "string", default: "256" },
    "cpu-prof": { type: "boolean", default: false },
  },
});
const seconds = Number(opt.seconds);
const clients = Number(opt.clients);
const tickMs = Number(opt["tick-ms"]);
const electionTicks = Number(opt["election-ticks"]);
const valueBytes = Number(opt["value-bytes"]);

const repo = resolve(import.meta.dirname, "..");
const server = join(repo, "dist/test/raft/kv/server.js");
// Under the repository's filesystem rather than a possible tmpfs: the WAL's fsync must be real.
const root = await mkdtemp(join(process.env.SHOAL_BENCH_DIR ?? "/tmp", "shoal-raft-bench-"));

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

const ids = [1, 2, 3];
const members = new Map();
for (const id of ids)
  members.set(id, { id, raftPort: await freePort(), clientPort: await freePort(), proc: null });
const peersArg = ids.map((id) => `${id}=127.0.0.1:${members.get(id).raftPort}`).join(",");
const clientPeersArg = ids.map((id) => `${id}=127.0.0.1:${members.get(id).clientPort}`).join(",");

function start(m) {
  const args = [
    ...(opt["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${join(root, "prof")}`] : []),
    server,
    ...["--id", String(m.id), "--peers", peersArg, "--client-peers", clientPeersArg],
    ...["--dir", join(root, `m${m.id}`), "--client-port", String(m.clientPort), "--bootstrap"],
    ...["--tick-ms", String(tickMs), "--election-ticks", String(electionTicks)],
  ];
  m.stderr = "";
  m.proc = spawn(process.execPath, args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, SHOAL_LOG_LEVEL: "warn" },
  });
  m.proc.stderr.on("data", (c) => {
    m.stderr = (m.stderr + c).slice(-4000);
  });
  m.exited = new Promise((r) => m.proc.once("exit", r));
}

const pools = new Map();
function pool(m) {
  let p = pools.get(m.id);
  if (!p) {
    p = new Pool(`http://127.0.0.1:${m.clientPort}`, {
      connections: clients + 10,
      pipelining: 1,
      keepAliveTimeout: 60_000,
    });
    pools.set(m.id, p);
  }
  return p;
}

async function call(m, path, body, timeoutMs = 5000) {
  const res = await pool(m).request({
    path,
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return { status: res.statusCode, body: await res.body.json() };
}

async function findLeader(exclude, timeoutMs = 20_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    for (const m of members.values()) {
      if (m.id === exclude || !m.proc || m.proc.exitCode !== null) continue;
      try {
        const s = await call(m, "/status", undefined, 500);
        if (s.body.role === "leader") return m;
      } catch {
        // not up yet
      }
    }
    await sleep(50);
  }
  throw new Error("no leader elected");
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const value = "v".repeat(valueBytes);

let runs = 0;
async function load(leader, durationMs) {
  const run = ++runs;
  const latencies = [];
  let ok = 0;
  let failed = 0;
  const end = performance.now() + durationMs;
  const worker = async (w) => {
    for (let seq = 1; performance.now() < end; seq++) {
      const t0 = performance.now();
      try {
        const r = await call(leader, "/kv", {
          client: `b${run}-${w}`,
          seq,
          op: "put",
          key: `k${w}-${seq % 64}`,
          value,
        });
        if (r.status === 200) {
          ok++;
          latencies.push(performance.now() - t0);
        } else {
          failed++;
          if (process.env.BENCH_DEBUG && failed < 5) console.error(r.status, JSON.stringify(r.body));
        }
      } catch {
        failed++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, w) => worker(w)));
  const elapsed = performance.now() - t0;
  latencies.sort((a, b) => a - b);
  return { ok, failed, elapsedMs: elapsed, latencies };
}

/** Writes to every surviving member until one commits under a new leader. */
async function failover(oldLeader) {
  const survivors = [...members.values()].filter((m) => m.id !== oldLeader.id);
  const t0 = performance.now();
  oldLeader.proc.kill("SIGKILL");
  let done = false;
  let at = 0;
  let newLeader = 0;
  const prober = async (m, k) => {
    for (let seq = 1; !done; seq++) {
      try {
        const r = await call(
          m,
          "/kv",
          { client: `f${m.id}-${k}`, seq, op: "put", key: "failover", value },
          1000,
        );
        if (r.status === 200 && !done) {
          done = true;
          at = performance.now();
          newLeader = m.id;
          return;
        }
      } catch {
        // unknown outcome; try again
      }
      await sleep(5);
    }
  };
  await Promise.race([
    Promise.all(survivors.flatMap((m) => [0, 1].map((k) => prober(m, k)))),
    sleep(30_000).then(() => {
      done = true;
    }),
  ]);
  if (at === 0) throw new Error("no write committed within 30 s of killing the leader");
  return { ms: at - t0, newLeader };
}

let exitCode = 0;
try {
  for (const m of members.values()) start(m);
  const leader = await findLeader();
  // Warm-up: connections, JIT, the first WAL segment.
  await load(leader, 1500);
  const r = await load(leader, seconds * 1000);
  const writesPerS = r.ok / (r.elapsedMs / 1000);
  const p50 = pct(r.latencies, 50);
  const p99 = pct(r.latencies, 99);
  // Under --cpu-prof the leader must exit cleanly to write its profile: no failover then.
  const f = opt["cpu-prof"] ? { ms: NaN, newLeader: 0 } : await failover(leader);

  const rows = [
    ["members", "3 processes, loopback gRPC, WAL fdatasync on disk"],
    ["proposers", `${clients} HTTP keep-alive clients, ${valueBytes}-byte values`],
    ["duration", `${(r.elapsedMs / 1000).toFixed(1)} s`],
    ["committed writes", String(r.ok)],
    ["failed requests", String(r.failed)],
    ["writes/s", writesPerS.toFixed(0)],
    ["p50 latency", `${p50.toFixed(2)} ms`],
    ["p99 latency", `${p99.toFixed(2)} ms`],
    ["election timeout", `${tickMs * electionTicks} ms (${electionTicks} ticks of ${tickMs} ms)`],
    ["failover", `${f.ms.toFixed(0)} ms (leader ${leader.id} killed, member ${f.newLeader} committed)`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  console.log(
    JSON.stringify({
      writes_per_s: Math.round(writesPerS),
      p50_ms: Number(p50.toFixed(2)),
      p99_ms: Number(p99.toFixed(2)),
      failover_ms: Math.round(f.ms),
    }),
  );
} catch (e) {
  exitCode = 1;
  console.error(`bench/raft failed: ${e instanceof Error ? e.message : String(e)}`);
  for (const m of members.values()) if (m.stderr) console.error(`--- member ${m.id} stderr ---\n${m.stderr}`);
} finally {
  for (const p of pools.values()) await p.destroy().catch(() => undefined);
  for (const m of members.values()) {
    if (m.proc && m.proc.exitCode === null && m.proc.signalCode === null) {
      m.proc.kill(opt["cpu-prof"] ? "SIGTERM" : "SIGKILL");
      await m.exited;
    }
  }
  if (opt["cpu-prof"]) console.error(`profiles in ${join(root, "prof")}`);
  else await rm(root, { recursive: true, force: true });
}
process.exit(exitCode);
