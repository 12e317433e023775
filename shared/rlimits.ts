// The resource limits `--ulimit` may name (setrlimit(2) without the RLIMIT_ prefix), as Docker accepts them.
export const RLIMIT_NAMES: ReadonlySet<string> = new Set([
  "as",
  "core",
  "cpu",
  "data",
  "fsize",
  "locks",
  "memlock",
  "msgqueue",
  "nice",
  "nofile",
  "nproc",
  "rss",
  "rtprio",
  "rttime",
  "sigpending",
  "stack",
]);
