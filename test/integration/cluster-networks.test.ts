// Overlay networks on a one-node cluster, manager side, through the real docker CLI: create
// with --subnet and --attachable, ls (scope swarm), inspect (subnet, VXLAN id), a service on the
// network publishing through the routing mesh gets a VIP on it and on ingress, and rm is refused
// while the service exists and succeeds after it is removed. Tasks need not run here: the agent
// side of overlays is another piece; only what the managers decide is checked.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/cluster.js";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";

let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
  const init = await dk(["swarm", "init"]);
  if (init.code !== 0) throw new Error(`swarm init failed: ${init.stderr}`);
});
afterAll(async () => {
  await d?.destroy();
});

interface NetworkView {
  Id: string;
  Name: string;
  Scope: string;
  Driver: string;
  Attachable: boolean;
  Ingress: boolean;
  IPAM: { Config: Array<{ Subnet: string; Gateway: string }> };
  Options: Record<string, string>;
}

describe("overlay networks on a manager", () => {
  it("the ingress network exists once the cluster has a leader", async () => {
    const ingress = await until("the ingress network", async () => {
      const r = await api(d.socket, "GET", "/networks/ingress");
      return r.status === 200 ? r.json<NetworkView>() : undefined;
    });
    expect(ingress).toMatchObject({ Scope: "swarm", Driver: "overlay", Ingress: true });
    expect(ingress.IPAM.Config[0].Subnet).toBe("10.0.0.0/24");
  });

  it("network create -d overlay --subnet --attachable; ls shows scope swarm; inspect the subnet and VXLAN id", async () => {
    const c = await dk([
      "network",
      "create",
      "-d",
      "overlay",
      "--subnet",
      "10.10.0.0/24",
      "--attachable",
      "appnet",
    ]);
    expect(c.code, c.stderr).toBe(0);
    const id = c.stdout.trim();
    expect(id).toMatch(/^[a-z0-9]{25}$/);
    const ls = await dk(["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.split("\n")).toEqual(
      expect.arrayContaining(["appnet overlay swarm", "ingress overlay swarm"]),
    );
    const inspect = await dk(["network", "inspect", "appnet"]);
    expect(inspect.code, inspect.stderr).toBe(0);
    const [n] = JSON.parse(inspect.stdout) as NetworkView[];
    expect(n).toMatchObject({ Id: id, Name: "appnet", Scope: "swarm", Driver: "overlay", Attachable: true });
    expect(n.IPAM.Config).toEqual([{ Subnet: "10.10.0.0/24", Gateway: "10.10.0.1" }]);
    expect(Number(n.Options["com.docker.network.driver.overlay.vxlanid_list"])).toBeGreaterThanOrEqual(4097);
    const overlap = await dk(["network", "create", "-d", "overlay", "--subnet", "10.10.0.0/16", "other"]);
    expect(overlap.code).not.toBe(0);
    expect(overlap.stderr).toContain("overlaps network appnet");
  });

  it("service create --network --publish gets a VIP on the network and on ingress; network rm waits for the service", async () => {
    const r = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "web",
      "--network",
      "appnet",
      "--publish",
      "8080:80",
      "busybox",
      "sleep",
      "1000",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const inspect = await dk(["service", "inspect", "web"]);
    const [s] = JSON.parse(inspect.stdout) as Array<{
      Endpoint: {
        Ports: Array<{ PublishedPort: number; TargetPort: number; PublishMode: string }>;
        VirtualIPs: Array<{ NetworkID: string; Addr: string }>;
      };
    }>;
    const appnet = JSON.parse((await dk(["network", "inspect", "appnet"])).stdout)[0].Id as string;
    const ingress = JSON.parse((await dk(["network", "inspect", "ingress"])).stdout)[0].Id as string;
    expect(s.Endpoint.Ports).toEqual([
      expect.objectContaining({ PublishedPort: 8080, TargetPort: 80, PublishMode: "ingress" }),
    ]);
    const vips = new Map(s.Endpoint.VirtualIPs.map((v) => [v.NetworkID, v.Addr]));
    expect(vips.get(appnet)).toMatch(/^10\.10\.0\.\d+\/24$/);
    expect(vips.get(ingress)).toMatch(/^10\.0\.0\.\d+\/24$/);

    const taken = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "web2",
      "--publish",
      "8080:80",
      "busybox",
      "sleep",
      "1000",
    ]);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain("port '8080' is already in use by service 'web'");

    // The task gets its addresses from the allocator.
    await until("the task's addresses", async () => {
      const tasks = (await api(d.socket, "GET", '/tasks?filters={"service":["web"]}')).json<
        Array<{ NetworksAttachments?: Array<{ Addresses: string[] }> }>
      >();
      return tasks.some((t) => (t.NetworksAttachments ?? []).length === 2) ? true : undefined;
    });

    const rm = await dk(["network", "rm", "appnet"]);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toContain("network appnet is in use by service web");
    expect((await dk(["service", "rm", "web"])).code).toBe(0);
    // Its tasks are shut down first; then the network goes.
    await until(
      "network rm appnet to succeed",
      async () => ((await dk(["network", "rm", "appnet"])).code === 0 ? true : undefined),
      30_000,
    );
    const ls = await dk(["network", "ls", "--format", "{{.Name}}"]);
    expect(ls.stdout.split("\n")).not.toContain("appnet");
  });

  it("an exhausted subnet leaves tasks new with the reason in service ps, and the placed ones run", async () => {
    const mk = await dk(["network", "create", "-d", "overlay", "--subnet", "10.12.0.0/29", "tiny"]);
    expect(mk.code, mk.stderr).toBe(0);
    // A /29 has 5 usable addresses: the VIP and this node's own endpoint take two; three tasks fit.
    const svc = await dk([
      "service",
      "create",
      "--detach",
      "--name",
      "crowd",
      "--replicas",
      "5",
      "--network",
      "tiny",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "100000",
    ]);
    expect(svc.code, svc.stderr).toBe(0);
    await until(
      "a task waiting for lack of addresses",
      async () => {
        const r = await dk([
          "service",
          "ps",
          "--no-trunc",
          "--format",
          "{{.CurrentState}}|{{.Error}}",
          "crowd",
        ]);
        return /New.*no free address in tiny/.test(r.stdout) ? true : undefined;
      },
      30_000,
    );
    await until(
      "three running",
      async () => {
        const r = await dk(["service", "ps", "--format", "{{.CurrentState}}", "crowd"]);
        return r.stdout.split("\n").filter((l) => l.startsWith("Running")).length === 3 ? true : undefined;
      },
      60_000,
    );
    expect((await dk(["service", "rm", "crowd"])).code).toBe(0);
    await until(
      "tiny removable",
      async () => ((await dk(["network", "rm", "tiny"])).code === 0 ? true : undefined),
      30_000,
    );
  }, 120_000);
});
