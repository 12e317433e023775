// since/until parsing, event filters and the event log's window, without a daemon.
import { describe, expect, it } from "vitest";
import { formatUnixNano, parseEventTime } from "../../shared/event-time.js";
import { parseGoDuration } from "../../shared/units.js";
import { eventMatcher, validateEventFilters } from "../../agent/engine/event-filter.js";
import { EventLog } from "../../agent/engine/events.js";
import { eventWindow, toDockerEvent } from "../../api/routes/events.js";

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

describe("event times", () => {
  it("reads Unix seconds with and without a fraction, as the docker CLI sends them", () => {
    expect(parseEventTime("1700000000", NOW)).toBe(1700000000e9);
    expect(parseEventTime("1700000000.5", NOW)).toBe(1700000000e9 + 500_000_000);
    expect(parseEventTime("1700000000.000000123", NOW)).toBe(1700000000e9 + 123);
    expect(parseEventTime("0", NOW)).toBe(0);
  });

  it("reads RFC 3339 with a zone, and dockerd's shorter forms", () => {
    expect(parseEventTime("2026-01-02T03:04:05Z", NOW)).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) * 1e6);
    expect(parseEventTime("2026-01-02T03:04:05.25Z", NOW)).toBe(Date.UTC(2026, 0, 2, 3, 4, 5, 250) * 1e6);
    expect(parseEventTime("2026-01-02T05:04:05+02:00", NOW)).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) * 1e6);
    expect(parseEventTime("2026-01-02T03:04:05", NOW)).toBe(new Date(2026, 0, 2, 3, 4, 5).getTime() * 1e6);
    expect(parseEventTime("2026-01-02", NOW)).toBe(new Date(2026, 0, 2).getTime() * 1e6);
  });

  it("reads Go durations back from now", () => {
    expect(parseGoDuration("1h30m")).toBe(5400e9);
    expect(parseGoDuration("1.5s")).toBe(1.5e9);
    expect(parseGoDuration("250ms")).toBe(250e6);
    expect(parseGoDuration("-2m")).toBe(-120e9);
    expect(parseGoDuration("10")).toBeUndefined();
    expect(parseEventTime("10m", NOW)).toBe(NOW * 1e6 - 600e9);
    expect(parseEventTime("0s", NOW)).toBe(NOW * 1e6);
  });

  it("refuses anything else with a 400 naming the parameter", () => {
    for (const bad of ["yesterday", "", "12:00", "2026-13-45T99", "1.2.3"])
      expect(() => parseEventTime(bad, NOW, "until")).toThrow(/for until/);
  });

  it("formats nanoseconds the way the CLI sends them", () => {
    expect(formatUnixNano(1700000000e9 + 5e8)).toBe("1700000000.500000000");
    expect(formatUnixNano(1700000000e9)).toBe("1700000000.000000000");
  });

  it("refuses since after until", () => {
    expect(() => eventWindow({ since: "200", until: "100" }, NOW)).toThrow(/cannot be after/);
    expect(eventWindow({ since: "100", until: "200" }, NOW)).toEqual({ sinceNano: 100e9, untilNano: 200e9 });
    expect(eventWindow({}, NOW)).toEqual({ sinceNano: undefined, untilNano: undefined });
  });
});

