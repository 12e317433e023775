// The WAL and the snapshots sealed with the member's data key: what reaches the disk holds no
// plain entry bytes, a changed byte or another key is refused naming the file, a missing key is
// refused without setting anything aside, and the plain files of an older version are rewritten
// sealed at open (also after a crash part way through).
import { posix } from "node:path";
import { stat } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Wal, WalCorruptError } from "../../manager/raft/wal/wal.js";
import { Snapshotter, SnapshotCorruptError } from "../../manager/raft/snap/snapshotter.js";
import { DecryptError, RecordCipher } from "../../manager/raft/encryption.js";
import { DATA_KEY_FILE, openDataKey } from "../../manager/raft/data-key.js";
import { crc32 } from "../../manager/raft/wal/crc.js";
import type { Disk } from "../../manager/raft/disk.js";
import type { Snapshot } from "../../manager/raft/core/types.js";
import { RaftNode, type StateMachine } from "../../manager/raft/driver/node.js";
import { seededRand } from "./sim/rand.js";
import { captureLogger, diskKinds, entry, writeBytes, type DiskEnv } from "./helpers/disk.js";

const SECRET = "-----BEGIN PRIVATE KEY-----MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";
const secretEntry = (i: number) => entry(i, 1, new TextEncoder().encode(`${SECRET}#${i}`));

/** Whether `needle` occurs anywhere in `hay`. */
function contains(hay: Uint8Array, needle: string): boolean {
  return Buffer.from(hay).includes(Buffer.from(needle));
}

function snapshot(index: number): Snapshot {
  return {
    metadata: { index, term: 1, confState: { voters: [1], learners: [] } },
    data: new TextEncoder().encode(`${SECRET} store at ${index}`),
  };
}

describe("RecordCipher", () => {
  const aad = new TextEncoder().encode("where");
  it("opens what it sealed, and refuses a changed byte or another key naming the file", () => {
    const c = new RecordCipher(RecordCipher.generateKey());
    const sealed = c.seal(new TextEncoder().encode(SECRET), aad);
    expect(contains(sealed, SECRET)).toBe(false);
    expect(new TextDecoder().decode(c.open(sealed, aad, "/x/f", "the record"))).toBe(SECRET);
    for (let i = 0; i < sealed.length; i += 7) {
      const bad = sealed.slice();
      bad[i] ^= 1;
      expect(() => c.open(bad, aad, "/x/f", "the record")).toThrow(DecryptError);
    }
    const other = new RecordCipher(RecordCipher.generateKey());
    expect(() => other.open(sealed, aad, "/x/f", "the record")).toThrow(
      /cannot decrypt the record in \/x\/f/,
    );
    expect(() => c.open(sealed, new TextEncoder().encode("elsewhere"), "/x/f", "the record")).toThrow(
      DecryptError,
    );
  });
});

