// The bodies of POST /containers/{id}/exec and POST /exec/{id}/start, checked field by field:
// a field shoal does not know is a 400 naming it (never accepted and ignored), a wrong type is a
// 400 naming the field and the type it needs.
import { invalid } from "../../../shared/errors.js";
import type { ExecCreateRequest, ExecStartRequest } from "./types.js";

/** Every field of moby's ExecCreateRequest; `Detach` is sent by the docker CLI and means nothing at create (as in dockerd). */
const CREATE_FIELDS = new Set([
  "User",
  "Privileged",
  "Tty",
  "ConsoleSize",
  "AttachStdin",
  "AttachStderr",
  "AttachStdout",
  "Detach",
  "DetachKeys",
  "Env",
  "WorkingDir",
  "Cmd",
]);

const START_FIELDS = new Set(["Detach", "Tty", "ConsoleSize"]);

type Body = Record<string, unknown>;

function asBody(raw: unknown, what: string): Body {
  if (raw === undefined || raw === null || raw === "") return {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw invalid(`${what}: the body must be a JSON object`);
  return raw as Body;
}

function refuseUnknown(body: Body, known: Set<string>, what: string): void {
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw invalid(
      `${what}: unsupported field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}: shoal does not implement ${unknown.length > 1 ? "them" : "it"}; remove ${unknown.length > 1 ? "them" : "it"} from the request`,
    );
}

function bool(body: Body, key: string, what: string): boolean {
  const v = body[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw invalid(`${what}: ${key} must be true or false`);
  return v;
}

function str(body: Body, key: string, what: string): string {
  const v = body[key];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw invalid(`${what}: ${key} must be a string`);
  return v;
}

function strings(body: Body, key: string, what: string): string[] {
  const v = body[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string"))
    throw invalid(`${what}: ${key} must be a list of strings`);
  return v as string[];
}

function consoleSize(body: Body, what: string): [number, number] | undefined {
  const v = body.ConsoleSize;
  if (v === undefined || v === null) return undefined;
  const ok =
    Array.isArray(v) &&
    v.length === 2 &&
    v.every((n) => typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 0xffff);
  if (!ok) throw invalid(`${what}: ConsoleSize must be [height, width], two whole numbers from 0 to 65535`);
  return [v[0] as number, v[1] as number];
}

export function parseExecCreate(raw: unknown): ExecCreateRequest {
  const what = "exec create";
  const body = asBody(raw, what);
  refuseUnknown(body, CREATE_FIELDS, what);
  const cmd = strings(body, "Cmd", what);
  // dockerd's exact message (the docker CLI never sends an empty command, other clients may).
  if (cmd.length === 0) throw invalid("No exec command specified");
  if (cmd[0] === "") throw invalid("exec create: the command (Cmd[0]) is empty: name the program to run");
  const env = strings(body, "Env", what);
  for (const e of env) {
    if (e === "" || e.startsWith("="))
      throw invalid(`exec create: invalid environment variable "${e}": use NAME=value (or NAME to unset it)`);
  }
  const workingDir = str(body, "WorkingDir", what);
  if (workingDir !== "" && !workingDir.startsWith("/"))
    throw invalid(
      `exec create: the working directory '${workingDir}' is invalid: it needs to be an absolute path`,
    );
  const tty = bool(body, "Tty", what);
  return {
    Cmd: cmd,
    Env: env,
    User: str(body, "User", what),
    WorkingDir: workingDir,
    Privileged: bool(body, "Privileged", what),
    Tty: tty,
    AttachStdin: bool(body, "AttachStdin", what),
    AttachStdout: bool(body, "AttachStdout", what),
    AttachStderr: bool(body, "AttachStderr", what),
    DetachKeys: str(body, "DetachKeys", what),
    // As dockerd: no console without a TTY.
    ConsoleSize: tty ? consoleSize(body, what) : undefined,
  };
}

export function parseExecStart(raw: unknown): ExecStartRequest {
  const what = "exec start";
  const body = asBody(raw, what);
  refuseUnknown(body, START_FIELDS, what);
  const tty = bool(body, "Tty", what);
  return {
    Detach: bool(body, "Detach", what),
    Tty: tty,
    ConsoleSize: tty ? consoleSize(body, what) : undefined,
  };
}
