import { describe, expect, it } from "vitest";
import {
  goDuration,
  mergeHealthcheck,
  probeOf,
  validateHealthcheck,
} from "../../agent/engine/container/health-config.js";
import { restartsAtDaemonStart } from "../../agent/engine/container/restart-policy.js";
import type { ContainerRecord } from "../../agent/engine/container/types.js";

const S = 1e9;

describe("health check settings", () => {
  const image = { Test: ["CMD", "check"], Interval: 5 * S, Retries: 2 };

  it("merges as dockerd: no user check takes the image's, zero fields come from the image", () => {
    expect(mergeHealthcheck(undefined, image)).toEqual(image);
    expect(mergeHealthcheck(null, undefined)).toBeUndefined();
    expect(mergeHealthcheck({ Test: [], Retries: 7, Timeout: 0 }, image)).toEqual({
      Test: ["CMD", "check"],
      Interval: 5 * S,
      Retries: 7,
    });
    // The docker CLI sends Test null for --health-* without --health-cmd.
    const cli = { Test: null as unknown as string[], Interval: S, Timeout: 0, StartPeriod: 0, Retries: 0 };
    expect(mergeHealthcheck(cli, image)).toEqual({ Test: ["CMD", "check"], Interval: S, Retries: 2 });
    expect(mergeHealthcheck({ Test: ["NONE"] }, image)).toEqual({
      Test: ["NONE"],
      Interval: 5 * S,
      Retries: 2,
    });
  });

  it("refuses what dockerd refuses, naming the flag", () => {
    expect(() => validateHealthcheck({ Test: ["CMD-SHELL", "true"], Interval: 100_000 })).toThrow(
      "Interval in Healthcheck cannot be less than 1ms: raise --health-interval",
    );
    expect(() => validateHealthcheck({ Test: ["CMD-SHELL", "true"], StartInterval: 5 })).toThrow(
      "--health-start-interval",
    );
    expect(() => validateHealthcheck({ Test: ["CMD-SHELL", "true"], Retries: -1 })).toThrow(
      "Retries in Healthcheck cannot be negative",
    );
    expect(() => validateHealthcheck({ Test: ["HTTP", "/"] })).toThrow(/unknown health check type "HTTP"/);
    expect(() => validateHealthcheck({ Test: ["CMD"] })).toThrow(/has no command/);
    expect(() => validateHealthcheck({ Test: ["CMD-SHELL", " "] })).toThrow(/has no command/);
    for (const ok of [{ Test: ["NONE"] }, { Test: [] }, { Test: ["CMD", "true"], Interval: 1_000_000 }])
      expect(() => validateHealthcheck(ok)).not.toThrow();
  });

  it("runs CMD as given and CMD-SHELL under /bin/sh -c, with dockerd's defaults", () => {
    expect(probeOf({ Test: ["CMD-SHELL", "curl -f x"] })).toEqual({
      argv: ["/bin/sh", "-c", "curl -f x"],
      intervalMs: 30_000,
      timeoutMs: 30_000,
      startPeriodMs: 0,
      startIntervalMs: 5_000,
      retries: 3,
    });
    expect(probeOf({ Test: ["CMD", "a", "b"], Interval: 2 * S, Retries: 1 })).toMatchObject({
      argv: ["a", "b"],
      intervalMs: 2000,
      retries: 1,
    });
    expect(probeOf({ Test: ["NONE"] })).toBeUndefined();
    expect(probeOf({ Test: [] })).toBeUndefined();
    expect(probeOf(undefined)).toBeUndefined();
  });

  it("prints timeouts as Go prints durations", () => {
    expect(goDuration(1000)).toBe("1s");
    expect(goDuration(500)).toBe("500ms");
    expect(goDuration(1500)).toBe("1.5s");
    expect(goDuration(90_000)).toBe("1m30s");
    expect(goDuration(3_600_000)).toBe("1h0m0s");
  });
});

describe("restart policy at daemon start", () => {
  const rec = (
    Name: string,
    o: { exit?: number; stopped?: boolean; count?: number; max?: number; started?: boolean } = {},
  ) =>
    ({
      HostConfig: { RestartPolicy: { Name, MaximumRetryCount: o.max ?? 0 } },
      State: {
        Status: "exited",
        ExitCode: o.exit ?? 0,
        StartedAt: o.started === false ? "0001-01-01T00:00:00Z" : "2026-01-01T00:00:00Z",
      },
      HasBeenManuallyStopped: o.stopped ?? false,
      RestartCount: o.count ?? 0,
    }) as unknown as ContainerRecord;

  it("follows dockerd's restore", () => {
    expect(restartsAtDaemonStart(rec("always", { stopped: true }))).toBe(true);
    expect(restartsAtDaemonStart(rec("unless-stopped"))).toBe(true);
    expect(restartsAtDaemonStart(rec("unless-stopped", { stopped: true }))).toBe(false);
    expect(restartsAtDaemonStart(rec("on-failure", { exit: 1 }))).toBe(true);
    expect(restartsAtDaemonStart(rec("on-failure", { exit: 0 }))).toBe(false);
    expect(restartsAtDaemonStart(rec("on-failure", { exit: 1, max: 2, count: 2 }))).toBe(false);
    expect(restartsAtDaemonStart(rec("on-failure", { exit: 1, max: 2, count: 1 }))).toBe(true);
    expect(restartsAtDaemonStart(rec("no", { exit: 1 }))).toBe(false);
    expect(restartsAtDaemonStart(rec("always", { started: false }))).toBe(false);
  });
});
