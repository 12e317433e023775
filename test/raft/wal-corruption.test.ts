import { posix } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Wal, WalCorruptError } from "../../manager/raft/wal/wal.js";
import { crc32, crc32Fallback } from "../../manager/raft/wal/crc.js";
import { captureLogger, diskKinds, entries, entry, writeBytes, type DiskEnv } from "./helpers/disk.js";

describe.each(diskKinds)("WAL damage on $name", (kind) => {
  let env: DiskEnv;
  let walDir: string;
  beforeEach(async () => {
    env = await kind.make();
    walDir = posix.join(env.dir, "wal");
  });
  afterEach(() => env.cleanup());

  const open = (segmentBytes?: number) => {
    const logger = captureLogger();
    return Wal.open(env.disk, walDir, { segmentBytes, logger }).then((wal) => ({ wal, logger }));
  };
  const size = async (file: string) => (await env.disk.readFile(posix.join(walDir, file))).length;

  /** Ten saves of one record each; returns the segment name and where each record starts. */
  async function tenRecords(): Promise<{ file: string; starts: number[]; end: number }> {
    const { wal } = await open();
    const file = wal.segmentFiles()[0];
    const starts: number[] = [];
    for (let i = 1; i <= 10; i++) {
      starts.push(await size(file));
      await wal.save(undefined, [entry(i, 1, new Uint8Array(40).fill(i))]);
    }
    await wal.close();
    return { file, starts, end: await size(file) };
  }

  it("cuts a torn last record at every byte offset and keeps every complete one", async () => {
    const { file, starts, end } = await tenRecords();
    const path = posix.join(walDir, file);
    const full = await env.disk.readFile(path);
    const lastStart = starts[9];
    for (let cut = lastStart; cut < end; cut++) {
      for (const zeros of [false, true]) {
        // A torn write: the file ends inside the record, or the rest of it reads as zeros.
        const torn = zeros ? full.slice() : full.slice(0, cut);
        if (zeros) torn.fill(0, cut);
        await writeBytes(env.disk, path, torn);
        const { wal, logger } = await open();
        const s = wal.readAll();
        expect(s.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
        expect(await size(file)).toBe(lastStart);
        if (torn.length > lastStart) {
          expect(wal.repaired).toMatchObject({
            file: path,
            offset: lastStart,
            droppedBytes: torn.length - lastStart,
          });
          expect(logger.warnings).toHaveLength(1);
          expect(logger.warnings[0].fields).toMatchObject({ file: path, offset: lastStart });
        } else {
          expect(wal.repaired).toBeUndefined();
        }
        await wal.close();
      }
    }
    // After a repair the log goes on normally.
    await writeBytes(env.disk, path, full.slice(0, end - 3));
    const { wal } = await open();
    wal.readAll();
    await wal.save({ term: 2, vote: 1, commit: 9 }, [entry(10, 2)]);
    await wal.close();
    const { wal: again } = await open();
    const s = again.readAll();
    expect(s.entries.map((e) => [e.index, e.term])).toContainEqual([10, 2]);
    expect(s.hardState).toEqual({ term: 2, vote: 1, commit: 9 });
    expect(again.repaired).toBeUndefined();
    await again.close();
  });

  it("treats a CRC mismatch in the last record as a torn tail", async () => {
    const { file, starts } = await tenRecords();
    const path = posix.join(walDir, file);
    const bytes = await env.disk.readFile(path);
    bytes[starts[9] + 20] ^= 0x01;
    await writeBytes(env.disk, path, bytes);
    const { wal } = await open();
    expect(wal.readAll().entries.length).toBe(9);
    expect(wal.repaired).toMatchObject({ offset: starts[9], reason: "CRC mismatch" });
    await wal.close();
  });

  it.each([
    ["a payload byte", 20],
    ["the CRC", 5],
    ["the length", 1],
  ])("refuses to start when %s of a middle record is damaged, naming file and offset", async (_what, at) => {
    const { file, starts } = await tenRecords();
    const path = posix.join(walDir, file);
    const bytes = await env.disk.readFile(path);
    bytes[starts[4] + at] ^= 0x40;
    await writeBytes(env.disk, path, bytes);
    const err = await open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WalCorruptError);
    expect(err).toMatchObject({ file: path, offset: starts[4] });
    expect((err as Error).message).toContain(`${path} at offset ${starts[4]}`);
    // Nothing was cut.
    expect(await env.disk.readFile(path)).toEqual(bytes);
  });

  it("refuses damage anywhere in a segment that is not the last, even at its end", async () => {
    const { wal } = await open(512);
    for (let i = 1; i <= 30; i++) await wal.save({ term: 1, vote: 0, commit: i - 1 }, [entry(i, 1)]);
    const files = wal.segmentFiles();
    await wal.close();
    expect(files.length).toBeGreaterThan(2);
    const path = posix.join(walDir, files[0]);
    const bytes = await env.disk.readFile(path);
    await writeBytes(env.disk, path, bytes.slice(0, bytes.length - 2));
    await expect(open(512)).rejects.toMatchObject({ name: "WalCorruptError", file: path });
  });

  it("does not accept a record copied from another segment", async () => {
    const { wal } = await open(512);
    for (let i = 1; i <= 30; i++) await wal.save(undefined, [entry(i, 1)]);
    const files = wal.segmentFiles();
    await wal.close();
    const first = await env.disk.readFile(posix.join(walDir, files[0]));
    const lastPath = posix.join(walDir, files[files.length - 1]);
    const last = await env.disk.readFile(lastPath);
    // The first segment's second record (after its header), valid there, appended here.
    const hdrLen = 8 + new DataView(first.buffer, first.byteOffset).getUint32(0, true);
    const recLen = 8 + new DataView(first.buffer, first.byteOffset + hdrLen).getUint32(0, true);
    const grafted = new Uint8Array(last.length + recLen);
    grafted.set(last);
    grafted.set(first.subarray(hdrLen, hdrLen + recLen), last.length);
    await writeBytes(env.disk, lastPath, grafted);
    const { wal: again } = await open(512);
    expect(again.readAll().entries.map((e) => e.index)).toEqual(entries(1, 30, 1).map((e) => e.index));
    expect(again.repaired).toMatchObject({ offset: last.length, reason: "CRC mismatch" });
    await again.close();
  });

  it("refuses a segment whose header does not match its name", async () => {
    const { wal } = await open();
    await wal.save(undefined, entries(1, 3, 1));
    const [file] = wal.segmentFiles();
    await wal.close();
    await env.disk.rename(
      posix.join(walDir, file),
      posix.join(walDir, "0000000000000000-0000000000000005.wal"),
    );
    await expect(open()).rejects.toThrow(/does not match the file name/);
  });
});

describe("crc32", () => {
  it("the table fallback agrees with zlib", () => {
    const data = new Uint8Array(1000).map((_, i) => (i * 31 + 7) & 0xff);
    expect(crc32Fallback(data)).toBe(crc32(data));
    expect(crc32Fallback(data.subarray(10), 0x12345678)).toBe(crc32(data.subarray(10), 0x12345678));
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });
});
