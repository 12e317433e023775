// Time and text wording of the docker CLI that only the CLI needs; durations and sizes are in shared/human.ts.

import { humanDuration } from "../../shared/human.js";

/** "5 minutes ago" from a Unix time in seconds, as the CREATED column shows it. */
export function timeAgo(unixSeconds: number, nowMs: number = Date.now()): string {
  return `${humanDuration(Math.max(0, nowMs - unixSeconds * 1000))} ago`;
}

/** Go's Time.String() in local time: "2024-05-01 12:34:56 +0000 UTC". */
export function goTimeString(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
  const offsetMin = -d.getTimezoneOffset();
  const sign = offsetMin >= 0 ? "+" : "-";
  const abs = Math.abs(offsetMin);
  const offset = `${sign}${pad(Math.trunc(abs / 60))}${pad(abs % 60)}`;
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${date} ${time} ${offset} ${zoneName(d, offsetMin)}`;
}

function zoneName(d: Date, offsetMin: number): string {
  if (offsetMin === 0 && (process.env.TZ === undefined || /^(UTC|Etc\/UTC|GMT|)$/.test(process.env.TZ)))
    return "UTC";
  const part = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" })
    .formatToParts(d)
    .find((p) => p.type === "timeZoneName");
  return part?.value ?? "UTC";
}

/** The docker CLI's Ellipsis: cut to `max` characters, the last one being "…". */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  if (max <= 1) return chars.slice(0, max).join("");
  return chars.slice(0, max - 1).join("") + "…";
}
