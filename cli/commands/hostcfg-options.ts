// run/create flags for the security, namespace, device and link fields (docs/engine-hostconfig.md).
// Only the option table lives here, loaded at start-up; hostcfg-flags.ts reads the values.
import type { Command } from "commander";
import { collect } from "../command.js";

export function hostcfgFlags(cmd: Command): Command {
  return cmd
    .option("--security-opt <list>", "Security Options", collect)
    .option("--device <list>", "Add a host device to the container", collect)
    .option("--device-cgroup-rule <list>", "Add a rule to the cgroup allowed devices list", collect)
    .option("--sysctl <map>", "Sysctl options", collect)
    .option("--pid <string>", "PID namespace to use")
    .option("--ipc <string>", "IPC mode to use")
    .option("--uts <string>", "UTS namespace to use")
    .option("--group-add <list>", "Add additional groups to join", collect)
    .option("--oom-score-adj <int>", "Tune host's OOM preferences (-1000 to 1000)")
    .option("--mac-address <string>", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
    .option("--volumes-from <list>", "Mount volumes from the specified container(s)", collect)
    .option("--link <list>", "Add link to another container", collect)
    .option("--shm-size <bytes>", "Size of /dev/shm");
}
