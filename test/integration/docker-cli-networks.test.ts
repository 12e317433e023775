// Networks through the real docker CLI (client only on this machine): what a user sees from
// `docker network ...`, `docker run --network/--ip/--network-alias/-p`, `docker port` and `docker
// ps`, against a test daemon that lives in its own network namespace.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { api, inNetns, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, type CliResult } from "../helpers/cli.js";

const exec = promisify(execFile);
let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);

/** A command that should succeed once a server in a just-started container listens. */
async function retry(fn: () => Promise<CliResult>, attempts = 20): Promise<CliResult> {
  let r = await fn();
  for (let i = 1; i < attempts && r.code !== 0; i++) {
    await sleep(250);
    r = await fn();
  }
  return r;
}

/** The names of the links in the daemon's namespace. */
async function daemonLinks(): Promise<string[]> {
  const { stdout } = await exec("ip", ["-n", d.netns, "-o", "link", "show"]);
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(":")[1].trim().split("@")[0]);
}

let netAId = "";
let srvId = "";

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
});
afterAll(async () => {
  if (!d) return;
  await d.destroy();
  const { stdout } = await exec("ip", ["netns", "list"]);
  expect(stdout.split("\n").map((l) => l.split(" ")[0])).not.toContain(d.netns);
});

describe("docker network commands against shoald", () => {
  it("network create, ls (with filters) and inspect", async () => {
    const created = await dk(["network", "create", "--subnet", "10.231.0.0/24", "--label", "team=a", "netA"]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    netAId = created.stdout.trim();
    expect(netAId).toMatch(/^[0-9a-f]{64}$/);

    const ls = await dk(["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout.split("\n").filter(Boolean).sort()).toEqual([
      "bridge bridge local",
      "host host local",
      "netA bridge local",
      "none null local",
    ]);
    const table = await dk(["network", "ls"]);
    expect(table.stdout).toMatch(new RegExp(`^${netAId.slice(0, 12)}\\s+netA\\s+bridge\\s+local$`, "m"));

    const byLabel = await dk(["network", "ls", "--filter", "label=team=a", "-q"]);
    expect(byLabel.stdout).toBe(`${netAId.slice(0, 12)}\n`);
    const noneByLabel = await dk(["network", "ls", "--filter", "label=team=b", "-q"]);
    expect(noneByLabel.stdout).toBe("");

    const subnet = await dk(["network", "inspect", "netA", "--format", "{{(index .IPAM.Config 0).Subnet}}"]);
    expect(subnet.stdout.trim()).toBe("10.231.0.0/24");
    const more = await dk([
      "network",
      "inspect",
      "netA",
      "--format",
      "{{.Id}} {{.Driver}} {{(index .IPAM.Config 0).Gateway}} {{.Labels.team}}",
    ]);
    expect(more.stdout.trim()).toBe(`${netAId} bridge 10.231.0.1 a`);
  });

  it("an overlapping subnet is refused with 409 naming the network it overlaps", async () => {
    const r = await dk(["network", "create", "--subnet", "10.231.0.128/25", "netOverlap"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/overlaps with network netA \(10\.231\.0\.0\/24\)/);
    const viaApi = await api(d.socket, "POST", "/networks/create", {
      Name: "netOverlap",
      IPAM: { Config: [{ Subnet: "10.231.0.0/16" }] },
    });
    expect(viaApi.status).toBe(409);
    expect(viaApi.json<{ message: string }>().message).toMatch(/netA/);
    expect((await dk(["network", "ls", "-q", "--filter", "name=netOverlap"])).stdout).toBe("");
  });

  it("network rm of an unknown network fails with not found", async () => {
    const r = await dk(["network", "rm", "nosuchnet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/network nosuchnet not found/);
    expect((await api(d.socket, "DELETE", "/networks/nosuchnet")).status).toBe(404);
  });
});

describe("containers on user-defined networks through the docker CLI", () => {
  it("run --network --ip --network-alias: inspect shows the address, the alias resolves", async () => {
    const run = await dk([
      "run",
      "-d",
      "--name",
      "srv",
      "--network",
      "netA",
      "--ip",
      "10.231.0.50",
      "--network-alias",
      "web",
      "busybox",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/etc",
    ]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    srvId = run.stdout.trim();
    const ip = await dk(["inspect", "srv", "--format", "{{.NetworkSettings.Networks.netA.IPAddress}}"]);
    expect(ip.stdout.trim()).toBe("10.231.0.50");
    const ep = await dk([
      "inspect",
      "srv",
      "--format",
      "{{.NetworkSettings.Networks.netA.Gateway}} {{.NetworkSettings.Networks.netA.IPPrefixLen}} {{json .NetworkSettings.Networks.netA.Aliases}} {{.HostConfig.NetworkMode}}",
    ]);
    expect(ep.stdout.trim()).toBe('10.231.0.1 24 ["web"] netA');

    // DNS by alias: the client container asks the daemon's DNS on netA's gateway.
    const get = await retry(() =>
      dk(["run", "--rm", "--network", "netA", "busybox", "wget", "-qO-", "http://web/hostname"]),
    );
    expect(get.stderr).toBe("");
    expect(get.stdout).toBe(`${srvId.slice(0, 12)}\n`);
    const byName = await dk([
      "run",
      "--rm",
      "--network",
      "netA",
      "busybox",
      "wget",
      "-qO-",
      "http://srv/hostname",
    ]);
    expect(byName.stdout).toBe(`${srvId.slice(0, 12)}\n`);
  });

  it("network inspect lists the running container under Containers", async () => {
    const r = await dk([
      "network",
      "inspect",
      "netA",
      "--format",
      "{{range $id, $c := .Containers}}{{$id}} {{$c.Name}} {{$c.IPv4Address}}{{end}}",
    ]);
    expect(r.stdout.trim()).toBe(`${srvId} srv 10.231.0.50/24`);
  });

  it("network connect --alias and disconnect show in docker inspect", async () => {
    const created = await dk(["network", "create", "netB"]);
    expect(created.code).toBe(0);
    const connect = await dk(["network", "connect", "--alias", "extra", "netB", "srv"]);
    expect(connect.stderr).toBe("");
    expect(connect.code).toBe(0);
    const nets = await dk([
      "inspect",
      "srv",
      "--format",
      "{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{end}}",
    ]);
    expect(nets.stdout.trim()).toBe("netA netB");
    const aliases = await dk([
      "inspect",
      "srv",
      "--format",
      "{{json .NetworkSettings.Networks.netB.Aliases}}",
    ]);
    expect(aliases.stdout.trim()).toBe('["extra"]');
    const netBIp = await dk(["inspect", "srv", "--format", "{{.NetworkSettings.Networks.netB.IPAddress}}"]);
    expect(netBIp.stdout.trim()).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    // The new alias answers on netB at once.
    const get = await retry(() =>
      dk(["run", "--rm", "--network", "netB", "busybox", "wget", "-qO-", "http://extra/hostname"]),
    );
    expect(get.stdout).toBe(`${srvId.slice(0, 12)}\n`);
    const found = await dk(["run", "--rm", "--network", "netB", "busybox", "nslookup", "extra."]);
    expect(found.stdout).toMatch(
      new RegExp(`Name:\\s+extra\\s+Address:\\s+${netBIp.stdout.trim().replace(/\./g, "\\.")}`),
    );

    const disconnect = await dk(["network", "disconnect", "netB", "srv"]);
    expect(disconnect.stderr).toBe("");
    expect(disconnect.code).toBe(0);
    const after = await dk([
      "inspect",
      "srv",
      "--format",
      "{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{end}}",
    ]);
    expect(after.stdout.trim()).toBe("netA");
    // The alias stopped resolving on netB. (nslookup with a trailing dot: busybox's nslookup tries
    // only the search domains for a bare name, and its static wget crashes on a name it cannot resolve.)
    const gone = await dk(["run", "--rm", "--network", "netB", "busybox", "nslookup", "extra."]);
    expect(gone.code).not.toBe(0);
    expect(gone.stdout).not.toMatch(/Name:\s+extra/);
    const netB = await dk(["network", "inspect", "netB", "--format", "{{len .Containers}}"]);
    expect(netB.stdout.trim()).toBe("0");
    // srv still answers on netA.
    const still = await dk([
      "run",
      "--rm",
      "--network",
      "netA",
      "busybox",
      "wget",
      "-qO-",
      "http://web/hostname",
    ]);
    expect(still.stdout).toBe(`${srvId.slice(0, 12)}\n`);
  });

  it("network rm of a network in use fails with 409 listing the container", async () => {
    const r = await dk(["network", "rm", "netA"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/network netA .*has active endpoints \(srv\)/);
    expect((await api(d.socket, "DELETE", "/networks/netA")).status).toBe(409);
    expect((await dk(["network", "ls", "-q", "--filter", "name=netA"])).stdout).toBe(
      `${netAId.slice(0, 12)}\n`,
    );
  });
});

describe("published ports through the docker CLI", () => {
  it("run -p: docker port, docker ps and the port answering in the daemon's namespace", async () => {
    const run = await dk([
      "run",
      "-d",
      "-p",
      "18181:80",
      "--name",
      "pub",
      "busybox",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/etc",
    ]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const pubId = run.stdout.trim();
    expect((await dk(["port", "pub"])).stdout).toBe("80/tcp -> 0.0.0.0:18181\n");
    expect((await dk(["port", "pub", "80"])).stdout).toBe("0.0.0.0:18181\n");
    expect((await dk(["port", "pub", "80/tcp"])).stdout).toBe("0.0.0.0:18181\n");
    const ps = await dk(["ps", "--filter", "name=pub", "--format", "{{.Names}} {{.Ports}}"]);
    expect(ps.stdout).toBe("pub 0.0.0.0:18181->80/tcp\n");

    let got = { stdout: "", stderr: "", code: 1 };
    for (let i = 0; i < 20 && got.code !== 0; i++) {
      if (i > 0) await sleep(250);
      got = await inNetns(d.netns, "busybox", ["wget", "-qO-", "http://127.0.0.1:18181/hostname"]);
    }
    expect(got.stderr).toBe("");
    expect(got.stdout).toBe(`${pubId.slice(0, 12)}\n`);
  });

  it("a second run -p on the same host port fails naming the container that holds it", async () => {
    const r = await dk([
      "run",
      "-d",
      "-p",
      "18181:80",
      "--name",
      "pub2",
      "busybox",
      "httpd",
      "-f",
      "-p",
      "80",
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/18181.*already allocated to container pub\b/);
    // The refused container is not left running (nor holding the port).
    const ps = await dk(["ps", "--filter", "name=pub2", "-q"]);
    expect(ps.stdout).toBe("");
    expect((await dk(["port", "pub"])).stdout).toBe("80/tcp -> 0.0.0.0:18181\n");
  });
});

describe("--network none and --network host", () => {
  it("none has only the loopback link", async () => {
    const r = await dk(["run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"]);
    expect(r.code).toBe(0);
    const links = r.stdout.split("\n").filter(Boolean);
    expect(links).toHaveLength(1);
    expect(links[0]).toMatch(/^1: lo: /);
  });

  it("host shares the daemon namespace's links", async () => {
    const r = await dk(["run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"]);
    expect(r.code).toBe(0);
    const names = r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(":")[1].trim().split("@")[0]);
    expect(names).toContain("lo");
    expect(names).toContain("shoal0");
    // The bridges (veths of other containers come and go as they run) are the same links.
    const bridges = (await daemonLinks()).filter((l) => !l.startsWith("shv"));
    expect(bridges.filter((l) => l.startsWith("shb-"))).toHaveLength(2);
    expect(names.filter((l) => !l.startsWith("shv")).sort()).toEqual(bridges.sort());
  });
});

describe("clean-up", () => {
  it("rm -f and network rm leave no container links, bridges or networks behind", async () => {
    const rm = await dk(["rm", "-f", "srv", "pub"]);
    expect(rm.code).toBe(0);
    expect((await dk(["ps", "-aq"])).stdout).toBe("");
    const netRm = await dk(["network", "rm", "netA", "netB"]);
    expect(netRm.stderr).toBe("");
    expect(netRm.stdout).toBe("netA\nnetB\n");
    const ls = await dk(["network", "ls", "--format", "{{.Name}}"]);
    expect(ls.stdout.split("\n").filter(Boolean).sort()).toEqual(["bridge", "host", "none"]);
    const links = await daemonLinks();
    expect(links.filter((l) => l.startsWith("shv") || l.startsWith("shb-"))).toEqual([]);
    expect(links).toContain("shoal0");
  });
});
