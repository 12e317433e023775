// The runc version policy: refuse a runc with CVE-2024-21626, warn about later breakouts, and
// count a distribution's backported fixes (Debian 12's runc carries CVE-2024-21626's).
import { describe, expect, it } from "vitest";
import {
  compareVersions,
  cvesInChangelog,
  parseRuncVersionOutput,
  parseVersion,
  runtimeVerdict,
} from "../../agent/engine/runtime/runc-version.js";

const facts = (version: string | undefined, backported: string[] = [], pkg?: string) => ({
  path: "/usr/sbin/runc",
  version,
  package: pkg,
  backported: new Set(backported),
});
const unfixedOf = (version: string, backported: string[] = []) =>
  runtimeVerdict(facts(version, backported)).unfixed.map((c) => c.id);

/** The first entry of bookworm's changelog.Debian for runc 1.1.5+ds1-1+deb12u1. */
const bookwormChangelog = `runc (1.1.5+ds1-1+deb12u1) bookworm-security; urgency=high

  * Team upload.
  * CVE-2024-21626: several container breakouts due to internally leaked fds

 -- Shengjing Zhu <zhsj@debian.org>  Fri, 02 Feb 2024 21:53:05 +0800

runc (1.1.5+ds1-1) unstable; urgency=medium

  * New upstream version 1.1.5+ds1
    + CVE-2023-25809: rootless: \`/sys/fs/cgroup\` is writable when cgroupns
`;

describe("runc version policy", () => {
  it("reads runc's --version output and leaves other runtimes alone", () => {
    expect(
      parseRuncVersionOutput("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n"),
    ).toBe("1.1.5+ds1");
    expect(parseRuncVersionOutput("crun version 1.8.1\ncommit: abc\n")).toBeUndefined();
    expect(runtimeVerdict(facts(undefined)).action).toBe("ok");
  });

  it("orders releases, release candidates and packagers' suffixes", () => {
    const cmp = (a: string, b: string) => Math.sign(compareVersions(parseVersion(a)!, parseVersion(b)!));
    expect(cmp("1.1.12", "1.1.11")).toBe(1);
    expect(cmp("1.2.0-rc.3", "1.2.0")).toBe(-1);
    expect(cmp("1.2.0-rc.3", "1.2.0-rc.2")).toBe(1);
    expect(cmp("1.1.5+ds1", "1.1.5")).toBe(0);
    // Ubuntu's suffix is a package revision of the release, not a pre-release.
    expect(cmp("1.1.12-0ubuntu2~22.04.1", "1.1.12")).toBe(0);
  });

  it("refuses runc before 1.1.12, naming CVE-2024-21626 and the override", () => {
    for (const v of ["1.0.0-rc93", "1.1.5", "1.1.11", "1.1.12-rc.1"]) {
      const verdict = runtimeVerdict(facts(v));
      expect(verdict.action, v).toBe("refuse");
      expect(verdict.message).toContain("CVE-2024-21626");
      expect(verdict.message).toContain("--allow-vulnerable-runtime");
    }
  });

  it("warns below the newest fixed releases, naming each CVE left", () => {
    expect(unfixedOf("1.1.12")).toEqual([
      "CVE-2024-45310",
      "CVE-2025-31133",
      "CVE-2025-52565",
      "CVE-2025-52881",
    ]);
    expect(unfixedOf("1.1.14")).toEqual(["CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"]);
    expect(unfixedOf("1.2.0")).toEqual(["CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"]);
    expect(unfixedOf("1.2.7")).toEqual(["CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"]);
    expect(unfixedOf("1.3.2")).toEqual(["CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"]);
    expect(unfixedOf("1.4.0-rc.2")).toEqual(["CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"]);
    const warn = runtimeVerdict(facts("1.2.7"));
    expect(warn.action).toBe("warn");
    expect(warn.message).toContain("CVE-2025-52881");
    expect(warn.message).toContain("1.2.8");
  });

  it("accepts the fixed releases of every line", () => {
    for (const v of ["1.2.8", "1.3.3", "1.4.0-rc.3", "1.4.0", "1.5.1"]) {
      expect(runtimeVerdict(facts(v)).action, v).toBe("ok");
    }
  });

  it("counts a Debian package's backported fixes: bookworm's 1.1.5+ds1-1+deb12u1 starts, with warnings", () => {
    const backported = [...cvesInChangelog(bookwormChangelog)];
    expect(backported).toContain("CVE-2024-21626");
    const verdict = runtimeVerdict(facts("1.1.5+ds1", backported, "runc 1.1.5+ds1-1+deb12u1"));
    expect(verdict.action).toBe("warn");
    expect(verdict.unfixed.map((c) => c.id)).not.toContain("CVE-2024-21626");
    expect(verdict.message).toContain("CVE-2024-45310");
    expect(verdict.message).toContain("runc 1.1.5+ds1-1+deb12u1");
    // The same version without the package's fix is refused.
    expect(runtimeVerdict(facts("1.1.5+ds1", ["CVE-2023-25809"])).action).toBe("refuse");
  });
});
