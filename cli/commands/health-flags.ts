// run/create's --health-* flags, declared at start-up; cli/health-options.ts turns them into
// the create body's Healthcheck when the command runs (it is loaded only then).
import type { Command } from "commander";

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
