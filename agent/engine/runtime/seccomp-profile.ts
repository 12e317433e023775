// A user's seccomp profile (`--security-opt seccomp=<file>`; the docker CLI sends the file's
// JSON text) → the OCI seccomp section, as moby's profiles/seccomp LoadProfile does. The profile
// is checked here, field by field, so a bad one is a 400 at create and never a runc failure
// at start.
import { invalid } from "../../../shared/errors.js";
import type { SeccompAction, SeccompArg, SeccompOperator } from "./oci-types.js";
import type { ProfileFilter, ProfileSyscall, SeccompProfile } from "./seccomp-default-profile.js";

const ACTIONS = new Set<SeccompAction>([
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
]);

const OPERATORS = new Set<SeccompOperator>([
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
]);

/** The filter flags runc 1.1 sets (TSYNC is always on, so naming it changes nothing). */
const FLAGS = new Set([
  "SECCOMP_FILTER_FLAG_TSYNC",
  "SECCOMP_FILTER_FLAG_LOG",
  "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
]);

function fail(why: string): never {
  throw invalid(
    `Decoding seccomp profile failed: ${why}; fix the profile file given to --security-opt seccomp=`,
  );
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

function strings(v: unknown, where: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) fail(`${where} must be a list of strings`);
  return v as string[];
}

function uint(v: unknown, where: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max)
    fail(`${where} must be a whole number from 0 to ${max}`);
  return v;
}

function action(v: unknown, where: string): SeccompAction {
  if (v === "SCMP_ACT_NOTIFY")
    fail(`${where} SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which shoal does not run`);
  if (typeof v !== "string" || !ACTIONS.has(v as SeccompAction))
    fail(`${where} ${JSON.stringify(v)} is not a seccomp action (${[...ACTIONS].join(", ")})`);
  return v as SeccompAction;
}

function filter(v: unknown, where: string): ProfileFilter | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) fail(`${where} must be an object`);
  const out: ProfileFilter = {};
  const caps = strings(v.caps, `${where}.caps`);
  const arches = strings(v.arches, `${where}.arches`);
  if (caps && caps.length > 0) out.caps = caps;
  if (arches && arches.length > 0) out.arches = arches;
  if (v.minKernel !== undefined && v.minKernel !== null && v.minKernel !== "") {
    const m = typeof v.minKernel === "string" ? /^(\d+)\.(\d+)$/.exec(v.minKernel) : null;
    if (!m || (m[1] === "0" && m[2] === "0"))
      fail(
        `invalid kernel version ${JSON.stringify(v.minKernel)} in ${where}.minKernel, expected "<kernel>.<major>"`,
      );
    out.minKernel = v.minKernel as string;
  }
  return out.caps || out.arches || out.minKernel ? out : undefined;
}

function arg(v: unknown, where: string): SeccompArg {
  if (!isObj(v)) fail(`${where} must be an object`);
  const op = v.op;
  if (typeof op !== "string" || !OPERATORS.has(op as SeccompOperator))
    fail(`${where}.op ${JSON.stringify(op)} is not a comparison (${[...OPERATORS].join(", ")})`);
  const out: SeccompArg = {
    index: uint(v.index, `${where}.index`, 5) ?? 0,
    value: uint(v.value, `${where}.value`) ?? 0,
    op: op as SeccompOperator,
  };
  const two = uint(v.valueTwo, `${where}.valueTwo`);
  if (two !== undefined && two !== 0) out.valueTwo = two;
  return out;
}

function syscall(v: unknown, i: number): ProfileSyscall {
  const where = `syscalls[${i}]`;
  if (!isObj(v)) fail(`${where} must be an object`);
  const names = strings(v.names, `${where}.names`);
  if (v.name !== undefined && v.name !== "" && typeof v.name !== "string")
    fail(`${where}.name must be a string`);
  const name = typeof v.name === "string" && v.name !== "" ? v.name : undefined;
  if (name && names && names.length > 0)
    fail(`both 'name' and 'names' are specified in ${where}, use either 'name' or 'names'`);
  const out: ProfileSyscall = {
    names: name ? [name] : (names ?? []),
    action: action(v.action, `${where}.action`),
  };
  const errnoRet = uint(v.errnoRet, `${where}.errnoRet`, 4095);
  if (errnoRet !== undefined) out.errnoRet = errnoRet;
  if (v.args !== undefined && v.args !== null) {
    if (!Array.isArray(v.args)) fail(`${where}.args must be a list`);
    if (v.args.length > 0) out.args = v.args.map((a, j) => arg(a, `${where}.args[${j}]`));
  }
  const includes = filter(v.includes, `${where}.includes`);
  const excludes = filter(v.excludes, `${where}.excludes`);
  if (includes) out.includes = includes;
  if (excludes) out.excludes = excludes;
  return out;
}

/**
 * Parse a profile's JSON text. undefined means moby's "seccomp disabled": a profile with neither
 * a default action nor rules.
 */
export function loadSeccompProfile(text: string): SeccompProfile | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(`the profile is not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isObj(doc)) fail("the profile must be a JSON object");
  if (doc.listenerPath !== undefined && doc.listenerPath !== "")
    fail("listenerPath (a seccomp agent) is not supported by shoal");
  const rules = doc.syscalls ?? [];
  if (!Array.isArray(rules)) fail("syscalls must be a list");
  const syscalls = rules.map(syscall);
  if ((doc.defaultAction === undefined || doc.defaultAction === "") && syscalls.length === 0)
    return undefined;
  const profile: SeccompProfile = { defaultAction: action(doc.defaultAction, "defaultAction"), syscalls };
  const errnoRet = uint(doc.defaultErrnoRet, "defaultErrnoRet", 4095);
  if (errnoRet !== undefined) profile.defaultErrnoRet = errnoRet;
  const architectures = strings(doc.architectures, "architectures");
  if (doc.archMap !== undefined && doc.archMap !== null) {
    if (!Array.isArray(doc.archMap)) fail("archMap must be a list");
    if (architectures && architectures.length > 0 && doc.archMap.length > 0)
      fail("both 'architectures' and 'archMap' are specified, use either 'architectures' or 'archMap'");
    profile.archMap = doc.archMap.map((a, i) => {
      if (!isObj(a) || typeof a.architecture !== "string")
        fail(`archMap[${i}].architecture must be a string`);
      return {
        architecture: a.architecture,
        subArchitectures: strings(a.subArchitectures, `archMap[${i}].subArchitectures`) ?? null,
      };
    });
  }
  if (architectures && architectures.length > 0) profile.architectures = architectures;
  const flags = strings(doc.flags, "flags");
  for (const f of flags ?? [])
    if (!FLAGS.has(f)) fail(`flag ${f} is not one runc sets (${[...FLAGS].join(", ")})`);
  if (flags && flags.length > 0) profile.flags = flags;
  return profile;
}