describe("event filters", () => {
  const log = new EventLog({ now: () => NOW });
  const die = log.emit("container", "die", "abc123", {
    name: "web",
    image: "busybox:latest",
    exitCode: "3",
    team: "a",
  });
  const exec = log.emit("container", "exec_start: sh -c true", "abc123", { name: "web", image: "busybox" });
  const tag = log.emit("image", "tag", "sha256:ff", { name: "busybox:1" });
  const connect = log.emit("network", "connect", "net1", {
    name: "front",
    type: "bridge",
    container: "abc123",
  });
  const match = (f: Record<string, string[]>) =>
    [die, exec, tag, connect].filter(eventMatcher(f)).map((e) => e.Action);

  it("matches containers by id, id prefix or name, and nothing of another kind", () => {
    expect(match({ container: ["web"] })).toEqual(["die", "exec_start: sh -c true"]);
    expect(match({ container: ["abc"] })).toEqual(["die", "exec_start: sh -c true"]);
    expect(match({ container: ["other"] })).toEqual([]);
  });

  it("matches the action before its colon, type, network, label and image with or without a tag", () => {
    expect(match({ event: ["exec_start"] })).toEqual(["exec_start: sh -c true"]);
    expect(match({ event: ["die", "tag"] })).toEqual(["die", "tag"]);
    expect(match({ type: ["network"] })).toEqual(["connect"]);
    expect(match({ network: ["front"] })).toEqual(["connect"]);
    expect(match({ label: ["team=a"] })).toEqual(["die"]);
    expect(match({ label: ["team"] })).toEqual(["die"]);
    expect(match({ label: ["team=b"] })).toEqual([]);
    expect(match({ image: ["busybox"] })).toEqual(["die", "exec_start: sh -c true", "tag"]);
    expect(match({ image: ["busybox:1"] })).toEqual(["tag"]);
    expect(match({ scope: ["local"] })).toHaveLength(4);
    expect(match({ type: ["container"], event: ["die"] })).toEqual(["die"]);
  });

  it("refuses unknown keys and bad values, naming them", () => {
    expect(() => validateEventFilters({ colour: ["red"], size: ["x"] })).toThrow(
      /invalid filter 'colour', 'size'/,
    );
    expect(() => validateEventFilters({ type: ["box"] })).toThrow(/type=box/);
    expect(() => validateEventFilters({ scope: ["global"] })).toThrow(/scope=global/);
  });

  it("adds the legacy status, id and from fields to container and image events only", () => {
    expect(toDockerEvent(die)).toMatchObject({ status: "die", id: "abc123", from: "busybox:latest" });
    expect(toDockerEvent(tag)).toMatchObject({ status: "tag", id: "sha256:ff" });
    expect(toDockerEvent(tag)).not.toHaveProperty("from");
    expect(toDockerEvent(connect)).not.toHaveProperty("status");
    expect(toDockerEvent(die)).not.toHaveProperty("seq");
  });
});

describe("the event log", () => {
  it("keeps a bounded count and a bounded age", () => {
    let now = NOW;
    const log = new EventLog({ limit: 3, maxAgeMs: 60_000, now: () => now });
    for (let i = 0; i < 5; i++) log.emit("container", `a${i}`, "x");
    expect(log.history().map((e) => e.Action)).toEqual(["a2", "a3", "a4"]);
    now += 30_000;
    log.emit("container", "late", "x");
    now += 45_000;
    expect(log.history().map((e) => e.Action)).toEqual(["late"]);
  });

  it("replays the window and follows what comes, with no event twice or missing", () => {
    let now = NOW;
    const log = new EventLog({ now: () => now });
    log.emit("container", "old", "x");
    now += 1000;
    log.emit("container", "in", "x");
    const seen: string[] = [];
    const { replay, stop } = log.replayAndFollow(
      { sinceNano: (NOW + 500) * 1e6 },
      () => true,
      (e) => seen.push(e.Action),
    );
    log.emit("container", "live", "x");
    stop();
    log.emit("container", "after", "x");
    expect(replay.map((e) => e.Action)).toEqual(["in"]);
    expect(seen).toEqual(["live"]);
    // Without since or until nothing is replayed, as in dockerd.
    expect(
      log.replayAndFollow(
        {},
        () => true,
        () => undefined,
      ).replay,
    ).toEqual([]);
  });

  it("never goes back in time, and numbers every event", () => {
    let now = NOW;
    const log = new EventLog({ now: () => now });
    const a = log.emit("container", "a", "x");
    now -= 5000;
    const b = log.emit("container", "b", "x");
    expect(b.timeNano).toBeGreaterThanOrEqual(a.timeNano);
    expect(b.seq).toBe(a.seq + 1);
  });
});
