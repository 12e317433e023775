import { posix } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Disk, DiskFile } from "../../manager/raft/disk.js";
import { FakeDisk } from "./helpers/fake-disk.js";
import { Snapshotter, snapshotFileName } from "../../manager/raft/snap/snapshotter.js";
import type { Snapshot } from "../../manager/raft/core/types.js";
import { captureLogger, diskKinds, writeBytes, type DiskEnv } from "./helpers/disk.js";
import { seededRand } from "./sim/rand.js";

function snap(index: number, term: number, size = 1000): Snapshot {
  return {
    metadata: { index, term, confState: { voters: [1, 2, 3], learners: index % 2 ? [9] : [] } },
    data: new Uint8Array(size).map((_, i) => (i * 13 + index) & 0xff),
  };
}

describe.each(diskKinds)("Snapshotter on $name", (kind) => {
  let env: DiskEnv;
  let dir: string;
  beforeEach(async () => {
    env = await kind.make();
    dir = posix.join(env.dir, "snap");
  });
  afterEach(() => env.cleanup());

  it("finds nothing in a missing or empty folder", async () => {
    const s = new Snapshotter(env.disk, dir, { logger: captureLogger() });
    expect(await s.loadNewestAvailable()).toBeUndefined();
    await env.disk.mkdir(dir);
    expect(await s.loadNewestAvailable()).toBeUndefined();
  });

  it("writes and loads the newest snapshot exactly, and keeps only the newest N", async () => {
    const s = new Snapshotter(env.disk, dir, { keep: 3, logger: captureLogger() });
    for (const [i, t] of [
      [10, 1],
      [20, 1],
      [30, 2],
      [40, 3],
      [50, 3],
    ]) {
      await s.save(snap(i, t));
    }
    expect(await env.disk.readdir(dir)).toEqual([
      snapshotFileName(2, 30),
      snapshotFileName(3, 40),
      snapshotFileName(3, 50),
    ]);
    const got = await s.loadNewestAvailable();
    expect(got).toEqual(snap(50, 3));
    expect(got?.data).toBeInstanceOf(Uint8Array);
    expect(await s.loadNewestAvailable([{ index: 40, term: 3 }])).toEqual(snap(40, 3));
    // An empty snapshot (no state yet) round-trips too.
    const empty: Snapshot = {
      metadata: { index: 60, term: 4, confState: { voters: [], learners: [] } },
      data: new Uint8Array(0),
    };
    await s.save(empty);
    expect(await s.loadNewestAvailable()).toEqual(empty);
  });

  it.each([
    ["a flipped data byte", (b: Uint8Array) => void (b[b.length - 5] ^= 1)],
    ["a flipped header byte", (b: Uint8Array) => void (b[2] ^= 1)],
    ["truncation", (b: Uint8Array) => b.slice(0, b.length - 100)],
    ["emptiness", () => new Uint8Array(0)],
  ])(
    "falls back to the previous snapshot when the newest has %s, setting it aside",
    async (_what, damage) => {
      const logger = captureLogger();
      const s = new Snapshotter(env.disk, dir, { logger });
      await s.save(snap(10, 1));
      await s.save(snap(20, 2));
      const newest = posix.join(dir, snapshotFileName(2, 20));
      const bytes = await env.disk.readFile(newest);
      await writeBytes(env.disk, newest, damage(bytes) ?? bytes);
      expect(await s.loadNewestAvailable()).toEqual(snap(10, 1));
      expect(await env.disk.readdir(dir)).toEqual([
        snapshotFileName(1, 10),
        `${snapshotFileName(2, 20)}.broken`,
      ]);
      expect(logger.warnings).toHaveLength(1);
      expect(logger.warnings[0].fields).toMatchObject({ file: newest });
    },
  );

  it("ignores, without deleting, a snapshot whose WAL marker was never written", async () => {
    const s = new Snapshotter(env.disk, dir, { logger: captureLogger() });
    await s.save(snap(10, 1));
    await s.save(snap(20, 2));
    expect(await s.loadNewestAvailable([{ index: 10, term: 1 }])).toEqual(snap(10, 1));
    expect(await s.loadNewestAvailable([])).toBeUndefined();
    expect(await env.disk.readdir(dir)).toEqual([snapshotFileName(1, 10), snapshotFileName(2, 20)]);
  });

  it("refuses a file whose content does not match its name", async () => {
    const s = new Snapshotter(env.disk, dir, { logger: captureLogger() });
    await s.save(snap(10, 1));
    await s.save(snap(20, 2));
    await env.disk.rename(posix.join(dir, snapshotFileName(1, 10)), posix.join(dir, snapshotFileName(3, 30)));
    expect(await s.loadNewestAvailable()).toEqual(snap(20, 2));
    expect(await env.disk.readdir(dir)).toContain(`${snapshotFileName(3, 30)}.broken`);
  });
});

