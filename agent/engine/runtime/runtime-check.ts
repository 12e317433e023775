// Gathers what runtimeVerdict needs about the OCI runtime binary: its version, and when a
// Debian-style package owns it, the CVE ids the package's changelog says it fixed.
import { readFile, realpath } from "node:fs/promises";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { messageOf } from "../../../shared/errors.js";
import { runCommand } from "./command.js";
import {
  cvesInChangelog,
  parseRuncVersionOutput,
  runtimeVerdict,
  type RuntimeFacts,
  type RuntimeVerdict,
} from "./runc-version.js";

const gunzipAsync = promisify(gunzip);

async function owningPackage(path: string): Promise<{ name: string; version: string } | undefined> {
  const candidates = [...new Set([path, await realpath(path).catch(() => path)])];
  for (const file of candidates) {
    try {
      const { stdout } = await runCommand("dpkg-query", ["-S", file], { timeoutMs: 10_000 });
      const name = stdout.split(":")[0]?.trim();
      if (!name) continue;
      const v = await runCommand("dpkg-query", ["-W", "-f=${Version}", name], { timeoutMs: 10_000 });
      return { name, version: v.stdout.trim() };
    } catch {
      // not a dpkg system, or the binary is not from a package
    }
  }
  return undefined;
}

async function changelogCves(pkg: string): Promise<Set<string>> {
  try {
    const text = await gunzipAsync(await readFile(`/usr/share/doc/${pkg}/changelog.Debian.gz`));
    return cvesInChangelog(text.toString("utf8"));
  } catch {
    return new Set();
  }
}

export async function runtimeFacts(path: string): Promise<RuntimeFacts> {
  const { stdout } = await runCommand(path, ["--version"], { timeoutMs: 10_000 });
  const version = parseRuncVersionOutput(stdout);
  if (version === undefined) return { path, backported: new Set() };
  const pkg = await owningPackage(path);
  return {
    path,
    version,
    package: pkg ? `${pkg.name} ${pkg.version}` : undefined,
    backported: pkg ? await changelogCves(pkg.name) : new Set(),
  };
}

/** The verdict on the runtime at `path`; one that cannot be run at all is a warning, not a refusal. */
export async function checkRuntime(path: string): Promise<RuntimeVerdict> {
  try {
    return runtimeVerdict(await runtimeFacts(path));
  } catch (e) {
    return {
      action: "warn",
      unfixed: [],
      message: `cannot run ${path} --version (${messageOf(e)}): containers will not start until the runtime works`,
    };
  }
}
