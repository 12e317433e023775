// conmon stamps log lines in local time with an offset ("...+01:00"); Docker prints UTC
// RFC 3339 with nanoseconds ("...Z"). Date keeps only milliseconds, so the fraction is carried over by hand.
export function toDockerLogTime(time: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return time;
  if (m[3] === "Z") return time;
  const whole = new Date(`${m[1]}${m[3]}`).toISOString().slice(0, 19);
  return `${whole}${m[2] ?? ""}Z`;
}

/** A log line's time as a key that sorts in time order whatever its zone and fraction length. */
export function logTimeKey(time: string): string {
  const docker = toDockerLogTime(time);
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(docker);
  if (!m) return docker;
  return `${m[1]}.${(m[2] ?? "").padEnd(9, "0").slice(0, 9)}`;
}
