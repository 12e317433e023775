// A worker has no control API, as in swarmkit: from its own socket the cluster routes answer 503
// with Docker's words (no join token, no promotion, no service), while its own engine (networks,
// `docker info`, `swarm leave`) keeps answering locally; and a Forward call made by hand with the
// worker's certificate cannot have the manager create a container or leave the cluster.
// Two real shoald processes in their own network namespaces (test/helpers/two-nodes.ts).
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runningTasks, until } from "../helpers/cluster.js";
import { loadBusybox } from "../helpers/busybox.js";
import { api, repoRoot, runFixtureIn } from "../helpers/daemon.js";
import { docker, shoal } from "../helpers/cli.js";
import { twoNodeCluster, type TwoNodes } from "../helpers/two-nodes.js";

const WORKER_503 =
  "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
const PERMISSION_DENIED = 7;

let c: TwoNodes;

beforeAll(async () => {
  c = await twoNodeCluster();
}, 120_000);
afterAll(async () => {
  await c?.destroy();
}, 60_000);

interface NodeView {
  ID: string;
  Version: { Index: number };
  Spec: { Role: string; Availability: string; Labels?: Record<string, string> };
  Status: { State: string };
}

const nodeAtManager = async (id: string): Promise<NodeView> =>
  (await api(c.manager.socket, "GET", `/nodes/${id}`)).json<NodeView>();

interface ForwardResult {
  code: number;
  details: string;
  status: number;
  body: string;
}

/** Forward calls to the manager with the worker's certificate, from the worker's namespace. */
const forwardAsWorker = (calls: Array<{ method: string; url: string; body?: string }>) =>
  runFixtureIn<ForwardResult[]>(c.worker.netns, join(repoRoot, "test/fixtures/forward-call.mjs"), {
    addr: c.managerAddr,
    certsDir: c.workerCertsDir,
    calls,
  });