/** Delegates to a FakeDisk, calling `at` before chosen steps so a test can crash there. */
class StepDisk implements Disk {
  constructor(
    readonly inner: FakeDisk,
    private readonly at: (step: "sync" | "rename" | "syncDir") => void,
  ) {}
  async open(path: string, mode: "create" | "existing"): Promise<DiskFile> {
    const f = await this.inner.open(path, mode);
    const at = this.at;
    return {
      path: f.path,
      write: (d, p) => f.write(d, p),
      datasync: () => f.datasync(),
      sync: () => (at("sync"), f.sync()),
      truncate: (n) => f.truncate(n),
      size: () => f.size(),
      close: () => f.close(),
    };
  }
  readFile = (p: string) => this.inner.readFile(p);
  readdir = (p: string) => this.inner.readdir(p);
  rename = (a: string, b: string) => (this.at("rename"), this.inner.rename(a, b));
  unlink = (p: string) => this.inner.unlink(p);
  mkdir = (p: string) => this.inner.mkdir(p);
  syncDir = (p: string) => (this.at("syncDir"), this.inner.syncDir(p));
}

describe("Snapshotter under simulated power loss (FakeDisk)", () => {
  it.each(["sync", "rename", "syncDir"] as const)(
    "a crash before the new snapshot's %s leaves the old one loadable",
    async (step) => {
      for (let seed = 1; seed <= 50; seed++) {
        const base = new FakeDisk();
        await new Snapshotter(base, "/snap", { logger: captureLogger() }).save(snap(10, 1));
        let after: FakeDisk | undefined;
        const disk = new StepDisk(base, (s) => {
          if (s === step && !after) after = base.crash(seededRand(seed));
        });
        await expect(
          new Snapshotter(disk, "/snap", { logger: captureLogger() }).save(snap(20, 2)),
        ).rejects.toThrow(/crashed/);
        const s = new Snapshotter(after!, "/snap", { logger: captureLogger() });
        const got = await s.loadNewestAvailable();
        // The new one only if it is complete; the old one otherwise; never nothing, never a torn mix.
        if (step === "syncDir" && got?.metadata.index === 20) expect(got).toEqual(snap(20, 2));
        else expect(got).toEqual(snap(10, 1));
        expect((await after!.readdir("/snap")).filter((n) => n.endsWith(".tmp"))).toEqual([]);
      }
    },
  );

  it("a snapshot whose save resolved survives any crash", async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const disk = new FakeDisk();
      const s = new Snapshotter(disk, "/snap", { keep: 2, logger: captureLogger() });
      await s.save(snap(10, 1));
      await s.save(snap(20, 2));
      await s.save(snap(30, 2));
      const after = disk.crash(seededRand(seed));
      expect(
        await new Snapshotter(after, "/snap", { logger: captureLogger() }).loadNewestAvailable(),
      ).toEqual(snap(30, 2));
    }
  });
});
