// Making a cluster of the lab's hosts: `swarm init` on the first manager, then every other host
// joins with the manager or worker token, each advertising its underlay address, all through
// the hosts' own Engine API sockets as a user would.
import { request } from "node:http";
import type { Lab, LabHost } from "./lab.js";

export interface HostAnswer {
  status: number;
  body: string;
  json<T>(): T;
}

/** One Engine API call on a lab host's socket. */
export function hostApi(socket: string, method: string, path: string, body?: unknown): Promise<HostAnswer> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {},
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode ?? 0, body: text, json: <T>() => JSON.parse(text) as T });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} on ${socket} timed out`)));
    req.end(payload);
  });
}

async function ok(h: LabHost, method: string, path: string, body?: unknown): Promise<HostAnswer> {
  const r = await hostApi(h.socket, method, path, body);
  if (r.status >= 300) throw new Error(`${h.name}: ${method} ${path} answered ${r.status}: ${r.body}`);
  return r;
}

export const CLUSTER_PORT = 2377;

/** host:port where a lab host's cluster port is reached. */
export const clusterAddr = (h: LabHost): string => `${h.address}:${CLUSTER_PORT}`;

/** The first manager initialises; the named hosts (default: all others) join. */
export async function formCluster(lab: Lab, joiners?: string[]): Promise<void> {
  const first = lab.state.hosts.find((h) => h.role === "manager");
  if (!first) throw new Error("the lab has no manager host to initialise the cluster on");
  await ok(first, "POST", "/swarm/init", {
    ListenAddr: `0.0.0.0:${CLUSTER_PORT}`,
    AdvertiseAddr: clusterAddr(first),
  });
  const names = joiners ?? lab.state.hosts.filter((h) => h !== first).map((h) => h.name);
  for (const name of names) await joinCluster(lab, name);
}

/** One host joins the cluster whose first manager is the lab's first manager host. */
export async function joinCluster(lab: Lab, name: string, token?: string): Promise<HostAnswer> {
  const h = lab.host(name);
  const first = lab.state.hosts.find((x) => x.role === "manager");
  if (!first) throw new Error("the lab has no manager host");
  const swarm = (await ok(first, "GET", "/swarm")).json<{
    JoinTokens: { Worker: string; Manager: string };
  }>();
  const r = await hostApi(h.socket, "POST", "/swarm/join", {
    ListenAddr: `0.0.0.0:${CLUSTER_PORT}`,
    AdvertiseAddr: clusterAddr(h),
    RemoteAddrs: [clusterAddr(first)],
    JoinToken: token ?? (h.role === "manager" ? swarm.JoinTokens.Manager : swarm.JoinTokens.Worker),
  });
  if (!token && r.status >= 300) throw new Error(`${h.name} could not join: ${r.status} ${r.body}`);
  return r;
}
