// run/create's cgroup limit flags beyond --memory/--cpus/--pids-limit; cli/resource-flags.ts
// turns them into HostConfig fields when the command runs.
import type { Command } from "commander";
import { collect } from "../command.js";

export function resourceOptions(cmd: Command): Command {
  return cmd
    .option("--cpuset-cpus <string>", "CPUs in which to allow execution (0-3, 0,1)")
    .option("--cpuset-mems <string>", "MEMs in which to allow execution (0-3, 0,1)")
    .option("--cpu-period <int>", "Limit CPU CFS (Completely Fair Scheduler) period")
    .option("--cpu-quota <int>", "Limit CPU CFS (Completely Fair Scheduler) quota")
    .option("--memory-reservation <bytes>", "Memory soft limit")
    .option("--memory-swappiness <int>", "Tune container memory swappiness (0 to 100)")
    .option("--blkio-weight <int>", "Block IO (relative weight), between 10 and 1000, or 0 to disable")
    .option("--oom-kill-disable", "Disable OOM Killer")
    .option("--device-read-bps <list>", "Limit read rate (bytes per second) from a device", collect)
    .option("--device-write-bps <list>", "Limit write rate (bytes per second) to a device", collect)
    .option("--device-read-iops <list>", "Limit read rate (IO per second) from a device", collect)
    .option("--device-write-iops <list>", "Limit write rate (IO per second) to a device", collect);
}
