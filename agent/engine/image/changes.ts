// `docker import --change` and `docker commit --change` take Dockerfile lines. Only the
// instructions that change the image config make sense there; the rest are refused by name.
import { invalid } from "../../../shared/errors.js";
import type { ImageRuntimeConfig } from "./types.js";

const changeInstructions = [
  "CMD",
  "ENTRYPOINT",
  "ENV",
  "WORKDIR",
  "USER",
  "LABEL",
  "EXPOSE",
  "VOLUME",
  "STOPSIGNAL",
] as const;

/** JSON form if the text is a JSON array of strings, otherwise undefined. */
function jsonForm(text: string, line: string): string[] | undefined {
  if (!text.startsWith("[")) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined; // like Docker: an unparsable "[..." is shell form
  }
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    throw invalid(`invalid --change "${line}": the JSON form must be a list of strings`);
  return v as string[];
}

/** Words with shell-like quoting ("a b", 'c', \x), as the Dockerfile parser splits ENV and LABEL. */
function words(text: string, line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | null = null;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw invalid(`invalid --change "${line}": unterminated quote`);
  if (inWord) out.push(cur);
  return out;
}

/** key=value pairs, or the legacy "KEY value with spaces" form for a single pair. */
function pairs(rest: string, line: string, keyword: string): Array<[string, string]> {
  const ws = words(rest, line);
  if (ws.length === 0) throw invalid(`invalid --change "${line}": ${keyword} needs at least one key=value`);
  if (!ws[0].includes("=")) {
    const m = /^(\S+)\s+(.*)$/s.exec(rest.trim());
    if (!m) throw invalid(`invalid --change "${line}": ${keyword} needs a value, e.g. ${keyword} key=value`);
    return [[m[1], m[2]]];
  }
  return ws.map((w) => {
    const eq = w.indexOf("=");
    if (eq <= 0) throw invalid(`invalid --change "${line}": "${w}" is not key=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** Apply Dockerfile-style change lines to a copy of config. */
export function applyChanges(base: ImageRuntimeConfig, changes: string[]): ImageRuntimeConfig {
  const cfg: ImageRuntimeConfig = structuredClone(base);
  for (const line of changes) {
    const m = /^\s*(\S+)\s*(.*?)\s*$/s.exec(line);
    if (!m) continue;
    const keyword = m[1].toUpperCase();
    const rest = m[2];
    switch (keyword) {
      case "CMD":
      case "ENTRYPOINT": {
        const argv = jsonForm(rest, line) ?? ["/bin/sh", "-c", rest];
        if (keyword === "CMD") cfg.Cmd = argv;
        else {
          cfg.Entrypoint = argv;
          // As in a Dockerfile, a new ENTRYPOINT drops an inherited CMD.
          if (!changes.some((l) => /^\s*cmd\b/i.test(l))) cfg.Cmd = null;
        }
        break;
      }
      case "ENV": {
        const env = cfg.Env ?? [];
        for (const [k, v] of pairs(rest, line, "ENV")) {
          const i = env.findIndex((e) => e.split("=")[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        cfg.Env = env;
        break;
      }
      case "LABEL":
        cfg.Labels = { ...(cfg.Labels ?? {}), ...Object.fromEntries(pairs(rest, line, "LABEL")) };
        break;
      case "WORKDIR":
        if (rest === "") throw invalid(`invalid --change "${line}": WORKDIR needs a path`);
        cfg.WorkingDir = rest;
        break;
      case "USER":
        if (rest === "") throw invalid(`invalid --change "${line}": USER needs a user name or uid`);
        cfg.User = rest;
        break;
      case "STOPSIGNAL":
        if (rest === "")
          throw invalid(`invalid --change "${line}": STOPSIGNAL needs a signal such as SIGTERM`);
        cfg.StopSignal = rest;
        break;
      case "EXPOSE": {
        const ports = { ...(cfg.ExposedPorts ?? {}) };
        for (const p of words(rest, line)) {
          const pm = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
          if (!pm) throw invalid(`invalid --change "${line}": "${p}" is not a port such as 80 or 53/udp`);
          ports[`${pm[1]}${pm[2] ? `-${pm[2]}` : ""}/${(pm[3] ?? "tcp").toLowerCase()}`] = {};
        }
        cfg.ExposedPorts = ports;
        break;
      }
      case "VOLUME": {
        const list = jsonForm(rest, line) ?? words(rest, line);
        if (list.length === 0) throw invalid(`invalid --change "${line}": VOLUME needs a path`);
        cfg.Volumes = { ...(cfg.Volumes ?? {}), ...Object.fromEntries(list.map((v) => [v, {}])) };
        break;
      }
      default:
        throw invalid(
          `invalid --change "${line}": ${m[1]} is not a valid change instruction; use one of ${changeInstructions.join(", ")}`,
        );
    }
  }
  return cfg;
}
