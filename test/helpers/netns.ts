// A second "host" for network tests: its own network namespace joined to a test daemon's
// namespace by a veth pair, 10.254.0.2 on its side and 10.254.0.1 on the daemon's. It has no
// default route, so a container can only reach it through the daemon's NAT, and nothing it
// sends can leave the two namespaces.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { deleteNetns, inNetns, makeNetns } from "./daemon.js";

const run = promisify(execFile);

export const REMOTE_ADDRESS = "10.254.0.2";
export const DAEMON_SIDE_ADDRESS = "10.254.0.1";

export interface RemoteHost {
  netns: string;
  address: string;
  /** The daemon namespace's address on the link: where the remote reaches published ports. */
  daemonAddress: string;
  exec: (cmd: string, args: string[], timeoutMs?: number) => ReturnType<typeof inNetns>;
  /** Start a long-running process in the remote namespace; killed by destroy(). */
  spawn: (cmd: string, args: string[]) => ChildProcess;
  destroy: () => Promise<void>;
}

export async function linkRemoteHost(daemonNetns: string): Promise<RemoteHost> {
  const tag = randomBytes(3).toString("hex");
  const netns = `shoal-r-${tag}`;
  const children: ChildProcess[] = [];
  await makeNetns(netns);
  try {
    await run("ip", [
      "-n",
      daemonNetns,
      "link",
      "add",
      `shr${tag}`,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      netns,
    ]);
    await run("ip", ["-n", daemonNetns, "addr", "add", `${DAEMON_SIDE_ADDRESS}/30`, "dev", `shr${tag}`]);
    await run("ip", ["-n", daemonNetns, "link", "set", `shr${tag}`, "up"]);
    await run("ip", ["-n", netns, "addr", "add", `${REMOTE_ADDRESS}/30`, "dev", "eth0"]);
    await run("ip", ["-n", netns, "link", "set", "eth0", "up"]);
  } catch (e) {
    await deleteNetns(netns);
    throw e;
  }
  return {
    netns,
    address: REMOTE_ADDRESS,
    daemonAddress: DAEMON_SIDE_ADDRESS,
    exec: (cmd, args, timeoutMs) => inNetns(netns, cmd, args, timeoutMs),
    spawn: (cmd, args) => {
      const child = spawn("nsenter", [`--net=/run/netns/${netns}`, cmd, ...args], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      return child;
    },
    destroy: async () => {
      for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
      // Deleting either end of a veth pair removes both.
      await deleteNetns(netns);
    },
  };
}

/** Collect a child's stdout until it exits or `ms` pass. */
export function outputOf(child: ChildProcess, ms: number): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    child.stdout?.on("data", (c: Buffer) => (text += c.toString()));
    const timer = setTimeout(() => resolve(text), ms);
    // "close", not "exit": a process may exit before its last output is read from the pipe.
    child.once("close", () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}
