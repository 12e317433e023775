// Compressed archives the builder reads: the build context (tar, or gzip/bzip2/xz/zstd-compressed
// tar, as dockerd accepts) and local archives that ADD unpacks. gzip is done in-process (zlib);
// bzip2, xz and zstd go through the system tools in a child process, streamed both ways.
import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { invalid } from "../../../shared/errors.js";
import { gunzipped, peek, sniffCompression, type Compression } from "../image/decompress.js";

/** Whether a 512-byte block is a tar header (ustar magic, or an old-style header whose checksum holds). */
export function looksLikeTar(block: Buffer): boolean {
  if (block.length < 512) return false;
  const magic = block.subarray(257, 262).toString("latin1");
  const text = block
    .subarray(148, 156)
    .toString("latin1")
    .replace(/[\0 ]+/g, "");
  if (!/^[0-7]+$/.test(text)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i];
  return sum === parseInt(text, 8) && (magic === "ustar" || block[0] !== 0);
}

const tools: Record<Exclude<Compression, "none" | "gzip">, string> = {
  bzip2: "bzip2",
  xz: "xz",
  zstd: "zstd",
};

async function* throughTool(src: AsyncIterable<Buffer>, tool: string, what: string): AsyncGenerator<Buffer> {
  const child = spawn(tool, ["-dc"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  const spawnError = new Promise<never>((_, reject) =>
    child.once("error", (e) =>
      reject(invalid(`${what} is ${tool}-compressed, but ${tool} cannot run: ${e.message}`)),
    ),
  );
  spawnError.catch(() => undefined);
  const feeding = pipeline(Readable.from(src), child.stdin).catch(() => undefined);
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const code = await Promise.race([exited, spawnError]);
    await feeding;
    if (code !== 0) throw invalid(`${what} is not valid ${tool} data: ${stderr.trim() || `exit ${code}`}`);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

/** The uncompressed bytes of a tar that may be gzip, bzip2, xz or zstd compressed. */
export async function* decompressAny(
  src: AsyncIterable<Buffer | Uint8Array>,
  what: string,
): AsyncGenerator<Buffer> {
  const { head, all } = await peek(src, 6);
  const kind = sniffCompression(head);
  if (kind === "none") {
    yield* all;
    return;
  }
  if (kind === "gzip") {
    yield* gunzipped(all, what);
    return;
  }
  yield* throughTool(all, tools[kind], what);
}
