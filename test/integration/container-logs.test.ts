// The k8s-file reader on its own: big files, partial records, tail from the end.
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readLog } from "../../agent/engine/runtime/logs.js";
import { collectLogs, logOptions } from "../helpers/container-env.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp("/tmp/shoal-logs-");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const rec = (i: number, stream = "stdout", tag = "F", text = `line ${i}`): string =>
  `2026-01-01T00:00:${String(i % 60).padStart(2, "0")}.123456789+00:00 ${stream} ${tag} ${text}\n`;

describe("k8s-file log reader", () => {
  it("tails a big file and keeps partial records with their line", async () => {
    const path = join(dir, "big.log");
    const parts: string[] = [];
    for (let i = 0; i < 200_000; i++) parts.push(rec(i, i % 2 ? "stderr" : "stdout"));
    parts.push(rec(1, "stdout", "P", "long-"), rec(2, "stdout", "P", "er-"), rec(3, "stdout", "F", "line"));
    await writeFile(path, parts.join(""));
    const t0 = Date.now();
    const tail = await collectLogs(readLog(path, logOptions({ tail: 2 })));
    expect(Date.now() - t0).toBeLessThan(500);
    expect(tail.all.map((l) => l.data.toString())).toEqual(["line 199999\n", "long-", "er-", "line\n"]);
    expect(tail.stdout).toBe("long-er-line\n");
    const all = await collectLogs(readLog(path, logOptions({ stderr: false })));
    expect(all.all.length).toBe(100_000 + 3);
  });

  it("follows a growing file until told the container stopped", async () => {
    const path = join(dir, "grow.log");
    await writeFile(path, rec(1));
    let stop!: () => void;
    const untilExit = new Promise<void>((r) => (stop = r));
    const reader = collectLogs(readLog(path, logOptions({ follow: true }), { untilExit }));
    await new Promise((r) => setTimeout(r, 100));
    await appendFile(path, rec(2));
    await appendFile(path, rec(3, "stderr"));
    stop();
    const out = await reader;
    expect(out.stdout).toBe("line 1\nline 2\n");
    expect(out.stderr).toBe("line 3\n");
  });
});
