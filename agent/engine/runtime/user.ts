// Docker's `-u` semantics (runc's libcontainer/user.GetExecUser), resolved against the
// container's own /etc/passwd and /etc/group. The root filesystem is untrusted: a symlinked
// /etc or /etc/passwd could point at the host's files, so such files count as absent.

import { constants } from "node:fs";
import { lstat, open } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, invalid } from "../../../shared/errors.js";

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** The primary gid first, then supplementary groups, as dockerd puts them in the spec. */
  additionalGids: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Passwd and group files are small; a larger one is not worth trusting. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MAX_ID = 2 ** 31 - 1;

/** Reads <rootfs>/etc/<name> without following a symlink anywhere below the rootfs; null if absent. */
async function readEtcFile(rootfs: string, name: string): Promise<string | null> {
  try {
    const etc = await lstat(join(rootfs, "etc"));
    if (!etc.isDirectory()) return null;
    const fh = await open(
      join(rootfs, "etc", name),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > MAX_FILE_BYTES) return null;
      return await fh.readFile("utf8");
    } finally {
      await fh.close();
    }
  } catch (e) {
    // ELOOP: the file is a symlink (O_NOFOLLOW); treat like a missing file.
    const code = errnoCode(e);
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") return null;
    throw e;
  }
}

function parseId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

function lines(text: string | null): string[][] {
  if (text === null) return [];
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.split(":"));
}

function parsePasswd(text: string | null): PasswdEntry[] {
  return lines(text).flatMap(([name, , uid, gid, , home]) => {
    const u = parseId(uid ?? "");
    const g = parseId(gid ?? "");
    return name && u !== undefined && g !== undefined ? [{ name, uid: u, gid: g, home: home ?? "" }] : [];
  });
}

function parseGroup(text: string | null): GroupEntry[] {
  return lines(text).flatMap(([name, , gid, members]) => {
    const g = parseId(gid ?? "");
    if (!name || g === undefined) return [];
    return [{ name, gid: g, members: (members ?? "").split(",").filter((m) => m !== "") }];
  });
}

/**
 * Resolves `user` ("", "name", "uid", "name:group", "uid:gid", ...) inside the container.
 * Numeric ids need no passwd entry; names do. An explicit group replaces the supplementary
 * groups, which otherwise come from the user's memberships in /etc/group.
 */
export async function resolveUser(rootfs: string, user: string): Promise<ResolvedUser> {
  const sep = user.indexOf(":");
  const userArg = sep < 0 ? user : user.slice(0, sep);
  const groupArg = sep < 0 ? "" : user.slice(sep + 1);
  const uidArg = parseId(userArg);

  const passwd = parsePasswd(await readEtcFile(rootfs, "passwd"));
  const matched = passwd.find((p) =>
    userArg === "" ? p.uid === 0 : uidArg !== undefined ? p.uid === uidArg : p.name === userArg,
  );

  let uid = 0;
  let gid = 0;
  let home = "/";
  let sgids: number[] = [];
  if (matched) {
    ({ uid, gid } = matched);
    home = matched.home || "/";
  } else if (userArg !== "") {
    if (uidArg === undefined) {
      throw invalid(`unable to find user ${userArg}: no matching entries in passwd file`);
    }
    uid = uidArg;
  }

  if (groupArg !== "" || matched) {
    const groups = parseGroup(await readEtcFile(rootfs, "group"));
    if (groupArg !== "") {
      const gidArg = parseId(groupArg);
      const g = groups.find((e) => (gidArg !== undefined ? e.gid === gidArg : e.name === groupArg));
      if (g) gid = g.gid;
      else if (gidArg !== undefined) gid = gidArg;
      else throw invalid(`unable to find group ${groupArg}: no matching entries in group file`);
    } else if (matched) {
      sgids = groups.filter((e) => e.members.includes(matched.name)).map((e) => e.gid);
    }
  }
  return { uid, gid, additionalGids: [...new Set([gid, ...sgids])], home };
}

/**
 * `--group-add`: numbers as given, names looked up in the container's /etc/group (dockerd's
 * getAdditionalGroups); a name that is not there is a 400.
 */
export async function resolveGroupAdd(
  rootfs: string,
  groups: string[] | null | undefined,
): Promise<number[]> {
  if (!groups || groups.length === 0) return [];
  let table: GroupEntry[] | undefined;
  const out: number[] = [];
  for (const g of groups) {
    const id = parseId(g);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    table ??= parseGroup(await readEtcFile(rootfs, "group"));
    const entry = table.find((e) => e.name === g);
    if (!entry)
      throw invalid(
        `--group-add ${g}: unable to find group ${g}: no matching entries in group file; use a group id or a group of the image's /etc/group`,
      );
    out.push(entry.gid);
  }
  return out;
}
