// Which runc shoald will run containers with. runc before 1.1.12 lets a container escape to
// the host (CVE-2024-21626): shoald refuses to start on it. Later breakouts are fixed in newer
// releases only: shoald starts and warns, naming them. Distributions backport fixes without
// changing the upstream version (Debian 12's 1.1.5+ds1-1+deb12u1 carries CVE-2024-21626's),
// so a CVE the runtime's package says it fixed counts as fixed. Pure: the caller gathers facts.

export interface RuncCve {
  id: string;
  /** What an attacker in a container gets. */
  impact: string;
  /** First fixed release of each release line (ascending); a later line than all of them is fixed. */
  fixedIn: string[];
  /** Too dangerous to start with. */
  refuse: boolean;
}

export const RUNC_CVES: readonly RuncCve[] = [
  {
    id: "CVE-2024-21626",
    impact: "container breakout through a leaked host file descriptor",
    fixedIn: ["1.1.12"],
    refuse: true,
  },
  {
    id: "CVE-2024-45310",
    impact: "a container can make runc create empty files and folders on the host",
    fixedIn: ["1.1.14", "1.2.0-rc.3"],
    refuse: false,
  },
  {
    id: "CVE-2025-31133",
    impact: "container breakout through a masked path swapped for a symlink",
    fixedIn: ["1.2.8", "1.3.3", "1.4.0-rc.3"],
    refuse: false,
  },
  {
    id: "CVE-2025-52565",
    impact: "container breakout through the /dev/console bind mount",
    fixedIn: ["1.2.8", "1.3.3", "1.4.0-rc.3"],
    refuse: false,
  },
  {
    id: "CVE-2025-52881",
    impact: "writes to host /proc files and LSM bypass through redirected /proc writes",
    fixedIn: ["1.2.8", "1.3.3", "1.4.0-rc.3"],
    refuse: false,
  },
];

interface Version {
  major: number;
  minor: number;
  patch: number;
  /** rc/alpha/beta parts; empty for a release. */
  pre: Array<string | number>;
}

/**
 * "1.1.12", "1.2.0-rc.3", Debian's "1.1.5+ds1", Ubuntu's "1.1.12-0ubuntu2~22.04.1". Only
 * rc/alpha/beta suffixes make a pre-release; a packager's suffix is the release itself.
 */
export function parseVersion(text: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-((?:rc|alpha|beta)[0-9A-Za-z.]*))?/.exec(text.trim());
  if (!m) return undefined;
  const pre = (m[4] ?? "")
    .split(".")
    .filter((p) => p !== "")
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), pre };
}

export function compareVersions(a: Version, b: Version): number {
  for (const k of ["major", "minor", "patch"] as const) if (a[k] !== b[k]) return a[k] - b[k];
  if (a.pre.length === 0 || b.pre.length === 0) return b.pre.length - a.pre.length;
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    if (typeof x === "number" && typeof y === "number") return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

function fixedUpstream(v: Version, cve: RuncCve): boolean {
  const fixes = cve.fixedIn.map((f) => parseVersion(f) as Version);
  const sameLine = fixes.find((f) => f.major === v.major && f.minor === v.minor);
  if (sameLine) return compareVersions(v, sameLine) >= 0;
  return fixes.every((f) => compareVersions(v, f) > 0);
}

/** `runc --version`'s first line: "runc version 1.1.5+ds1". Undefined for another runtime. */
export function parseRuncVersionOutput(stdout: string): string | undefined {
  return /^runc version (\S+)/m.exec(stdout)?.[1];
}

/** CVE ids a distribution changelog (changelog.Debian) names: the fixes its package carries. */
export function cvesInChangelog(text: string): Set<string> {
  return new Set(text.match(/CVE-\d{4}-\d{4,}/g) ?? []);
}

export interface RuntimeFacts {
  path: string;
  /** From `runc --version`; undefined when the runtime is not runc. */
  version?: string;
  /** The distribution package the binary belongs to, e.g. "runc 1.1.5+ds1-1+deb12u1". */
  package?: string;
  /** CVE ids the package's changelog names. */
  backported: Set<string>;
}

export interface RuntimeVerdict {
  /** refuse: do not start (unless the operator insists); warn: start and say why not. */
  action: "ok" | "warn" | "refuse";
  message: string;
  unfixed: RuncCve[];
}

const list = (cves: RuncCve[]): string =>
  cves.map((c) => `${c.id} (${c.impact}; fixed in runc ${c.fixedIn.join(", ")})`).join(", ");

export function runtimeVerdict(f: RuntimeFacts): RuntimeVerdict {
  if (f.version === undefined) {
    return { action: "ok", unfixed: [], message: `${f.path} is not runc: its version is not checked` };
  }
  const v = parseVersion(f.version);
  const what = `runc ${f.version} at ${f.path}${f.package ? ` (package ${f.package})` : ""}`;
  if (!v) {
    return {
      action: "warn",
      unfixed: [],
      message: `${what}: cannot read the version, so its known vulnerabilities are not checked`,
    };
  }
  const unfixed = RUNC_CVES.filter((c) => !fixedUpstream(v, c) && !f.backported.has(c.id));
  const fatal = unfixed.filter((c) => c.refuse);
  if (fatal.length > 0) {
    return {
      action: "refuse",
      unfixed,
      message: `${what} has ${list(fatal)}: upgrade runc, or pass --allow-vulnerable-runtime to start anyway`,
    };
  }
  if (unfixed.length > 0) {
    return { action: "warn", unfixed, message: `${what} lacks the fixes for ${list(unfixed)}: upgrade runc` };
  }
  return { action: "ok", unfixed: [], message: `${what} has no known vulnerability shoal checks for` };
}
