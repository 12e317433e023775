// HostConfig.SecurityOpt, read the way dockerd's parseSecurityOpt reads it: no-new-privileges
// (bare or =true|false), seccomp=unconfined|builtin|<profile JSON> (the docker CLI reads a
// profile file and sends its text), and apparmor=/label= only where they name what shoal does
// already (it loads no AppArmor or SELinux profile of its own). Anything else is a 400.
import { invalid } from "../../../shared/errors.js";

export type SeccompChoice =
  | { kind: "default" }
  | { kind: "unconfined" }
  /** The profile's JSON text, in Docker's format (moby's profiles/seccomp). */
  | { kind: "profile"; json: string };

export interface SecurityOptions {
  noNewPrivileges: boolean;
  seccomp: SeccompChoice;
}

/** What shoal applies for these keys anyway: no AppArmor profile and no SELinux label. */
const IN_EFFECT: Record<string, string[]> = {
  apparmor: ["unconfined"],
  label: ["disable"],
};

function shortName(opt: string): string {
  return opt.length > 60 ? `${opt.slice(0, 60)}...` : opt;
}

function parseBool(v: string): boolean | undefined {
  // Go's strconv.ParseBool, which dockerd uses.
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
  return undefined;
}

export function parseSecurityOpts(value: unknown): SecurityOptions {
  const out: SecurityOptions = { noNewPrivileges: false, seccomp: { kind: "default" } };
  if (value === undefined || value === null || value === "") return out;
  const opts = Array.isArray(value) ? value : [value];
  for (const raw of opts) {
    const opt = String(raw);
    if (opt === "no-new-privileges") {
      out.noNewPrivileges = true;
      continue;
    }
    if (opt === "disable") continue; // label=disable, the short form
    const sep = opt.includes("=") ? "=" : opt.includes(":") ? ":" : "";
    if (sep === "")
      throw invalid(
        `invalid --security-opt ${JSON.stringify(shortName(opt))}: use key=value (no-new-privileges, seccomp=unconfined|<file>, apparmor=unconfined, label=disable)`,
      );
    const key = opt.slice(0, opt.indexOf(sep));
    const v = opt.slice(opt.indexOf(sep) + 1);
    switch (key) {
      case "no-new-privileges": {
        const b = parseBool(v);
        if (b === undefined)
          throw invalid(
            `invalid --security-opt ${JSON.stringify(opt)}: no-new-privileges takes true or false`,
          );
        out.noNewPrivileges = b;
        break;
      }
      case "seccomp":
        out.seccomp =
          v === "unconfined"
            ? { kind: "unconfined" }
            : v === "builtin" || v === ""
              ? { kind: "default" }
              : { kind: "profile", json: v };
        break;
      case "apparmor":
      case "label":
        if (!IN_EFFECT[key].includes(v))
          throw invalid(
            `--security-opt ${shortName(opt)} is not supported by shoal (SecurityOpt): shoal loads no ${key === "apparmor" ? "AppArmor profile" : "SELinux label"}, so it would be ignored and the container is not created; use ${key}=${IN_EFFECT[key][0]} or leave it out`,
          );
        break;
      default:
        throw invalid(
          `invalid --security-opt ${JSON.stringify(shortName(opt))}: unknown key ${key} (use no-new-privileges, seccomp, apparmor or label)`,
        );
    }
  }
  return out;
}
