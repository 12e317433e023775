// run/create's health check flags and their Healthcheck body, as the docker CLI builds it
// (cli/command/container/opts.go): --health-cmd gives CMD-SHELL, durations in nanoseconds,
// --no-healthcheck gives Test ["NONE"] and conflicts with the others.
import type { Command } from "commander";
import { parseDurationMs } from "../shared/units.js";
import { UsageError } from "./errors.js";

export interface HealthFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  healthRetries?: string;
  healthcheck?: boolean;
}

export interface HealthcheckBody {
  Test: string[] | null;
  Interval: number;
  Timeout: number;
  StartPeriod: number;
  StartInterval: number;
  Retries: number;
}

export function healthFlags(cmd: Command): Command {
  return cmd
    .option("--health-cmd <string>", "Command to run to check health")
    .option("--health-interval <duration>", "Time between running the check (ms|s|m|h) (default 0s)")
    .option("--health-timeout <duration>", "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    .option(
      "--health-start-period <duration>",
      "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)",
    )
    .option(
      "--health-start-interval <duration>",
      "Time between running the check during the start period (ms|s|m|h) (default 0s)",
    )
    .option("--health-retries <int>", "Consecutive failures needed to report unhealthy")
    .option("--no-healthcheck", "Disable any container-specified HEALTHCHECK");
}

function nanoseconds(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  const v = value.trim();
  if (v.startsWith("-")) throw new UsageError(`${flag} cannot be negative`);
  // Go's ParseDuration takes a bare 0.
  if (v === "0") return 0;
  try {
    return Math.round(parseDurationMs(v, flag) * 1e6);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The create body's Healthcheck, or undefined when no health flag was given. */
export function healthcheckFromFlags(f: HealthFlags): HealthcheckBody | undefined {
  let retries = 0;
  if (f.healthRetries !== undefined) {
    if (!/^-?\d+$/.test(f.healthRetries.trim()))
      throw new UsageError(`invalid value "${f.healthRetries}" for --health-retries: use a whole number`);
    retries = Number(f.healthRetries.trim());
    if (retries < 0) throw new UsageError("--health-retries cannot be negative");
  }
  const body: HealthcheckBody = {
    Test: f.healthCmd ? ["CMD-SHELL", f.healthCmd] : null,
    Interval: nanoseconds(f.healthInterval, "--health-interval"),
    Timeout: nanoseconds(f.healthTimeout, "--health-timeout"),
    StartPeriod: nanoseconds(f.healthStartPeriod, "--health-start-period"),
    StartInterval: nanoseconds(f.healthStartInterval, "--health-start-interval"),
    Retries: retries,
  };
  const any =
    body.Test !== null ||
    body.Interval !== 0 ||
    body.Timeout !== 0 ||
    body.StartPeriod !== 0 ||
    body.StartInterval !== 0 ||
    body.Retries !== 0;
  // commander's --no-healthcheck sets healthcheck to false.
  if (f.healthcheck === false) {
    if (any) throw new UsageError("--no-healthcheck conflicts with --health-* options");
    return { Test: ["NONE"], Interval: 0, Timeout: 0, StartPeriod: 0, StartInterval: 0, Retries: 0 };
  }
  return any ? body : undefined;
}
