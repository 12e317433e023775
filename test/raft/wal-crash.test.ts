import { setImmediate as tick } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { FakeDisk } from "./helpers/fake-disk.js";
import type { Entry, HardState } from "../../manager/raft/core/types.js";
import { Wal, type WalState } from "../../manager/raft/wal/wal.js";
import { captureLogger, entry } from "./helpers/disk.js";
import { seededRand } from "./sim/rand.js";

// A model of what replay must give after each record, in the order records are queued. After a
// crash the WAL must replay to the state after some record at or past the last acknowledged one:
// nothing acknowledged lost, nothing invented, never a refusal to start.

interface ModelState {
  hardState: HardState;
  log: Map<number, Entry>;
  last: number;
  snap: number;
}

function view(m: ModelState): Omit<WalState, "snapshotMarker"> & { snap: number } {
  const ents: Entry[] = [];
  for (let i = m.snap + 1; i <= m.last; i++) ents.push(m.log.get(i)!);
  return {
    hardState: { ...m.hardState, commit: Math.max(m.hardState.commit, m.snap) },
    entries: ents,
    snap: m.snap,
  };
}

function canon(v: Omit<WalState, "snapshotMarker"> & { snap: number }): string {
  const ents = v.entries.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString("hex")]);
  return JSON.stringify([v.hardState.term, v.hardState.vote, v.hardState.commit, v.snap, ents]);
}

interface Coverage {
  repairs: number;
  lostUnacked: number;
  multiSegment: number;
  released: number;
}

async function runSeed(seed: number, cov: Coverage): Promise<void> {
  const rand = seededRand(seed);
  const int = (n: number) => Math.floor(rand() * n);
  let disk = new FakeDisk();
  const segmentBytes = 256 + int(2048);
  const holdSyncs = (d: FakeDisk) => {
    d.syncHook = async () => {
      for (let k = int(3); k > 0; k--) await tick();
    };
  };

  const model: ModelState = { hardState: { term: 0, vote: 0, commit: 0 }, log: new Map(), last: 0, snap: 0 };
  // views[k] = replayed state after k records; acked = records covered by acknowledged saves.
  let views = [view(model)];
  let acked = 0;
  let term = 1;

  for (let round = 0; round < 3; round++) {
    holdSyncs(disk);
    const wal = await Wal.open(disk, "/wal", { segmentBytes, logger: captureLogger() });
    const got = wal.readAll();
    if (wal.repaired) cov.repairs++;
    const files = wal.segmentFiles();
    if (files.length > 1) cov.multiSegment++;
    if (!files[0].startsWith("0000000000000000-")) cov.released++;
    const seen = { hardState: got.hardState, entries: got.entries, snap: got.snapshotMarker?.index ?? 0 };
    const k = views.findIndex((v, i) => i >= acked && canon(v) === canon(seen));
    expect(
      k,
      `seed ${seed} round ${round}: replay matches no state at or after acknowledged #${acked}`,
    ).toBeGreaterThanOrEqual(0);
    if (k < views.length - 1) cov.lostUnacked++;
    // Continue the model from what survived.
    const kept = views[k];
    model.hardState = { ...kept.hardState };
    model.log = new Map(kept.entries.map((e) => [e.index, e]));
    model.snap = kept.snap;
    model.last = kept.entries.length ? kept.entries[kept.entries.length - 1].index : kept.snap;
    views = [view(model)];
    acked = 0;
    term = Math.max(term, model.hardState.term) + 1;

    const inFlight: Promise<void>[] = [];
    const ops = 5 + int(40);
    for (let op = 0; op < ops; op++) {
      const r = rand();
      if (r < 0.75) {
        const overwrite = rand() < 0.2 && model.last > model.hardState.commit && model.last > model.snap;
        const from = overwrite
          ? Math.max(model.hardState.commit, model.snap) +
            1 +
            int(model.last - Math.max(model.hardState.commit, model.snap))
          : model.last + 1;
        if (overwrite) term++;
        const ents = Array.from({ length: 1 + int(5) }, (_, j) => {
          const data = new Uint8Array(int(120)).map(() => int(256));
          return entry(from + j, term, data);
        });
        for (const e of ents) model.log.set(e.index, e);
        model.last = from + ents.length - 1;
        views.push(view(model));
        let hs: HardState | undefined;
        if (rand() < 0.7) {
          hs = { term, vote: 1 + int(3), commit: Math.min(model.last, model.hardState.commit + int(4)) };
          model.hardState = hs;
          views.push(view(model));
        }
        const upTo = views.length - 1;
        inFlight.push(wal.save(hs, ents).then(() => void (acked = Math.max(acked, upTo))));
      } else if (model.hardState.commit > model.snap) {
        const index = model.snap + 1 + int(model.hardState.commit - model.snap);
        const mTerm = model.log.get(index)!.term;
        model.snap = index;
        views.push(view(model));
        const upTo = views.length - 1;
        const p = wal.saveSnapshotMarker({ index, term: mTerm }).then(() => {
          acked = Math.max(acked, upTo);
          return wal.releaseTo(index);
        });
        inFlight.push(p);
      }
      if (rand() < 0.3) await tick();
    }
    for (let t = int(8); t > 0; t--) await tick();
    for (const p of inFlight) p.catch(() => undefined);
    disk = disk.crash(rand);
  }
}

describe("WAL under simulated power loss (FakeDisk)", () => {
  it("never loses an acknowledged save, never invents one, always restarts (300 seeds)", async () => {
    const cov: Coverage = { repairs: 0, lostUnacked: 0, multiSegment: 0, released: 0 };
    for (let seed = 1; seed <= 300; seed++) await runSeed(seed, cov);
    // The scenarios this is meant to reach are reached, often.
    expect(cov.repairs).toBeGreaterThan(10);
    expect(cov.lostUnacked).toBeGreaterThan(100);
    expect(cov.multiSegment).toBeGreaterThan(100);
    expect(cov.released).toBeGreaterThan(50);
  });

  it("keeps what was synced and drops what was not", async () => {
    let disk = new FakeDisk();
    let wal = await Wal.open(disk, "/wal", { logger: captureLogger() });
    await wal.save({ term: 1, vote: 1, commit: 0 }, [entry(1, 1), entry(2, 1)]);
    const f = await disk.open("/wal/unsynced", "create");
    await f.write(new Uint8Array([1, 2, 3]), 0);
    // A crash that keeps nothing unsynced.
    disk = disk.crash(() => 0);
    await expect(wal.save(undefined, [entry(3, 1)])).rejects.toThrow(/crashed/);
    expect(await disk.readdir("/wal")).toEqual(["0000000000000000-0000000000000001.wal"]);
    wal = await Wal.open(disk, "/wal", { logger: captureLogger() });
    expect(wal.readAll().entries.map((e) => e.index)).toEqual([1, 2]);
    await wal.close();
  });

  it("is deterministic for a given rand", async () => {
    const outcome = async (): Promise<string> => {
      const disk = new FakeDisk();
      const wal = await Wal.open(disk, "/wal", { logger: captureLogger() });
      await wal.save(undefined, [entry(1, 1)]);
      disk.syncHook = () => new Promise(() => undefined); // never completes: all later writes unsynced
      for (let i = 2; i <= 6; i++) void wal.save({ term: 1, vote: 0, commit: i - 1 }, [entry(i, 1)]);
      await tick();
      const after = disk.crash(seededRand(42));
      return Buffer.from(await after.readFile("/wal/0000000000000000-0000000000000001.wal")).toString("hex");
    };
    expect(await outcome()).toBe(await outcome());
  });
});
