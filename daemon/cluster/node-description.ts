// This host as the cluster sees it: what a node tells the CA when it joins and the dispatcher
// in every session.
import { availableParallelism, hostname, totalmem } from "node:os";
import type { NodeDescription } from "../../proto/gen/cluster.js";

function platformArch(): string {
  return process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch;
}

/** `advertiseAddr`: host:port the other nodes reach this one at. */
export function nodeDescription(advertiseAddr: string): NodeDescription {
  return {
    hostname: hostname(),
    os: "linux",
    architecture: platformArch(),
    nanoCpus: availableParallelism() * 1e9,
    memoryBytes: totalmem(),
    addr: advertiseAddr.replace(/:\d+$/, ""),
  };
}
