// Plain containers on an attachable overlay network on a one-node cluster, through the real
// docker CLI (`docker run --network app`): the container gets its address from the leader (over
// the cluster port, with the node's identity), shows in `network ls` and `network inspect`,
// reaches a service by name, VIP and tasks.<name>, and the service's task reaches it by its name
// and alias; `docker rm -f` gives the address back and the node's devices for the network go
// once nothing uses it; stop/start detaches and attaches again; `network connect` works on a
// running container; a container that died while the daemon was down has its attachment given
// back after the restart; and bad input (not attachable, ingress, unknown network) is a 4xx
// that leaves no container behind. The lab test (test/e2e/overlay-attach-lab.test.ts) does the
// same across hosts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/cluster.js";
import { api, inNetns, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";
import { overlayBridgeName, overlayVxlanName } from "../../agent/engine/network/overlay/names.js";

let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);

async function ok(args: string[]): Promise<string> {
  const r = await dk(args);
  expect(r.code, `docker ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

const HTTPD = (text: string): string[] => [
  "sh",
  "-c",
  `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`,
];

/** The A records busybox nslookup printed for `name`. */
function resolved(out: string, name: string): string[] {
  const block = out.split(`NSLOOKUP ${name}`)[1]?.split("NSLOOKUP-END")[0] ?? "";
  const answers = block.split(/\n\s*\n/).filter((b) => /^Name:/m.test(b));
  return answers.flatMap((b) => [...b.matchAll(/^Address:\s*([\d.]+)\s*$/gm)].map((m) => m[1])).sort();
}
const lookup = (name: string): string => `echo "NSLOOKUP ${name}"; nslookup ${name}; echo NSLOOKUP-END`;
const get = (target: string): string =>
  `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${target} 80 | tail -1`;

const ipOf = async (name: string, network = "app"): Promise<string> =>
  (await ok(["inspect", "-f", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name])).trim();

/** This node's links for a network's overlay (its bridge and VXLAN device). */
async function overlayLinks(networkId: string): Promise<string[]> {
  const { stdout } = await inNetns(d.netns, "ip", ["-o", "link"]);
  return [overlayBridgeName(networkId), overlayVxlanName(networkId)].filter((l) => stdout.includes(l));
}

let appId = "";

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
  const init = await dk(["swarm", "init"]);
  if (init.code !== 0) throw new Error(`swarm init failed: ${init.stderr}`);
  await until("the ingress network", async () =>
    (await api(d.socket, "GET", "/networks/ingress")).status === 200 ? true : undefined,
  );
  appId = (
    await ok(["network", "create", "-d", "overlay", "--attachable", "--subnet", "10.30.0.0/24", "app"])
  ).trim();
  await ok(["network", "create", "-d", "overlay", "--subnet", "10.31.0.0/24", "closed"]);
}, 120_000);
afterAll(async () => {
  await d?.destroy();
});

describe("docker run --network <attachable overlay> on a cluster node", { timeout: 120_000 }, () => {
  it("bad input is a 4xx naming the network and the fix, and leaves no container", async () => {
    const closed = await dk(["run", "-d", "--name", "bad1", "--network", "closed", "busybox", "true"]);
    expect(closed.code).not.toBe(0);
    expect(closed.stderr).toContain("network closed is not manually attachable");
    expect(closed.stderr).toContain("--attachable closed");
    const raw = await api(d.socket, "POST", "/containers/create?name=bad2", {
      Image: "busybox",
      Cmd: ["true"],
      HostConfig: { NetworkMode: "closed" },
    });
    expect(raw.status).toBe(403);
    const ingress = await api(d.socket, "POST", "/containers/create?name=bad3", {
      Image: "busybox",
      HostConfig: { NetworkMode: "ingress" },
    });
    expect(ingress.status).toBe(403);
    expect(ingress.json<{ message: string }>().message).toContain("not manually attachable");
    const unknown = await api(d.socket, "POST", "/containers/create?name=bad4", {
      Image: "busybox",
      HostConfig: { NetworkMode: "nosuchnet" },
    });
    expect(unknown.status).toBe(404);
    const ps = await ok(["ps", "-a", "--format", "{{.Names}}"]);
    expect(ps.split("\n").filter((n) => n.startsWith("bad"))).toEqual([]);
    // Nothing was allocated: inspect on the manager lists no container.
    const inspect = (await api(d.socket, "GET", "/networks/closed")).json<{ Containers: object }>();
    expect(inspect.Containers).toEqual({});
  });

  it("a plain container gets its address from the cluster; it and a service's task reach each other by name, alias, VIP and tasks.<name>", async () => {
    await ok([
      "service",
      "create",
      "-d",
      "--name",
      "web",
      "--network",
      "app",
      "--stop-grace-period",
      "1s",
      "busybox",
      ...HTTPD("web-ok"),
    ]);
    const vip = await until("web's VIP and running task", async () => {
      const s = await api(d.socket, "GET", "/services/web");
      const t = await api(d.socket, "GET", `/tasks?filters=${encodeURIComponent('{"service":["web"]}')}`);
      const running = t
        .json<Array<{ Status: { State: string } }>>()
        .some((x) => x.Status.State === "running");
      const v = s.json<{ Endpoint?: { VirtualIPs?: Array<{ Addr: string }> } }>().Endpoint?.VirtualIPs?.[0];
      return running && v ? v.Addr.split("/")[0] : undefined;
    });
    await ok([
      "run",
      "-d",
      "--name",
      "c1",
      "--network",
      "app",
      "--network-alias",
      "cee",
      "busybox",
      ...HTTPD("c1-ok"),
    ]);
    const c1 = await ipOf("c1");
    expect(c1).toMatch(/^10\.30\.0\.\d+$/);
    // The network shows on the node, and inspect lists the container.
    expect(
      await ok(["network", "ls", "--filter", "name=app", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]),
    ).toContain("app overlay swarm");
    const view = JSON.parse(await ok(["network", "inspect", "app"])) as Array<{
      Containers: Record<string, { Name: string; IPv4Address: string }>;
    }>;
    // The service's task is there too, as in Docker.
    expect(Object.values(view[0].Containers)).toEqual(
      expect.arrayContaining([expect.objectContaining({ Name: "c1", IPv4Address: `${c1}/24` })]),
    );
    expect(await overlayLinks(appId)).toHaveLength(2);

    // From a plain container to the service.
    const out = await ok([
      "run",
      "--rm",
      "--network",
      "app",
      "busybox",
      "sh",
      "-c",
      `${lookup("web")}; ${lookup("tasks.web")}; ${get("web")}; ${get(vip)}`,
    ]);
    expect(resolved(out, "web")).toEqual([vip]);
    expect(resolved(out, "tasks.web")).toHaveLength(1);
    expect(out.match(/web-ok/g)).toHaveLength(2);

    // From a service task to the plain container, by name and alias.
    await ok([
      "service",
      "create",
      "-d",
      "--name",
      "probe",
      "--network",
      "app",
      "--restart-condition",
      "none",
      "busybox",
      "sh",
      "-c",
      `${lookup("c1")}; ${lookup("cee")}; ${get("c1")}; echo PROBE-DONE`,
    ]);
    const logs = await until("the probe's output", async () => {
      const r = await dk(["service", "logs", "--raw", "probe"]);
      return r.stdout.includes("PROBE-DONE") ? r.stdout : undefined;
    });
    await ok(["service", "rm", "probe"]);
    expect(resolved(logs, "c1")).toEqual([c1]);
    expect(resolved(logs, "cee")).toEqual([c1]);
    expect(logs).toContain("c1-ok");
  });

  it("stop detaches and start attaches again; network connect and disconnect on a running container", async () => {
    await ok(["stop", "-t", "1", "c1"]);
    expect(await ipOf("c1")).toBe("");
    await ok(["start", "c1"]);
    const c1 = await ipOf("c1");
    expect(c1).toMatch(/^10\.30\.0\.\d+$/);
    // A taken --ip is the leader's 409 at start; --rm takes the container away, as dockerd does.
    const taken = await dk([
      "run",
      "--rm",
      "--name",
      "taken",
      "--network",
      "app",
      "--ip",
      c1,
      "busybox",
      "true",
    ]);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain(`address ${c1} on network app is already in use`);
    expect(await ok(["ps", "-a", "--filter", "name=taken", "--format", "{{.Names}}"])).toBe("");

    await ok(["run", "-d", "--name", "b1", "busybox", "sleep", "100000"]);
    await ok(["network", "connect", "--alias", "bee", "app", "b1"]);
    const b1 = await ipOf("b1");
    expect(b1).toMatch(/^10\.30\.0\.\d+$/);
    const out = await ok(["run", "--rm", "--network", "app", "busybox", "sh", "-c", lookup("bee")]);
    expect(resolved(out, "bee")).toEqual([b1]);
    await ok(["network", "disconnect", "app", "b1"]);
    // Its address is free again: a container asking for it with --ip gets it.
    await until("b1's address free", async () =>
      (await dk(["run", "--rm", "--network", "app", "--ip", b1, "busybox", "true"])).code === 0
        ? true
        : undefined,
    );
    await ok(["rm", "-f", "b1"]);
  });

  it("docker rm -f gives the address back; the node's devices for the network go when nothing uses it", async () => {
    const c1 = await ipOf("c1");
    await ok(["rm", "-f", "c1"]);
    await until("c1's address free", async () =>
      (await dk(["run", "--rm", "--network", "app", "--ip", c1, "busybox", "true"])).code === 0
        ? true
        : undefined,
    );
    await ok(["service", "rm", "web"]);
    await until("no overlay device for app", async () =>
      (await overlayLinks(appId)).length === 0 ? true : undefined,
    );
    const inspect = (await api(d.socket, "GET", "/networks/app")).json<{ Containers: object }>();
    expect(inspect.Containers).toEqual({});
  });

  it("a container that died while the daemon was down has its attachment given back after the restart", async () => {
    await ok(["run", "-d", "--name", "c2", "--network", "app", "busybox", "sleep", "100000"]);
    const c2 = await ipOf("c2");
    const pid = (await ok(["inspect", "-f", "{{.State.Pid}}", "c2"])).trim();
    await d.stop("SIGKILL");
    process.kill(Number(pid), "SIGKILL");
    await d.restart();
    await until("c2 exited", async () =>
      (await ok(["inspect", "-f", "{{.State.Status}}", "c2"])).trim() === "exited" ? true : undefined,
    );
    await until(
      "c2's address free",
      async () =>
        (await dk(["run", "--rm", "--network", "app", "--ip", c2, "busybox", "true"])).code === 0
          ? true
          : undefined,
      30_000,
    );
    await ok(["rm", "c2"]);
    await until("no overlay device for app", async () =>
      (await overlayLinks(appId)).length === 0 ? true : undefined,
    );
  });
});
