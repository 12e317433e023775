import { posix } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Wal } from "../../manager/raft/wal/wal.js";
import type { Entry } from "../../manager/raft/core/types.js";
import { captureLogger, diskKinds, entries, entry, type DiskEnv } from "./helpers/disk.js";

describe.each(diskKinds)("WAL replay on $name", (kind) => {
  let env: DiskEnv;
  let walDir: string;
  beforeEach(async () => {
    env = await kind.make();
    walDir = posix.join(env.dir, "wal");
  });
  afterEach(() => env.cleanup());

  const open = (segmentBytes?: number): Promise<Wal> =>
    Wal.open(env.disk, walDir, { segmentBytes, logger: captureLogger() });

  it("starts empty, and round-trips hard states and entries across reopen", async () => {
    expect(await Wal.exists(env.disk, walDir)).toBe(false);
    let wal = await open();
    expect(await Wal.exists(env.disk, walDir)).toBe(true);
    expect(wal.readAll()).toEqual({
      hardState: { term: 0, vote: 0, commit: 0 },
      entries: [],
      snapshotMarker: undefined,
    });
    const binary = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
    const written: Entry[] = [
      entry(1, 1, new Uint8Array(0)),
      { index: 2, term: 1, type: "conf_change", data: new Uint8Array([0, 1, 2, 255]) },
      entry(3, 2, binary),
    ];
    await wal.save({ term: 1, vote: 3, commit: 0 }, written.slice(0, 2));
    await wal.save({ term: 2, vote: 0, commit: 2 }, written.slice(2));
    await wal.save({ term: 2, vote: 0, commit: 3 }, []);
    await wal.close();

    wal = await open();
    const state = wal.readAll();
    expect(state.hardState).toEqual({ term: 2, vote: 0, commit: 3 });
    expect(state.entries).toEqual(written);
    expect(state.entries[2].data).toBeInstanceOf(Uint8Array);
    expect(wal.repaired).toBeUndefined();
    // Appending after a reopen continues the same log.
    await wal.save(undefined, [entry(4, 2)]);
    await wal.close();
    wal = await open();
    expect(wal.readAll().entries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    await wal.close();
  });

  it("replays an overwritten suffix as Raft appended it", async () => {
    let wal = await open();
    await wal.save({ term: 1, vote: 1, commit: 0 }, entries(1, 10, 1));
    await wal.save({ term: 2, vote: 2, commit: 5 }, entries(6, 8, 2)); // 6..10 of term 1 replaced
    await wal.save(undefined, entries(9, 9, 2));
    await wal.save({ term: 3, vote: 3, commit: 5 }, entries(7, 7, 3)); // 7.. replaced again
    await wal.close();
    wal = await open();
    const s = wal.readAll();
    expect(s.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 1],
      [6, 2],
      [7, 3],
    ]);
    expect(s.entries[6]).toEqual(entry(7, 3));
    expect(s.hardState).toEqual({ term: 3, vote: 3, commit: 5 });
    await wal.close();
  });

  it("starts the log at the last snapshot marker; a mismatching snapshot replaces the log", async () => {
    let wal = await open();
    await wal.save({ term: 1, vote: 1, commit: 20 }, entries(1, 30, 1));
    await wal.saveSnapshotMarker({ index: 20, term: 1 });
    await wal.close();
    wal = await open();
    let s = wal.readAll();
    expect(s.snapshotMarker).toEqual({ index: 20, term: 1 });
    expect(s.entries.map((e) => e.index)).toEqual(entries(21, 30, 1).map((e) => e.index));
    expect(wal.snapshotMarkers()).toEqual([{ index: 20, term: 1 }]);

    // A snapshot received from a leader whose term at 25 differs: our 21..30 are not its history.
    await wal.saveSnapshotMarker({ index: 25, term: 4 });
    await wal.save({ term: 4, vote: 0, commit: 20 }, entries(26, 27, 4));
    await wal.close();
    wal = await open();
    s = wal.readAll();
    expect(s.snapshotMarker).toEqual({ index: 25, term: 4 });
    expect(s.entries.map((e) => [e.index, e.term])).toEqual([
      [26, 4],
      [27, 4],
    ]);
    // The snapshot is committed by definition, even if the hard state saying so was lost.
    expect(s.hardState.commit).toBe(25);
    await wal.close();

    // Starting from the older snapshot is refused: 21..25 of that history are gone.
    wal = await open();
    expect(() => wal.readAll({ index: 20, term: 1 })).toThrow(/replaced the log/);
    await wal.close();
  });

  it("can replay from an older marker when the newer snapshot only compacted", async () => {
    let wal = await open();
    await wal.save({ term: 1, vote: 1, commit: 30 }, entries(1, 40, 1));
    await wal.saveSnapshotMarker({ index: 10, term: 1 });
    await wal.saveSnapshotMarker({ index: 30, term: 1 });
    await wal.close();
    wal = await open();
    const s = wal.readAll({ index: 10, term: 1 });
    expect(s.snapshotMarker).toEqual({ index: 10, term: 1 });
    expect(s.entries[0].index).toBe(11);
    expect(s.entries.length).toBe(30);
    await wal.close();
    wal = await open();
    expect(() => wal.readAll({ index: 11, term: 1 })).toThrow(/no snapshot marker/);
    await wal.close();
  });

  it("cuts segments at the size setting and releases those wholly before a snapshot", async () => {
    let wal = await open(1024);
    const big = (i: number, t: number): Entry => entry(i, t, new Uint8Array(200).fill(i & 0xff));
    for (let i = 1; i <= 40; i++) await wal.save({ term: 1, vote: 1, commit: i - 1 }, [big(i, 1)]);
    const files = wal.segmentFiles();
    expect(files.length).toBeGreaterThan(5);
    expect(files[0]).toBe("0000000000000000-0000000000000001.wal");
    // Each name's firstIndex is one past the log's end when the segment was cut.
    const firsts = files.map((f) => parseInt(f.slice(17, 33), 16));
    expect(firsts).toEqual([...firsts].sort((a, b) => a - b));
    for (const f of files)
      expect((await env.disk.readFile(posix.join(walDir, f))).length).toBeLessThan(1024 + 300);

    await wal.saveSnapshotMarker({ index: 25, term: 1 });
    await wal.releaseTo(25);
    const kept = wal.segmentFiles();
    const keptFirsts = kept.map((f) => parseInt(f.slice(17, 33), 16));
    expect(keptFirsts[0]).toBeLessThanOrEqual(25);
    expect(keptFirsts.length < 2 || keptFirsts[1] > 25).toBe(true);
    expect((await env.disk.readdir(walDir)).filter((n) => n.endsWith(".wal"))).toEqual(kept);
    await wal.save(undefined, [big(41, 2)]);
    await wal.close();

    wal = await open(1024);
    const s = wal.readAll();
    expect(s.snapshotMarker).toEqual({ index: 25, term: 1 });
    expect(s.entries.map((e) => e.index)).toEqual(Array.from({ length: 16 }, (_, i) => 26 + i));
    expect(s.entries[15]).toEqual(big(41, 2));
    expect(s.hardState).toEqual({ term: 1, vote: 1, commit: 39 });
    // Releasing everything keeps at most the current segment and the one holding the marker.
    await wal.saveSnapshotMarker({ index: 41, term: 2 });
    await wal.releaseTo(41);
    expect(wal.segmentFiles().length).toBeLessThanOrEqual(2);
    await wal.close();
    wal = await open(1024);
    expect(wal.readAll()).toMatchObject({ entries: [], snapshotMarker: { index: 41, term: 2 } });
    await wal.close();
  });

  it("keeps the marker when a segment was cut right after it", async () => {
    let wal = await open(300);
    for (let i = 1; i <= 6; i++) await wal.save(undefined, [entry(i, 1, new Uint8Array(200))]);
    await wal.saveSnapshotMarker({ index: 6, term: 1 });
    await wal.save({ term: 1, vote: 1, commit: 6 }, [entry(7, 1)]);
    const files = wal.segmentFiles();
    // The marker sits in the segment before the one that starts at 7.
    expect(files[files.length - 1]).toMatch(/-0000000000000007\.wal$/);
    await wal.releaseTo(6);
    expect(wal.segmentFiles().length).toBe(2);
    await wal.close();
    wal = await open(300);
    expect(wal.readAll()).toMatchObject({ snapshotMarker: { index: 6, term: 1 }, entries: [entry(7, 1)] });
    await wal.close();
  });

  it("keeps the hard state when the segments that recorded it are released", async () => {
    let wal = await open(300);
    await wal.save({ term: 5, vote: 2, commit: 0 }, []);
    for (let i = 1; i <= 30; i++) await wal.save(undefined, [entry(i, 5, new Uint8Array(50))]);
    await wal.saveSnapshotMarker({ index: 30, term: 5 });
    await wal.save(undefined, [entry(31, 5)]);
    await wal.releaseTo(30);
    expect(wal.segmentFiles().length).toBeLessThanOrEqual(2);
    expect(wal.segmentFiles()[0]).not.toMatch(/^0000000000000000-/);
    await wal.close();
    wal = await open(300);
    expect(wal.readAll()).toEqual({
      hardState: { term: 5, vote: 2, commit: 30 },
      entries: [entry(31, 5)],
      snapshotMarker: { index: 30, term: 5 },
    });
    await wal.close();
  });

  it("refuses a gap in segment numbers", async () => {
    const wal = await open(256);
    for (let i = 1; i <= 20; i++) await wal.save(undefined, [entry(i, 1, new Uint8Array(100))]);
    const files = wal.segmentFiles();
    await wal.close();
    await env.disk.unlink(posix.join(walDir, files[1]));
    await expect(open(256)).rejects.toMatchObject({
      name: "WalCorruptError",
      file: posix.join(walDir, files[2]),
      offset: 0,
    });
  });

  it("deletes a half-made segment left by a crash", async () => {
    const wal = await open();
    await wal.save(undefined, entries(1, 3, 1));
    await wal.close();
    const f = await env.disk.open(posix.join(walDir, "0000000000000001-0000000000000004.wal.tmp"), "create");
    await f.write(new Uint8Array([1, 2, 3]), 0);
    await f.close();
    const again = await open();
    expect(again.readAll().entries.length).toBe(3);
    expect(await env.disk.readdir(walDir)).toEqual(["0000000000000000-0000000000000001.wal"]);
    await again.close();
  });

  it("refuses entries that would leave a gap, or are not consecutive", async () => {
    const wal = await open();
    await wal.save(undefined, entries(1, 3, 1));
    await expect(wal.save(undefined, entries(5, 6, 1))).rejects.toThrow(/start at 5 but the log ends at 3/);
    await expect(wal.save(undefined, [entry(4, 1), entry(6, 1)])).rejects.toThrow(/does not follow/);
    // Still usable: nothing was queued.
    await wal.save(undefined, entries(4, 4, 1));
    await wal.close();
    const again = await open();
    expect(again.readAll().entries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    await again.close();
  });

  it("rejects saves after close", async () => {
    const wal = await open();
    const p = wal.save(undefined, entries(1, 1, 1));
    await wal.close();
    await p;
    await expect(wal.save(undefined, entries(2, 2, 1))).rejects.toThrow(/closed/);
  });
});
