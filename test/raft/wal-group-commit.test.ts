import { setImmediate as tick } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { FakeDisk } from "./helpers/fake-disk.js";
import { Wal, WalFailedError } from "../../manager/raft/wal/wal.js";
import { captureLogger, diskKinds, entries, entry } from "./helpers/disk.js";

async function freshWal(): Promise<{ disk: FakeDisk; wal: Wal }> {
  const disk = new FakeDisk();
  const wal = await Wal.open(disk, "/wal", { logger: captureLogger() });
  return { disk, wal };
}

/** The WAL as a restart would find it if the power went now (nothing unsynced kept). */
async function durableIndexes(disk: FakeDisk): Promise<number[]> {
  const wal = await Wal.open(disk.durableCopy(), "/wal", { logger: captureLogger() });
  return wal.readAll().entries.map((e) => e.index);
}

describe("WAL group commit", () => {
  it("batches 100 concurrent saves into few fdatasyncs, each resolving only once durable", async () => {
    const { disk, wal } = await freshWal();
    // Keep each sync in flight for a moment, as a real disk does.
    disk.syncHook = () => tick();
    const before = disk.stats.datasyncs;
    const durableAtResolve = new Map<number, FakeDisk>();
    const order: number[] = [];
    const saves: Promise<void>[] = [];
    for (let i = 1; i <= 100; i++) {
      saves.push(
        wal.save({ term: 1, vote: 1, commit: i - 1 }, [entry(i, 1)]).then(() => {
          order.push(i);
          durableAtResolve.set(i, disk.durableCopy());
        }),
      );
      // Callers arrive over time, not all in one tick.
      if (i % 10 === 0) await tick();
    }
    await Promise.all(saves);
    const syncs = disk.stats.datasyncs - before;
    expect(syncs).toBeGreaterThan(1);
    expect(syncs).toBeLessThanOrEqual(20);
    expect(order).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (const [i, copy] of durableAtResolve) {
      const replayed = await durableIndexes(copy);
      expect(replayed.length).toBeGreaterThanOrEqual(i);
      expect(replayed[i - 1]).toBe(i);
    }
    await wal.close();
  });

  it("coalesces every call made while a sync is in flight into the next one", async () => {
    const { disk, wal } = await freshWal();
    let release: (() => void) | undefined;
    disk.syncHook = () => new Promise<void>((r) => (release = r));
    const before = disk.stats.datasyncs;
    let firstDone = false;
    const first = wal.save(undefined, [entry(1, 1)]).then(() => (firstDone = true));
    await tick();
    expect(disk.stats.datasyncs - before).toBe(1);
    const rest = Array.from({ length: 99 }, (_, k) => wal.save(undefined, [entry(k + 2, 1)]));
    await tick();
    expect(firstDone).toBe(false);
    expect(await durableIndexes(disk)).toEqual([]);
    release!();
    await first;
    await tick();
    // Exactly one more sync covers all 99 waiting calls.
    expect(disk.stats.datasyncs - before).toBe(2);
    release!();
    await Promise.all(rest);
    expect(disk.stats.datasyncs - before).toBe(2);
    expect((await durableIndexes(disk)).length).toBe(100);
    disk.syncHook = undefined;
    await wal.close();
  });

  it("fails every pending and later save once a sync fails", async () => {
    const { disk, wal } = await freshWal();
    await wal.save(undefined, entries(1, 2, 1));
    disk.failSync = () => true;
    const a = wal.save(undefined, entries(3, 3, 1));
    const b = wal.save(undefined, entries(4, 4, 1));
    await expect(a).rejects.toBeInstanceOf(WalFailedError);
    await expect(b).rejects.toBeInstanceOf(WalFailedError);
    disk.failSync = undefined;
    await expect(wal.save(undefined, entries(5, 5, 1))).rejects.toThrow(/unusable until restart/);
  });

  it.each(diskKinds)("syncs once per batch on $name too", async (kind) => {
    const env = await kind.make();
    try {
      const wal = await Wal.open(env.disk, `${env.dir}/wal`, { logger: captureLogger() });
      await Promise.all(Array.from({ length: 50 }, (_, k) => wal.save(undefined, [entry(k + 1, 1)])));
      await wal.close();
      const again = await Wal.open(env.disk, `${env.dir}/wal`, { logger: captureLogger() });
      expect(again.readAll().entries.length).toBe(50);
      await again.close();
    } finally {
      await env.cleanup();
    }
  });
});
