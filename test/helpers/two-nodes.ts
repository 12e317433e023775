// A one-manager, one-worker cluster of two real shoald processes, each in its own network
// namespace, joined by a veth pair (the "underlay"): the manager initialises, the worker joins
// with the worker token through its own socket, as a user would. Deleting the namespaces (the
// daemons' destroy) takes the veth along.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { until } from "./cluster.js";
import { api, startDaemon, type TestDaemon } from "./daemon.js";

const run = promisify(execFile);

export interface TwoNodes {
  manager: TestDaemon;
  worker: TestDaemon;
  /** host:port of the manager's cluster port, as the worker reaches it. */
  managerAddr: string;
  managerId: string;
  workerId: string;
  /** The worker's certificate, key and CA, as its daemon keeps them. */
  workerCertsDir: string;
  destroy(): Promise<void>;
}

interface NodeRow {
  ID: string;
  Spec: { Role: string };
  Status: { State: string };
}

async function ok(d: TestDaemon, method: string, path: string, body?: unknown) {
  const r = await api(d.socket, method, path, body);
  if (r.status >= 300)
    throw new Error(`${method} ${path} answered ${r.status}: ${r.body.toString()}\n${d.logs()}`);
  return r;
}

/** The cluster; the underlay is 10.231.0.0/24 inside the two namespaces only (files running at once each have their own). */
export async function twoNodeCluster(): Promise<TwoNodes> {
  const started: TestDaemon[] = [];
  const destroy = async () => {
    for (const d of started) await d.destroy().catch(() => undefined);
  };
  try {
    const manager = await startDaemon();
    started.push(manager);
    const worker = await startDaemon();
    started.push(worker);
    const [mAddr, wAddr] = ["10.231.0.1", "10.231.0.2"];
    await run("ip", [
      "link",
      "add",
      "ul0",
      "netns",
      manager.netns,
      "type",
      "veth",
      "peer",
      "name",
      "ul0",
      "netns",
      worker.netns,
    ]);
    for (const [d, addr] of [
      [manager, mAddr],
      [worker, wAddr],
    ] as const) {
      await run("ip", ["-n", d.netns, "addr", "add", `${addr}/24`, "dev", "ul0"]);
      await run("ip", ["-n", d.netns, "link", "set", "ul0", "up"]);
    }
    const managerAddr = `${mAddr}:2377`;
    const managerId = (
      await ok(manager, "POST", "/swarm/init", { ListenAddr: "0.0.0.0:2377", AdvertiseAddr: managerAddr })
    ).json<string>();
    const tokens = (await ok(manager, "GET", "/swarm")).json<{ JoinTokens: { Worker: string } }>().JoinTokens;
    await ok(worker, "POST", "/swarm/join", {
      ListenAddr: "0.0.0.0:2377",
      AdvertiseAddr: `${wAddr}:2377`,
      RemoteAddrs: [managerAddr],
      JoinToken: tokens.Worker,
    });
    const workerId = (await api(worker.socket, "GET", "/info")).json<{ Swarm: { NodeID: string } }>().Swarm
      .NodeID;
    await until(
      "the worker ready at the manager",
      async () => {
        const nodes = (await api(manager.socket, "GET", "/nodes")).json<NodeRow[]>();
        return nodes.length === 2 && nodes.every((n) => n.Status.State === "ready") ? true : undefined;
      },
      60_000,
    );
    return {
      manager,
      worker,
      managerAddr,
      managerId,
      workerId,
      workerCertsDir: join(worker.dataRoot, "swarm", "certs"),
      destroy,
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}
