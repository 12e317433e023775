// Rebuilds a layer's original tar from its unpacked folder (what Docker's tar-split does). The
// image config names layers by the digest of their exact tar bytes, so `save` must reproduce
// them bit for bit: the raw headers are kept at extraction, file content is read back from disk.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { internal } from "../../../shared/errors.js";

/** r: raw header/padding bytes (base64); f: content of diff/<path>; sh: content kept in shadow/<name>. */
export type SplitRecord = { r: string } | { f: string; s: number } | { sh: string; s: number };

export const splitFile = "tar-split.jsonl";

export function serializeSplit(records: SplitRecord[]): string {
  return records.map((r) => JSON.stringify(r)).join("\n") + "\n";
}

/** The layer tar, regenerated; throws if the result does not hash to diffId (the layer folder was changed). */
export async function* regenerateLayerTar(layerDir: string, diffId: string): AsyncGenerator<Buffer> {
  const lines = createInterface({ input: createReadStream(join(layerDir, splitFile)), crlfDelay: Infinity });
  const hash = createHash("sha256");
  for await (const line of lines) {
    if (line === "") continue;
    const rec = JSON.parse(line) as SplitRecord;
    if ("r" in rec) {
      const raw = Buffer.from(rec.r, "base64");
      hash.update(raw);
      yield raw;
      continue;
    }
    const path = "f" in rec ? join(layerDir, "diff", rec.f) : join(layerDir, "shadow", rec.sh);
    let got = 0;
    for await (const chunk of createReadStream(path, { start: 0, end: rec.s - 1 })) {
      const buf = chunk as Buffer;
      got += buf.length;
      hash.update(buf);
      yield buf;
    }
    if (got !== rec.s)
      throw internal(`layer ${diffId} is damaged: ${path} has ${got} bytes, expected ${rec.s}`);
  }
  const digest = `sha256:${hash.digest("hex")}`;
  if (digest !== diffId)
    throw internal(
      `layer ${diffId} is damaged: its files were changed (regenerated tar hashes to ${digest})`,
    );
}
