// Secrets at rest and in views, against a real shoald:
// - registry credentials given with --with-registry-auth reach the node that pulls, and no task or
//   service view the API returns (raw bodies searched for the password and the auth header);
// - the Raft WAL and snapshot files hold neither the CA key, nor the join tokens, nor the
//   credentials (raw bytes searched; a copy decrypted with the manager's data key shows they are
//   there, so the search would have found them in plain files);
// - issuing and renewing node certificates puts nothing in the daemon's temp folder (the CA key
//   used to be written there for openssl at every signing).
import { watch, type FSWatcher } from "node:fs";
import { cp, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tasksOf as clusterTasks, until as waitUntil, type Task } from "../helpers/cluster.js";
import { api, repoRoot, runFixtureIn, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import { NodeDisk } from "../../manager/raft/disk.js";
import { openDataKey } from "../../manager/raft/data-key.js";
import { Wal } from "../../manager/raft/wal/wal.js";
import { Snapshotter } from "../../manager/raft/snap/snapshotter.js";

const USER = "atrest-user";
const PASSWORD = "Pa55-atrest-9f3b7c1e";

let d: TestDaemon;
let reg: TestRegistry;
let dockerConfig: string;
let shoalConfig: string;
let daemonTmp: string;
let tmpWatch: TmpWatch | undefined;
const dk = (args: string[], input?: Buffer) => docker(d.socket, args, input, { DOCKER_CONFIG: dockerConfig });
const sh = (args: string[], input?: Buffer) => shoal(d.socket, args, input, { SHOAL_CONFIG: shoalConfig });
const tasksOf = (service: string): Promise<Task[]> => clusterTasks(d.socket, service);
const until = <T>(what: string, fn: () => Promise<T | undefined>): Promise<T> => waitUntil(what, fn, 40_000);

/** Everything that appears in a folder (and below) while watched, and which files held a private key. */
interface TmpWatch {
  seen: Set<string>;
  withKey: Set<string>;
  stop(): Promise<void>;
}

/**
 * Watches `dir` with inotify (every creation is reported, however short-lived) and also scans it
 * as fast as it can, reading every file it finds, so a key written and removed within a signing
 * is caught by name and, if it can be read in time, by content.
 */
function watchTmp(dir: string): TmpWatch {
  const seen = new Set<string>();
  const withKey = new Set<string>();
  const inspect = async (path: string): Promise<void> => {
    try {
      const s = await stat(path);
      if (s.isDirectory()) {
        for (const n of await readdir(path)) {
          seen.add(join(path, n));
          await inspect(join(path, n));
        }
      } else if ((await readFile(path, "latin1")).includes("PRIVATE KEY")) {
        withKey.add(path);
      }
    } catch {
      // Gone already: its name is recorded.
    }
  };
  const watcher: FSWatcher = watch(dir, { recursive: true }, (_event, name) => {
    if (!name) return;
    const path = join(dir, name.toString());
    seen.add(path);
    void inspect(path);
  });
  let running = true;
  const scanning = (async () => {
    while (running) {
      await inspect(dir);
      await new Promise((r) => setImmediate(r));
    }
  })();
  return {
    seen,
    withKey,
    async stop() {
      running = false;
      watcher.close();
      await scanning;
    },
  };
}

beforeAll(async () => {
  // The daemon's os.tmpdir() is a folder of the test's own, so whatever it puts there is its.
  daemonTmp = await mkdtemp("/tmp/shoal-atrest-tmp-");
  const saved = { TMPDIR: process.env.TMPDIR, SNAP: process.env.SHOAL_RAFT_SNAPSHOT_ENTRIES };
  process.env.TMPDIR = daemonTmp;
  process.env.SHOAL_RAFT_SNAPSHOT_ENTRIES = "10";
  try {
    d = await startDaemon();
  } finally {
    if (saved.TMPDIR === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved.TMPDIR;
    if (saved.SNAP === undefined) delete process.env.SHOAL_RAFT_SNAPSHOT_ENTRIES;
    else process.env.SHOAL_RAFT_SNAPSHOT_ENTRIES = saved.SNAP;
  }
  dockerConfig = await mkdtemp("/tmp/shoal-dockercfg-");
  shoalConfig = await mkdtemp("/tmp/shoal-cfg-");
  await loadBusybox(d.socket);
  reg = await startRegistry({ netns: d.netns, auth: { username: USER, password: PASSWORD } });
  const image = `${reg.host}/private/busybox:1`;
  expect((await sh(["tag", "busybox", image])).code).toBe(0);
  expect((await sh(["login", "-u", USER, "--password-stdin", reg.host], Buffer.from(PASSWORD))).code).toBe(0);
  const push = await sh(["push", image]);
  expect(push.code, push.stderr).toBe(0);
  // Only the registry has it now: a running task proves the node pulled with the credentials.
  expect((await sh(["rmi", image])).code).toBe(0);
  tmpWatch = watchTmp(daemonTmp);
  const init = await dk(["swarm", "init"]);
  expect(init.code, init.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await tmpWatch?.stop();
  await reg?.stop();
  await d?.destroy();
  for (const dir of [dockerConfig, shoalConfig, daemonTmp])
    if (dir) await rm(dir, { recursive: true, force: true });
});

/** Base64 (standard or URL-safe) runs in `text` that decode to something holding `needle`. */
function base64Holding(text: string, needle: string): string[] {
  return (text.match(/[A-Za-z0-9+/_-]{16,}={0,2}/g) ?? []).filter((run) =>
    Buffer.from(run.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("latin1").includes(needle),
  );
}

/** Every regular file under `dir`. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe("secrets in views", () => {
  it("registry credentials reach the pulling node but no task or service view", async () => {
    const login = await dk(["login", "-u", USER, "--password-stdin", reg.host], Buffer.from(PASSWORD));
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
    const running = await until("a running task pulled from the private registry", async () =>
      (await tasksOf("priv")).find((x) => x.Status.State === "running"),
    );
    const svc = (await api(d.socket, "GET", "/services/priv")).json<{ ID: string }>();
    const bodies: Record<string, string> = {};
    for (const path of [
      "/tasks",
      `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: ["priv"] }))}`,
      `/tasks/${running.ID}`,
      "/services",
      "/services?status=true",
      `/services/${svc.ID}`,
      "/services/priv",
      "/v1.44/tasks",
      `/v1.44/services/${svc.ID}`,
    ]) {
      const res = await api(d.socket, "GET", path);
      expect(res.status, path).toBe(200);
      bodies[path] = res.body.toString("latin1");
    }
    // The task views do carry the spec (so the search below looks where the credentials were).
    expect(bodies[`/tasks/${running.ID}`]).toContain("ContainerSpec");
    for (const [path, body] of Object.entries(bodies)) {
      expect(body, path).not.toContain(PASSWORD);
      expect(body, path).not.toContain("RegistryAuth");
      expect(base64Holding(body, PASSWORD), path).toEqual([]);
    }
    const ps = await dk(["service", "ps", "--no-trunc", "--format", "{{json .}}", "priv"]);
    expect(ps.stdout).not.toContain(PASSWORD);
    expect(base64Holding(ps.stdout, PASSWORD)).toEqual([]);
  });
});

describe("autolock", () => {
  it("swarm init --autolock and swarm update --autolock are refused naming it", async () => {
    const init = await api(d.socket, "POST", "/swarm/init", {
      ListenAddr: "0.0.0.0:2377",
      AutoLockManagers: true,
    });
    expect(init.status).toBe(400);
    expect(init.json<{ message: string }>().message).toMatch(/--autolock is not supported.*swarm unlock/);
    const cli = await dk(["swarm", "init", "--autolock"]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain("--autolock is not supported");
    const update = await dk(["swarm", "update", "--autolock=true"]);
    expect(update.code).not.toBe(0);
    expect(update.stderr).toContain("--autolock");
    const info = await dk(["info", "--format", "{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}"]);
    expect(info.stdout.trim()).toBe("false");
  });
});

describe("the CA key and the temp folder", () => {
  it("issuing and renewing node certificates writes nothing to the daemon's temp folder", async () => {
    const token = (await dk(["swarm", "join-token", "-q", "worker"])).stdout.trim();
    const result = await runFixtureIn<{ issued: number; renewed: number }>(
      d.netns,
      resolve(repoRoot, "test/fixtures/ca-join-renew.mjs"),
      { addr: "127.0.0.1:2377", token, rounds: 3 },
    );
    expect(result).toEqual({ issued: 3, renewed: 3 });
    const watchResult = tmpWatch!;
    tmpWatch = undefined;
    await watchResult.stop();
    // swarm init (root CA, the manager's own certificate) and 3 joins and 3 renewals were signed.
    expect([...watchResult.withKey]).toEqual([]);
    expect([...watchResult.seen]).toEqual([]);
  }, 60_000);
});

describe("the Raft log at rest", () => {
  it("the WAL and snapshot files hold no CA key, join token or registry credential", async () => {
    // A few more writes, so the log has been snapshotted (every 10 entries here).
    for (let i = 0; i < 12; i++) {
      const v = (await api(d.socket, "GET", "/services/priv")).json<{ Version: { Index: number } }>().Version
        .Index;
      const spec = (await api(d.socket, "GET", "/services/priv")).json<{ Spec: Record<string, unknown> }>()
        .Spec;
      const res = await api(d.socket, "POST", `/services/priv/update?version=${v}`, {
        ...spec,
        Labels: { round: String(i) },
      });
      expect(res.status, res.body.toString()).toBe(200);
    }
    const raftDir = join(d.dataRoot, "swarm", "raft");
    await until("a snapshot file", async () =>
      (await readdir(join(raftDir, "snap")).catch(() => [])).some((n) => n.endsWith(".snap"))
        ? true
        : undefined,
    );
    const swarm = (await api(d.socket, "GET", "/swarm")).json<{
      JoinTokens: { Worker: string; Manager: string };
    }>();
    const tokens = [swarm.JoinTokens.Worker, swarm.JoinTokens.Manager];

    // What the store holds, read from a copy with the manager's data key.
    const copy = await mkdtemp("/tmp/shoal-atrest-raft-");
    try {
      await cp(raftDir, copy, { recursive: true });
      const disk = new NodeDisk();
      const cipher = await openDataKey(disk, copy);
      const quiet = { warn: () => undefined };
      const wal = await Wal.open(disk, join(copy, "wal"), { cipher, logger: quiet });
      const snap = await new Snapshotter(disk, join(copy, "snap"), {
        cipher,
        logger: quiet,
      }).loadNewestAvailable(wal.snapshotMarkers());
      const state = wal.readAll();
      await wal.close();
      const plain = Buffer.concat([
        Buffer.from(snap?.data ?? new Uint8Array(0)),
        ...state.entries.map((e) => Buffer.from(e.data)),
      ]).toString("latin1");
      const key = /-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----/.exec(plain);
      expect(key, "the CA key is in the store").not.toBeNull();
      // Its base64 lines, as they would sit in a plain file.
      const keyLines = key![1].split(/\s+/).filter((l) => l.length >= 40);
      expect(keyLines.length).toBeGreaterThan(0);
      const auth = /RegistryAuth.{1,3}([A-Za-z0-9+/_=-]{20,})/.exec(plain);
      expect(auth, "the registry credentials are in the store").not.toBeNull();
      for (const t of tokens) expect(plain).toContain(t);

      // The raw files: every byte of every WAL segment and snapshot.
      const files = [
        ...(await filesUnder(join(raftDir, "wal"))),
        ...(await filesUnder(join(raftDir, "snap"))),
      ];
      expect(files.some((f) => f.endsWith(".snap"))).toBe(true);
      expect(files.some((f) => f.endsWith(".wal"))).toBe(true);
      const needles = [...keyLines, "PRIVATE KEY", ...tokens, auth![1], PASSWORD];
      for (const f of files) {
        const raw = (await readFile(f)).toString("latin1");
        for (const n of needles) expect(raw.includes(n), `${n} in ${f}`).toBe(false);
      }
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  }, 60_000);
});
