import { readFile } from "node:fs/promises";
import { dirname, relative, sep } from "node:path";
import { internal, invalid } from "../../../shared/errors.js";
import { CommandError, runCommand } from "../runtime/command.js";

// mount(2) takes at most one page of options. With absolute paths a few dozen layers overflow it,
// so when the options are too long we run mount(8) from the deepest folder all the paths share
// and give the paths relative to it: overlayfs resolves them against the mounting process's cwd
// at mount time. Layer folders are short relative to their common parent, which is enough for
// Docker's own limit of 128 layers.
const MAX_OPTIONS = 4000;

function commonDir(paths: string[]): string {
  const parts = paths.map((p) => p.split(sep));
  const first = parts[0];
  let n = 0;
  while (n < first.length && parts.every((p) => p[n] === first[n])) n++;
  const common = first.slice(0, n).join(sep);
  return common === "" ? sep : common;
}

function mountOptions(
  lowerDirs: string[],
  upperDir: string,
  workDir: string,
): { options: string; cwd?: string } {
  for (const p of [...lowerDirs, upperDir, workDir]) {
    if (/[,:]/.test(p)) throw invalid(`cannot mount ${p} in an overlay: the path contains "," or ":"`);
  }
  const absolute = `lowerdir=${lowerDirs.join(":")},upperdir=${upperDir},workdir=${workDir}`;
  if (absolute.length <= MAX_OPTIONS) return { options: absolute };
  const cwd = lowerDirs.length > 1 ? commonDir(lowerDirs) : dirname(lowerDirs[0]);
  const rel = (p: string): string => relative(cwd, p) || ".";
  const options = `lowerdir=${lowerDirs.map(rel).join(":")},upperdir=${rel(upperDir)},workdir=${rel(workDir)}`;
  if (options.length > MAX_OPTIONS) {
    throw invalid(
      `the image has too many layers (${lowerDirs.length}) to mount: flatten it (for example with export and import)`,
    );
  }
  return { options, cwd };
}

/** Mount a container's root filesystem (overlayfs): the image layers (top first) read-only below a private upper folder. */
export async function mountRootfs(
  lowerDirs: string[],
  upperDir: string,
  workDir: string,
  target: string,
): Promise<void> {
  if (lowerDirs.length === 0) throw internal(`overlay for ${target} needs at least one lower folder`);
  const { options, cwd } = mountOptions(lowerDirs, upperDir, workDir);
  try {
    await runCommand("mount", ["-t", "overlay", "overlay", "-o", options, target], { cwd });
  } catch (e) {
    throw internal(
      `cannot mount the container root filesystem at ${target}: ${e instanceof CommandError ? e.stderr.trim() : String(e)}`,
      e,
    );
  }
}

/** Octal escapes of /proc/self/mountinfo (space, tab, newline, backslash). */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points currently in this mount namespace. */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => unescapeMountPath(l.split(" ")[4]));
}

export async function isMounted(target: string): Promise<boolean> {
  return (await mountPoints()).includes(target);
}

/** Unmount; a target that is not mounted is fine. A busy mount is retried, then detached lazily. */
export async function unmountRootfs(target: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    if (!(await isMounted(target))) return;
    try {
      await runCommand("umount", [target]);
      return;
    } catch (e) {
      if (!(e instanceof CommandError) || !/busy/i.test(e.stderr)) {
        if (!(await isMounted(target))) return;
        throw internal(
          `cannot unmount ${target}: ${e instanceof CommandError ? e.stderr.trim() : String(e)}`,
          e,
        );
      }
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
    }
  }
  await runCommand("umount", ["-l", target]);
}
