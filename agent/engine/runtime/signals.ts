import { invalid } from "../../../shared/errors.js";

// Linux signal numbers (x86_64 and arm64 agree on these), as runc and `docker kill -s` name them.
const signalNumbers: Record<string, number> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  IOT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  STKFLT: 16,
  CHLD: 17,
  CONT: 18,
  STOP: 19,
  TSTP: 20,
  TTIN: 21,
  TTOU: 22,
  URG: 23,
  XCPU: 24,
  XFSZ: 25,
  VTALRM: 26,
  PROF: 27,
  WINCH: 28,
  IO: 29,
  POLL: 29,
  PWR: 30,
  SYS: 31,
};

export const SIGKILL = 9;
export const SIGTERM = 15;

/** "SIGTERM", "term", "15" or "SIGRTMIN+3" → the signal number; anything else is the user's mistake. */
export function parseSignal(value: string): number {
  const s = value.trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = s.startsWith("SIG") ? s.slice(3) : s;
    if (name in signalNumbers) return signalNumbers[name];
    const rt = /^RTMIN(?:\+(\d+))?$/.exec(name) ?? /^RTMAX(?:-(\d+))?$/.exec(name);
    if (rt) {
      const n = name.startsWith("RTMIN") ? 34 + Number(rt[1] ?? 0) : 64 - Number(rt[1] ?? 0);
      if (n >= 34 && n <= 64) return n;
    }
  }
  throw invalid(`Invalid signal: ${value}: use a name such as SIGTERM or KILL, or a number from 1 to 64`);
}
