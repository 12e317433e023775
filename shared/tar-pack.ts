// Streaming tar writer over tar-stream, for the builder (layers) and the CLI (build contexts):
// entries come from an (async) iterable, file bytes are read when their turn comes, so nothing
// is built in memory and backpressure holds.
import { once } from "node:events";
import { createReadStream } from "node:fs";
import tar from "tar-stream";
import { internal } from "./errors.js";

export type LayerEntryType = "dir" | "file" | "symlink" | "link" | "char" | "block" | "fifo";

export interface LayerEntry {
  /** Path inside the layer, relative, without a trailing slash ("etc/app.conf"). */
  name: string;
  type: LayerEntryType;
  /** Permission bits with set-id and sticky bits (& 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  /** file: its size and where its bytes come from. */
  size?: number;
  source?: string | (() => AsyncIterable<Buffer>);
  /** symlink target, or the layer path a hard link points to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

const tarType: Record<LayerEntryType, tar.Header["type"]> = {
  dir: "directory",
  file: "file",
  symlink: "symlink",
  link: "link",
  char: "character-device",
  block: "block-device",
  fifo: "fifo",
};

/** Stream entries into a tar. Each file's bytes are read when its turn comes. */
export function packTar(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>): AsyncIterable<Buffer> {
  const pack = tar.pack();
  const write = async (): Promise<void> => {
    for await (const e of entries) {
      if (pack.destroyed) return;
      const header: Partial<tar.Header> & { name: string } = {
        name: e.type === "dir" ? `${e.name}/` : e.name,
        type: tarType[e.type],
        mode: e.mode & 0o7777,
        uid: e.uid,
        gid: e.gid,
        mtime: e.mtime,
        uname: "",
        gname: "",
        size: e.type === "file" ? (e.size ?? 0) : 0,
        ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
        ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
      };
      if (e.type !== "file" || !e.size) {
        // tar-stream waits for the body of a file entry given without a buffer, even an empty one.
        await new Promise<void>((resolve, reject) => {
          const done = (err?: Error | null): void => (err ? reject(err) : resolve());
          if (e.type === "file") pack.entry(header, Buffer.alloc(0), done);
          else pack.entry(header, done);
        });
        continue;
      }
      let sink!: ReturnType<typeof pack.entry>;
      const done = new Promise<void>((resolve, reject) => {
        sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
      });
      const src = typeof e.source === "string" ? createReadStream(e.source) : (e.source?.() ?? []);
      let written = 0;
      for await (const chunk of src as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (written > (e.size ?? 0)) throw internal(`${e.name} grew while it was being added to the layer`);
        if (pack.destroyed) throw internal("the layer was abandoned while it was being written");
        if (!sink.write(chunk)) await Promise.race([once(sink, "drain"), once(pack, "close")]);
      }
      if (written !== e.size) throw internal(`${e.name} changed size while it was being added to the layer`);
      sink.end(undefined);
      await done;
    }
    pack.finalize();
  };
  write().catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return pack as AsyncIterable<Buffer>;
}
