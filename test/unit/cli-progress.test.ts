import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { progressBar, ProgressRenderer } from "../../cli/progress.js";

function output(isTTY: boolean): { text: string; write(s: string): void; isTTY: boolean } {
  return {
    text: "",
    isTTY,
    write(s: string) {
      this.text += s;
    },
  };
}

const lines = (msgs: object[]): Readable =>
  Readable.from([msgs.map((m) => JSON.stringify(m)).join("\n") + "\n"]);

describe("ProgressRenderer", () => {
  it("prints stream text as is", async () => {
    const out = output(false);
    await new ProgressRenderer(out).consume(lines([{ stream: "Loaded image: busybox:latest\n" }]));
    expect(out.text).toBe("Loaded image: busybox:latest\n");
  });

  it("without a terminal, prints status lines and drops bars", async () => {
    const out = output(false);
    await new ProgressRenderer(out).consume(
      lines([
        { status: "Pulling from library/busybox", id: "latest" },
        { status: "Downloading", id: "abc", progressDetail: { current: 10, total: 100 } },
        { status: "Pull complete", id: "abc" },
        { status: "Digest: sha256:1" },
      ]),
    );
    expect(out.text).toBe("latest: Pulling from library/busybox\nabc: Pull complete\nDigest: sha256:1\n");
  });

  it("on a terminal, redraws a layer's line in place", async () => {
    const out = output(true);
    await new ProgressRenderer(out).consume(
      lines([
        { status: "Waiting", id: "a" },
        { status: "Waiting", id: "b" },
        { status: "Downloading", id: "a", progressDetail: { current: 50, total: 100 } },
      ]),
    );
    expect(out.text.startsWith("a: Waiting\nb: Waiting\n")).toBe(true);
    expect(out.text).toContain("\x1b[2A\r\x1b[2Ka: Downloading [");
    expect(out.text.endsWith("\x1b[2B\r")).toBe(true);
  });

  it("throws the stream's error", async () => {
    const out = output(false);
    await expect(
      new ProgressRenderer(out).consume(
        lines([{ status: "x" }, { error: "boom", errorDetail: { message: "boom: bad tar" } }]),
      ),
    ).rejects.toThrow("boom: bad tar");
  });

  it("keeps aux payloads and treats non-JSON lines as text", async () => {
    const out = output(false);
    const r = new ProgressRenderer(out);
    await r.consume(Readable.from(['{"aux":{"ID":"sha256:x"}}\nnot json\n']));
    expect(r.aux).toEqual([{ ID: "sha256:x" }]);
    expect(out.text).toBe("not json\n");
  });

  it("handles lines split across chunks", async () => {
    const out = output(false);
    await new ProgressRenderer(out).consume(Readable.from(['{"stream":"a', 'b\\n"}\n{"status":"done"}']));
    expect(out.text).toBe("ab\ndone\n");
  });
});

describe("progressBar", () => {
  it("draws docker's bar", () => {
    expect(progressBar(0, 100, 10)).toBe("[>         ]       0B/100B");
    expect(progressBar(50, 100, 10)).toBe("[=====>    ]      50B/100B");
    expect(progressBar(100, 100, 10)).toBe("[==========]     100B/100B");
  });
});
