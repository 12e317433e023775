import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { demuxTo } from "../../cli/stdcopy.js";
import { encodeFrame, StdcopyDemuxer, STDERR, STDOUT, SYSTEMERR } from "../../shared/stdcopy.js";

function sink(): { chunks: Buffer[]; write(b: Buffer): void; text(): string } {
  const chunks: Buffer[] = [];
  return { chunks, write: (b) => chunks.push(Buffer.from(b)), text: () => Buffer.concat(chunks).toString() };
}

describe("StdcopyDemuxer", () => {
  it("encodes the 8-byte header docker uses", () => {
    expect([...encodeFrame(STDERR, "hi")]).toEqual([2, 0, 0, 0, 0, 0, 0, 2, 104, 105]);
  });

  it("parses several frames in one chunk", () => {
    const d = new StdcopyDemuxer();
    const frames = d.push(Buffer.concat([encodeFrame(STDOUT, "out\n"), encodeFrame(STDERR, "err\n")]));
    expect(frames.map((f) => [f.stream, f.data.toString()])).toEqual([
      [1, "out\n"],
      [2, "err\n"],
    ]);
    expect(d.leftover).toBe(0);
  });

  it("reassembles frames split at every byte boundary", () => {
    const all = Buffer.concat([
      encodeFrame(STDOUT, "hello "),
      encodeFrame(STDERR, "x"),
      encodeFrame(STDOUT, "world"),
      encodeFrame(STDOUT, ""),
    ]);
    for (let cut = 1; cut < all.length; cut++) {
      const d = new StdcopyDemuxer();
      const frames = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
      expect(frames.map((f) => `${f.stream}:${f.data.toString()}`).join("|")).toBe("1:hello |2:x|1:world|1:");
    }
  });

  it("handles one byte at a time and large payloads", () => {
    const big = Buffer.alloc(70_000, 97);
    const all = encodeFrame(STDOUT, big);
    const d = new StdcopyDemuxer();
    const frames = [];
    for (const b of all) frames.push(...d.push(Buffer.from([b])));
    expect(frames).toHaveLength(1);
    expect(frames[0].data.equals(big)).toBe(true);
  });

  it("rejects data that is not framed", () => {
    expect(() => new StdcopyDemuxer().push(Buffer.from("plain text output"))).toThrow(/stream type/);
  });

  it("keeps an incomplete frame as leftover", () => {
    const d = new StdcopyDemuxer();
    d.push(encodeFrame(STDOUT, "abcdef").subarray(0, 10));
    expect(d.leftover).toBe(10);
  });
});

describe("demuxTo", () => {
  it("copies stdout and stderr to their sinks", async () => {
    const out = sink();
    const err = sink();
    const src = Readable.from([
      Buffer.concat([encodeFrame(STDOUT, "a"), encodeFrame(STDERR, "b")]).subarray(0, 5),
      Buffer.concat([encodeFrame(STDOUT, "a"), encodeFrame(STDERR, "b")]).subarray(5),
    ]);
    await demuxTo(src, out, err);
    expect(out.text()).toBe("a");
    expect(err.text()).toBe("b");
  });

  it("rejects with the daemon's message on a system-error frame", async () => {
    const src = Readable.from([
      Buffer.concat([encodeFrame(STDOUT, "partial"), encodeFrame(SYSTEMERR, "log file vanished\n")]),
    ]);
    const out = sink();
    await expect(demuxTo(src, out, sink())).rejects.toThrow("log file vanished");
    expect(out.text()).toBe("partial");
  });
});