describe("a worker's own socket", { timeout: 60_000 }, () => {
  it("GET /swarm: 503 with Docker's words and no join token; /info shows the node's swarm state", async () => {
    const r = await api(c.worker.socket, "GET", "/swarm");
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({ message: WORKER_503 });
    expect(r.body.toString()).not.toContain("SWMTKN");
    const info = await api(c.worker.socket, "GET", "/info");
    expect(info.status).toBe(200);
    const swarm = info.json<{
      Swarm: { NodeID: string; LocalNodeState: string; ControlAvailable: boolean };
    }>().Swarm;
    expect(swarm).toMatchObject({ NodeID: c.workerId, LocalNodeState: "active", ControlAvailable: false });
    expect(info.body.toString()).not.toContain("SWMTKN");
    // The docker CLI's join-token reads GET /swarm: it gets the message, not a token.
    const token = await docker(c.worker.socket, ["swarm", "join-token", "-q", "manager"]);
    expect(token.code).not.toBe(0);
    expect(token.stdout).not.toContain("SWMTKN");
    expect(token.stderr).toContain(WORKER_503);
  });

  it("promoting itself (POST /nodes/<self>/update) is refused; the manager still sees a worker", async () => {
    const before = await nodeAtManager(c.workerId);
    expect(before.Spec.Role).toBe("worker");
    const r = await api(
      c.worker.socket,
      "POST",
      `/nodes/${c.workerId}/update?version=${before.Version.Index}`,
      { ...before.Spec, Role: "manager" },
    );
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({ message: WORKER_503 });
    const promote = await docker(c.worker.socket, ["node", "promote", c.workerId]);
    expect(promote.code).not.toBe(0);
    expect(promote.stderr).toContain(WORKER_503);
    const after = await nodeAtManager(c.workerId);
    expect(after.Spec.Role).toBe("worker");
    expect(after.Version.Index).toBe(before.Version.Index);
  });

  it("POST /services/create is refused and no service exists; shoal and docker CLIs print the reason", async () => {
    const r = await api(c.worker.socket, "POST", "/services/create", {
      Name: "fromworker",
      TaskTemplate: { ContainerSpec: { Image: "busybox", Args: ["sleep", "1000"] } },
    });
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({ message: WORKER_503 });
    expect((await api(c.manager.socket, "GET", "/services")).json<unknown[]>()).toEqual([]);
    const ls = await shoal(c.worker.socket, ["node", "ls"]);
    expect(ls.code).not.toBe(0);
    expect(ls.stderr).toContain(`Error response from daemon: ${WORKER_503}`);
    const dls = await docker(c.worker.socket, ["service", "ls"]);
    expect(dls.code).not.toBe(0);
    expect(dls.stderr).toContain(WORKER_503);
  });

  it("GET /networks lists the worker's own networks; docker network ls and inspect work there", async () => {
    const r = await api(c.worker.socket, "GET", "/networks");
    expect(r.status).toBe(200);
    const names = r.json<Array<{ Name: string; Scope: string }>>().map((n) => n.Name);
    expect(names).toContain("bridge");
    const ls = await docker(c.worker.socket, ["network", "ls", "--format", "{{.Name}} {{.Scope}}"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^bridge local$/m);
    const inspect = await docker(c.worker.socket, ["network", "inspect", "-f", "{{.Driver}}", "bridge"]);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout.trim()).toBe("bridge");
  });

  it("an overlay network attached to the worker (by a task there) is listed and inspected locally", async () => {
    await loadBusybox(c.worker.socket);
    const net = await docker(c.manager.socket, [
      "network",
      "create",
      "-d",
      "overlay",
      "--subnet",
      "172.30.77.0/24",
      "wnet",
    ]);
    expect(net.code, net.stderr).toBe(0);
    const svc = await docker(c.manager.socket, [
      "service",
      "create",
      "--detach",
      "--name",
      "onworker",
      "--network",
      "wnet",
      "--constraint",
      "node.role==worker",
      "busybox",
      "sleep",
      "100000",
    ]);
    expect(svc.code, svc.stderr).toBe(0);
    await until(
      "the task running on the worker",
      async () => ((await runningTasks(c.manager.socket, "onworker")).length === 1 ? true : undefined),
      60_000,
    );
    const ls = await docker(c.worker.socket, [
      "network",
      "ls",
      "--format",
      "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^wnet overlay swarm$/m);
    const inspect = await docker(c.worker.socket, [
      "network",
      "inspect",
      "-f",
      "{{.Driver}} {{(index .IPAM.Config 0).Subnet}}",
      "wnet",
    ]);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout.trim()).toBe("overlay 172.30.77.0/24");
    expect((await docker(c.manager.socket, ["service", "rm", "onworker"])).code).toBe(0);
  });
});

describe("a Forward call made with the worker's certificate", { timeout: 60_000 }, () => {
  it("cannot create a container on the manager, read the tokens, or make the manager leave", async () => {
    const [create, swarm, leave] = await forwardAsWorker([
      {
        method: "POST",
        url: "/containers/create?name=pwned",
        body: JSON.stringify({
          Image: "busybox",
          Cmd: ["true"],
          HostConfig: { Privileged: true, Binds: ["/:/host"] },
        }),
      },
      { method: "GET", url: "/swarm" },
      { method: "POST", url: "/swarm/leave?force=true" },
    ]);
    for (const r of [create, swarm, leave]) {
      expect(r.code, r.details).toBe(PERMISSION_DENIED);
      expect(r.status).toBe(0);
      expect(r.body).not.toContain("SWMTKN");
    }
    // The manager is still the cluster's manager, with both nodes, and made no container.
    const info = (await api(c.manager.socket, "GET", "/info")).json<{
      Swarm: { NodeID: string; LocalNodeState: string; ControlAvailable: boolean };
    }>();
    expect(info.Swarm).toMatchObject({
      NodeID: c.managerId,
      LocalNodeState: "active",
      ControlAvailable: true,
    });
    const nodes = (await api(c.manager.socket, "GET", "/nodes")).json<NodeView[]>();
    expect(nodes.map((n) => n.ID).sort()).toEqual([c.managerId, c.workerId].sort());
    const containers = (await api(c.manager.socket, "GET", "/containers/json?all=1")).json<
      Array<{ Names: string[] }>
    >();
    expect(containers.flatMap((x) => x.Names)).not.toContain("/pwned");
    expect((await api(c.manager.socket, "GET", "/swarm")).status).toBe(200);
  });
});

describe("docker swarm leave on the worker", { timeout: 60_000 }, () => {
  it("works (it is the worker's own business); the manager sees it go down", async () => {
    const leave = await docker(c.worker.socket, ["swarm", "leave"]);
    expect(leave.code, leave.stderr).toBe(0);
    const info = (await api(c.worker.socket, "GET", "/info")).json<{ Swarm: { LocalNodeState: string } }>();
    expect(info.Swarm.LocalNodeState).toBe("inactive");
    await until("the worker down at the manager", async () =>
      (await nodeAtManager(c.workerId)).Status.State === "down" ? true : undefined,
    );
    // Out of the cluster, the worker's socket says so in the words for a node in no swarm.
    const r = await api(c.worker.socket, "GET", "/nodes");
    expect(r.status).toBe(503);
    expect(r.json<{ message: string }>().message).toContain('Use "docker swarm init" or "docker swarm join"');
  });
});
