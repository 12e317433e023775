import type { Readable, Writable } from "node:stream";
import type { ImageConfigBlob, ImageRecord } from "./types.js";

export interface RemoveImageResult {
  Untagged?: string;
  Deleted?: string;
}

/** Tells the image store which containers use an image, so it can refuse to remove it. */
export type ImageUsers = (imageId: string) => string[];

/** The image store as the rest of the engine uses it. Implemented by ImageStore in store.ts. */
export interface ImageStoreApi {
  list(): ImageRecord[];
  /**
   * Find an image by reference ("busybox", "busybox:latest", "localhost:5000/a/b:1"),
   * full id ("sha256:<hex>" or "<hex>"), unique id prefix (at least 4 hex digits), or
   * "name@sha256:<digest>". Throws not_found "No such image: <ref>".
   */
  resolve(ref: string): ImageRecord;
  /** Rootfs lowerdirs of an image, top layer first, as mount(8) wants them. */
  lowerDirs(image: ImageRecord): string[];
  /** Load a `docker save` archive or an OCI image-layout tar. Returns the "Loaded image: x" lines. */
  load(archive: Readable, onProgress?: (message: string) => void): Promise<string[]>;
  /** Write a docker-save archive (with OCI index.json too) of the given references to out. */
  save(refs: string[], out: Writable): Promise<void>;
  /** Make a one-layer image from a root filesystem tar (optionally gzip). `changes` are Dockerfile lines (CMD, ENV, ...). */
  importRootfs(
    rootfsTar: Readable,
    options: { ref?: string; changes?: string[]; message?: string; platform?: string },
  ): Promise<ImageRecord>;
  /**
   * The builder's commit: store an image whose config lists its layers; with `layer` (an
   * uncompressed layer tar) that layer is added and its diffID appended to rootfs.diff_ids.
   * `parent` is the image the step started from (Docker's Parent).
   */
  createImage(input: {
    config: ImageConfigBlob;
    parent?: string;
    layer?: AsyncIterable<Buffer>;
    what?: string;
  }): Promise<ImageRecord>;
  tag(source: string, target: string): Promise<void>;
  remove(
    ref: string,
    options: { force: boolean; noPrune: boolean },
    users: ImageUsers,
  ): Promise<RemoveImageResult[]>;
  /** Remove dangling images (all unused ones with all=true). */
  prune(
    options: { all: boolean },
    users: ImageUsers,
  ): Promise<{ ImagesDeleted: RemoveImageResult[]; SpaceReclaimed: number }>;
}
