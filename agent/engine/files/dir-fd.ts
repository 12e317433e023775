// Directory handles for walking a tree that someone else may be changing (a running container's
// root filesystem, its volumes). Node has no openat(2), but Linux resolves /proc/self/fd/<fd> to
// the open folder itself, so "/proc/self/fd/<fd>/<name>" is openat(fd, name): one component,
// looked up in a folder we already hold. Every folder is opened with O_NOFOLLOW, so a component
// swapped for a symlink fails (ELOOP) instead of leading the daemon out of the tree, and callers
// resolve symlinks themselves, against the container's root.
import { constants, type Stats } from "node:fs";
import { lstat, open, readdir, readlink, type FileHandle } from "node:fs/promises";
import { internal } from "../../../shared/errors.js";
import { errnoCode } from "../../../shared/errors.js";

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;

/** A name that is one path component: no "/", not "." or "..". */
export function checkComponent(name: string): string {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0"))
    throw internal(`"${name}" is not a single path component`);
  return name;
}

export class DirFd {
  private constructor(private readonly fh: FileHandle) {}

  /** Open a trusted host folder (the rootfs mount point, a volume's _data): symlinks in it are the host's own. */
  static async openHost(path: string): Promise<DirFd> {
    return new DirFd(await open(path, O_RDONLY | O_DIRECTORY));
  }

  get fd(): number {
    return this.fh.fd;
  }

  /** A path naming this folder (or one entry in it) for this process's own calls. */
  at(name?: string): string {
    return name === undefined
      ? `/proc/self/fd/${this.fh.fd}`
      : `/proc/self/fd/${this.fh.fd}/${checkComponent(name)}`;
  }

  /** The same for a child process: /proc/self would be the child's. */
  atForChild(name: string): string {
    return `/proc/${process.pid}/fd/${this.fh.fd}/${checkComponent(name)}`;
  }

  /** lstat of an entry; undefined when there is none. */
  async lstat(name: string): Promise<Stats | undefined> {
    try {
      return await lstat(this.at(name));
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return undefined;
      throw e;
    }
  }

  readlink(name: string): Promise<string> {
    return readlink(this.at(name));
  }

  /** Open a child folder; a symlink or non-folder there is an error (ELOOP/ENOTDIR), never followed. */
  async openDir(name: string): Promise<DirFd> {
    return new DirFd(await open(this.at(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  }

  /** Entry names, sorted. */
  async list(): Promise<string[]> {
    return (await readdir(this.at())).sort();
  }

  stat(): Promise<Stats> {
    return this.fh.stat();
  }

  get handle(): FileHandle {
    return this.fh;
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}