describe.each(diskKinds)("encryption at rest on $name", (kind) => {
  let env: DiskEnv;
  let walDir: string;
  let snapDir: string;
  let cipher: RecordCipher;
  beforeEach(async () => {
    env = await kind.make();
    walDir = posix.join(env.dir, "wal");
    snapDir = posix.join(env.dir, "snap");
    cipher = new RecordCipher(RecordCipher.generateKey());
  });
  afterEach(() => env.cleanup());

  const segmentPaths = async () =>
    (await env.disk.readdir(walDir)).filter((n) => n.endsWith(".wal")).map((n) => posix.join(walDir, n));
  const rawWal = async () => Promise.all((await segmentPaths()).map((p) => env.disk.readFile(p)));

  async function writeWal(c: RecordCipher | undefined, n: number, segmentBytes?: number): Promise<void> {
    const wal = await Wal.open(env.disk, walDir, { cipher: c, segmentBytes, logger: captureLogger() });
    for (let i = 1; i <= n; i++) await wal.save({ term: 1, vote: 1, commit: i }, [secretEntry(i)]);
    await wal.close();
  }

  it("WAL: no plain entry bytes on disk; the same key replays every entry", async () => {
    await writeWal(cipher, 20, 600);
    expect((await segmentPaths()).length).toBeGreaterThan(1);
    for (const b of await rawWal()) expect(contains(b, SECRET)).toBe(false);
    const wal = await Wal.open(env.disk, walDir, { cipher, logger: captureLogger() });
    const s = wal.readAll();
    expect(s.entries.map((e) => new TextDecoder().decode(e.data))).toEqual(
      Array.from({ length: 20 }, (_, i) => `${SECRET}#${i + 1}`),
    );
    expect(s.hardState.commit).toBe(20);
    await wal.close();
  });

  it("WAL: another key, no key, or a changed record (CRC made to match) is refused naming the file", async () => {
    await writeWal(cipher, 5);
    const [path] = await segmentPaths();
    const other = new RecordCipher(RecordCipher.generateKey());
    await expect(Wal.open(env.disk, walDir, { cipher: other, logger: captureLogger() })).rejects.toThrow(
      new RegExp(`WAL corrupt: ${path} at offset \\d+: cannot decrypt`),
    );
    await expect(Wal.open(env.disk, walDir, { logger: captureLogger() })).rejects.toThrow(
      /encrypted and no Raft data key was given/,
    );

    // An attacker who can write the file changes a byte of the second record and fixes its CRC.
    const buf = (await env.disk.readFile(path)).slice();
    const view = new DataView(buf.buffer);
    let off = 8 + view.getUint32(0, true); // past the header
    const salt = view.getUint32(4, true);
    off += 8 + view.getUint32(off, true); // past the first record
    const len = view.getUint32(off, true);
    buf[off + 8 + 20] ^= 0x40;
    view.setUint32(off + 4, crc32(buf.subarray(off + 8, off + 8 + len), salt), true);
    await writeBytes(env.disk, path, buf);
    const e = await Wal.open(env.disk, walDir, { cipher, logger: captureLogger() }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WalCorruptError);
    expect(e).toMatchObject({ file: path, offset: off });
    expect(String(e)).toMatch(/cannot decrypt the WAL record/);
  });

  it("WAL: a torn sealed tail is still cut like a plain one", async () => {
    await writeWal(cipher, 5);
    const [path] = await segmentPaths();
    const full = await env.disk.readFile(path);
    await writeBytes(env.disk, path, full.slice(0, full.length - 10));
    const logger = captureLogger();
    const wal = await Wal.open(env.disk, walDir, { cipher, logger });
    expect(wal.repaired).toMatchObject({ file: path });
    // The last record is the fifth save's hard state: the entries stay, the commit goes back.
    const s = wal.readAll();
    expect(s.entries.map((x) => x.index)).toEqual([1, 2, 3, 4, 5]);
    expect(s.hardState.commit).toBe(4);
    await wal.close();
  });

  it("WAL: plain segments of an older version are rewritten sealed at open, and it goes on from there", async () => {
    await writeWal(undefined, 20, 600);
    const before = await segmentPaths();
    expect(before.length).toBeGreaterThan(1);
    expect((await rawWal()).some((b) => contains(b, SECRET))).toBe(true);

    const logger = captureLogger();
    const wal = await Wal.open(env.disk, walDir, { cipher, segmentBytes: 600, logger });
    expect(logger.warnings.map((w) => w.msg)).toContain(
      "raft WAL: plain segments from an older version rewritten encrypted",
    );
    expect(await segmentPaths()).toEqual(before);
    for (const b of await rawWal()) expect(contains(b, SECRET)).toBe(false);
    expect(wal.readAll().entries.map((e) => e.index)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await wal.save({ term: 1, vote: 1, commit: 21 }, [secretEntry(21)]);
    await wal.close();

    const again = await Wal.open(env.disk, walDir, { cipher, logger: captureLogger() });
    expect(again.readAll().entries.map((e) => e.index)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    await again.close();
    for (const b of await rawWal()) expect(contains(b, SECRET)).toBe(false);
  });

  it("WAL: a crash after some segments were sealed leaves a WAL the next open finishes", async () => {
    await writeWal(undefined, 20, 600);
    const n = (await segmentPaths()).length;
    expect(n).toBeGreaterThan(2);
    // The second rename (sealing the second segment) fails, as a crash there would leave it.
    let renames = 0;
    const failing: Disk = Object.create(env.disk) as Disk;
    failing.rename = async (from, to) => {
      if (++renames === 2) throw new Error("crash");
      return env.disk.rename(from, to);
    };
    await expect(Wal.open(failing, walDir, { cipher, logger: captureLogger() })).rejects.toThrow("crash");
    const wal = await Wal.open(env.disk, walDir, { cipher, logger: captureLogger() });
    expect(wal.readAll().entries.map((e) => e.index)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await wal.close();
    for (const b of await rawWal()) expect(contains(b, SECRET)).toBe(false);
    expect((await env.disk.readdir(walDir)).filter((x) => x.endsWith(".tmp"))).toEqual([]);
  });

  it("snapshots: sealed on disk, loaded with the key, set aside when changed, refused (kept) without a key", async () => {
    const s = new Snapshotter(env.disk, snapDir, { cipher, logger: captureLogger() });
    await s.save(snapshot(10));
    const [f] = await s.list();
    const path = posix.join(snapDir, f.name);
    expect(contains(await env.disk.readFile(path), SECRET)).toBe(false);
    expect(await s.loadNewestAvailable()).toEqual(snapshot(10));

    await expect(
      new Snapshotter(env.disk, snapDir, { logger: captureLogger() }).loadNewestAvailable(),
    ).rejects.toThrow(new RegExp(`snapshot ${path} is encrypted and no Raft data key was given`));
    expect(await env.disk.readdir(snapDir)).toEqual([f.name]);

    const other = new RecordCipher(RecordCipher.generateKey());
    await expect(new Snapshotter(env.disk, snapDir, { cipher: other }).load(path)).rejects.toThrow(
      SnapshotCorruptError,
    );

    // A changed byte with its CRC made to match: the snapshot does not open and is set aside.
    const buf = (await env.disk.readFile(path)).slice();
    buf[40] ^= 1;
    new DataView(buf.buffer).setUint32(12, crc32(buf.subarray(24)), true);
    await writeBytes(env.disk, path, buf);
    const logger = captureLogger();
    expect(
      await new Snapshotter(env.disk, snapDir, { cipher, logger }).loadNewestAvailable(),
    ).toBeUndefined();
    expect(logger.warnings[0].fields).toMatchObject({ file: path });
    expect(String(logger.warnings[0].fields.reason)).toMatch(/cannot decrypt the snapshot/);
  });

  it("snapshots: plain files of an older version are rewritten sealed at load", async () => {
    const plain = new Snapshotter(env.disk, snapDir, { logger: captureLogger() });
    await plain.save(snapshot(10));
    await plain.save(snapshot(20));
    const paths = (await plain.list()).map((x) => posix.join(snapDir, x.name));
    for (const p of paths) expect(contains(await env.disk.readFile(p), SECRET)).toBe(true);
    const sealed = new Snapshotter(env.disk, snapDir, { cipher, logger: captureLogger() });
    expect(await sealed.loadNewestAvailable()).toEqual(snapshot(20));
    for (const p of paths) expect(contains(await env.disk.readFile(p), SECRET)).toBe(false);
    expect(await sealed.load(paths[1])).toEqual(snapshot(10));
  });

  it("the data key file is made once and opens what was sealed before", async () => {
    const a = await openDataKey(env.disk, env.dir);
    const sealed = a.seal(new TextEncoder().encode(SECRET), new Uint8Array(0));
    const b = await openDataKey(env.disk, env.dir);
    expect(new TextDecoder().decode(b.open(sealed, new Uint8Array(0), "f", "x"))).toBe(SECRET);
    const text = new TextDecoder().decode(await env.disk.readFile(posix.join(env.dir, DATA_KEY_FILE)));
    expect(JSON.parse(text)).toMatchObject({ version: 1, kek: "none" });
    if (kind.name === "NodeDisk")
      expect((await stat(posix.join(env.dir, DATA_KEY_FILE))).mode & 0o777).toBe(0o600);
    await writeBytes(
      env.disk,
      posix.join(env.dir, DATA_KEY_FILE),
      new TextEncoder().encode(JSON.stringify({ version: 1, kek: "unlock-key", dek: "x" })),
    );
    await expect(openDataKey(env.disk, env.dir)).rejects.toThrow(/wrapped .*no autolock/);
  });

  it("a member whose WAL and snapshots predate encryption reopens with all its state, sealed", async () => {
    class Log implements StateMachine {
      applied: string[] = [];
      apply(_index: number, command: Uint8Array): unknown {
        if (command.length > 0) this.applied.push(new TextDecoder().decode(command));
        return undefined;
      }
      snapshot(): Uint8Array {
        return new TextEncoder().encode(JSON.stringify(this.applied));
      }
      restore(data: Uint8Array): void {
        this.applied = JSON.parse(new TextDecoder().decode(data)) as string[];
      }
    }
    const open = async (encryptAtRest: boolean, sm: Log) => {
      const node = await RaftNode.open({
        id: 1,
        bootstrapPeers: [1],
        dir: env.dir,
        disk: env.disk,
        transport: { send: () => undefined },
        stateMachine: sm,
        rand: seededRand(7),
        snapshotEntries: 5,
        catchUpEntries: 2,
        encryptAtRest,
        logger: { warn: () => undefined },
      });
      node.campaign();
      return node;
    };
    const files = async () => {
      const out: Uint8Array[] = [];
      for (const sub of ["wal", "snap"]) {
        const dir = posix.join(env.dir, sub);
        for (const n of await env.disk.readdir(dir).catch(() => [] as string[]))
          out.push(await env.disk.readFile(posix.join(dir, n)));
      }
      return out;
    };
    const before = new Log();
    const plain = await open(false, before);
    for (let i = 1; i <= 12; i++) await plain.propose(new TextEncoder().encode(`${SECRET}#${i}`), 5_000);
    await plain.close();
    expect((await env.disk.readdir(snapDir)).some((n) => n.endsWith(".snap"))).toBe(true);
    expect((await files()).some((b) => contains(b, SECRET))).toBe(true);

    const after = new Log();
    const sealed = await open(true, after);
    await sealed.propose(new TextEncoder().encode(`${SECRET}#13`), 5_000);
    expect(after.applied).toEqual(Array.from({ length: 13 }, (_, i) => `${SECRET}#${i + 1}`));
    await sealed.close();
    for (const b of await files()) expect(contains(b, SECRET)).toBe(false);
    expect(await env.disk.readdir(env.dir)).toContain(DATA_KEY_FILE);

    const again = new Log();
    const reopened = await open(true, again);
    await reopened.readBarrier(5_000);
    expect(again.applied).toHaveLength(13);
    await reopened.close();
  });
});
