// A one-node cluster end to end: `swarm init`, services through the real docker CLI and the
// API, the orchestrator, scheduler and worker running tasks as containers on the local engine.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { runningTasks, tasksOf as clusterTasks, until, type Task } from "../helpers/cluster.js";
import { api, inNetns, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";

let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);

const tasksOf = (service: string): Promise<Task[]> => clusterTasks(d.socket, service);
const running = (service: string): Promise<Task[]> => runningTasks(d.socket, service);

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await d?.destroy();
});

describe("one-node cluster", () => {
  it("is refused before init with Docker's words", async () => {
    const r = await api(d.socket, "GET", "/nodes");
    expect(r.status).toBe(503);
    expect(r.json<{ message: string }>().message).toContain("This node is not a swarm manager");
    const ls = await dk(["node", "ls"]);
    expect(ls.stderr).toContain("not a swarm manager");
  });

  it("swarm init refuses the options it would ignore, naming each, and makes nothing", async () => {
    for (const [flags, named] of [
      [["--default-addr-pool", "10.20.0.0/16"], "--default-addr-pool"],
      [["--data-path-port", "4790"], "--data-path-port"],
      [["--data-path-addr", "127.0.0.1"], "--data-path-addr"],
      [["--availability", "drain"], "--availability"],
      [["--force-new-cluster"], "--force-new-cluster"],
      [["--autolock"], "--autolock"],
    ] as const) {
      const r = await dk(["swarm", "init", ...flags]);
      expect(r.code, flags.join(" ")).not.toBe(0);
      expect(r.stderr).toContain(named);
    }
    const info = await dk(["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    expect(info.stdout.trim()).toBe("inactive");
  });

  it("swarm init makes this node the cluster's manager", async () => {
    const r = await dk(["swarm", "init", "--task-history-limit", "4", "--cert-expiry", "48h"]);
    expect(r.code, r.stderr).toBe(0);
    const nodes = await dk([
      "node",
      "ls",
      "--format",
      "{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}",
    ]);
    expect(nodes.stdout.trim()).toMatch(/ Ready Active Leader$/);
    const info = await dk(["info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"]);
    expect(info.stdout.trim()).toBe("active true");
    const ca = await dk(["swarm", "ca"]);
    expect(ca.stdout).toContain("-----BEGIN CERTIFICATE-----");
    const token = await dk(["swarm", "join-token", "-q", "worker"]);
    expect(token.stdout.trim()).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    const spec = (await api(d.socket, "GET", "/swarm")).json<{
      Spec: { Orchestration: { TaskHistoryRetentionLimit: number }; CAConfig: { NodeCertExpiry: number } };
    }>().Spec;
    expect(spec.Orchestration.TaskHistoryRetentionLimit).toBe(4);
    expect(spec.CAConfig.NodeCertExpiry).toBe(48 * 3600e9);
    const swarm = (await api(d.socket, "GET", "/swarm")).body.toString();
    expect(swarm).not.toContain("PRIVATE KEY");
    const demote = await dk(["node", "demote", "self"]);
    expect(demote.code).not.toBe(0);
    expect(demote.stderr).toContain("without a manager");
    const again = await dk(["swarm", "init"]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("already part of a swarm");
  });

  it("service create runs the replicas; scale changes them; rm removes them", async () => {
    const r = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "web",
      "--replicas",
      "3",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(r.code, r.stderr).toBe(0);
    await until("3 running tasks", async () => ((await running("web")).length === 3 ? true : undefined));
    const ls = await dk(["service", "ls", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}"]);
    expect(ls.stdout.trim()).toBe("web replicated 3/3");
    const containers = await dk(["ps", "--filter", "label=com.docker.swarm.service.name=web", "-q"]);
    expect(containers.stdout.trim().split("\n")).toHaveLength(3);

    expect((await dk(["service", "scale", "-d", "web=1"])).code).toBe(0);
    await until("1 running task and 2 shut down", async () => {
      const t = await tasksOf("web");
      const down = t.filter((x) => x.Status.State === "shutdown").length;
      return (await running("web")).length === 1 && down === 2 ? true : undefined;
    });
    const ps = await dk([
      "service",
      "ps",
      "web",
      "--format",
      "{{.Name}} {{.DesiredState}} {{.CurrentState}}",
    ]);
    expect(ps.stdout).toMatch(/web\.1 Running Running/);
    expect(ps.stdout).toMatch(/Shutdown Shutdown/);

    expect((await dk(["service", "rm", "web"])).code).toBe(0);
    await until("no containers of web", async () => {
      const left = await dk(["ps", "--filter", "label=com.docker.swarm.service.name=web", "-q"]);
      return left.stdout.trim() === "" ? true : undefined;
    });
  });

  it("a failing task is restarted as its policy says, then left failed", async () => {
    const r = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "crashy",
      "--restart-condition",
      "on-failure",
      "--restart-max-attempts",
      "2",
      "--restart-delay",
      "100ms",
      "busybox",
      "sh",
      "-c",
      "exit 3",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const tasks = await until("three failed attempts", async () => {
      const t = await tasksOf("crashy");
      return t.length === 3 && t.every((x) => x.Status.State === "failed") ? t : undefined;
    });
    expect(tasks.every((t) => t.Status.Err === "task: non-zero exit (3)")).toBe(true);
    await sleep(1500);
    expect(await tasksOf("crashy")).toHaveLength(3);
    expect((await dk(["service", "rm", "crashy"])).code).toBe(0);
  });

  it("bad input: stale version 409, bad replicas and impossible reservations 400, unknown service 404", async () => {
    const created = await api(d.socket, "POST", "/services/create", {
      Name: "api",
      TaskTemplate: { ContainerSpec: { Image: "busybox", Args: ["sleep", "300"] } },
      Mode: { Replicated: { Replicas: 1 } },
    });
    expect(created.status).toBe(201);
    const svc = (await api(d.socket, "GET", "/services/api")).json<{
      ID: string;
      Version: { Index: number };
      Spec: Record<string, unknown>;
    }>();
    const update = (version: number, replicas: number) =>
      api(d.socket, "POST", `/services/${svc.ID}/update?version=${version}`, {
        ...svc.Spec,
        Mode: { Replicated: { Replicas: replicas } },
      });
    expect((await update(svc.Version.Index, 2)).status).toBe(200);
    const stale = await update(svc.Version.Index, 4);
    expect(stale.status).toBe(409);
    expect(stale.json<{ message: string }>().message).toContain("out of sequence");
    const negative = await update(svc.Version.Index + 1000, -1);
    expect([400, 409]).toContain(negative.status);
    const bad = await api(d.socket, "POST", "/services/create", {
      Name: "neg",
      TaskTemplate: { ContainerSpec: { Image: "busybox" } },
      Mode: { Replicated: { Replicas: -1 } },
    });
    expect(bad.status).toBe(400);
    const huge = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "huge",
      "--reserve-memory",
      "100000g",
      "busybox",
      "true",
    ]);
    expect(huge.code).not.toBe(0);
    expect(huge.stderr).toContain("more than any node has");
    const constraint = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "odd",
      "--constraint",
      "node.colour==red",
      "busybox",
      "true",
    ]);
    expect(constraint.code).not.toBe(0);
    expect(constraint.stderr).toContain("unknown key node.colour");
    expect((await api(d.socket, "GET", "/services/nothing")).status).toBe(404);
    const list = (await api(d.socket, "GET", "/services")).json<Array<{ Spec: { Name: string } }>>();
    expect(list.map((s) => s.Spec.Name)).toEqual(["api"]);
  });

  it("a task that fits nowhere stays pending with a reason", async () => {
    const r = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "picky",
      "--constraint",
      "node.labels.zone==mars",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const t = await until("a pending reason", async () => {
      const [task] = await tasksOf("picky");
      return task?.Status.Err?.startsWith("no suitable node") ? task : undefined;
    });
    expect(t.Status.State).toBe("pending");
    expect(t.Status.Err).toBe("no suitable node: 1 does not satisfy the constraints");
    const ps = await dk(["service", "ps", "--no-trunc", "picky"]);
    expect(ps.stdout).toContain("no suitable node");
    expect((await dk(["service", "rm", "picky"])).code).toBe(0);
  });

  it("after a daemon restart the cluster is back and healthy tasks were not restarted", async () => {
    await until("api's 2 tasks running", async () =>
      (await running("api")).length === 2 ? true : undefined,
    );
    const before = (await running("api")).map((t) => t.Status.ContainerStatus?.ContainerID).sort();
    await d.restart();
    const nodes = await api(d.socket, "GET", "/nodes");
    expect(nodes.status).toBe(200);
    await sleep(1500);
    const after = (await running("api")).map((t) => t.Status.ContainerStatus?.ContainerID).sort();
    expect(after).toEqual(before);
  });

  it("leave needs --force on the last manager, and takes the tasks' containers away", async () => {
    const soft = await dk(["swarm", "leave"]);
    expect(soft.code).not.toBe(0);
    expect(soft.stderr).toContain("--force");
    expect((await dk(["swarm", "leave", "--force"])).code).toBe(0);
    const left = await dk(["ps", "-a", "--filter", "label=com.docker.swarm.service.name", "-q"]);
    expect(left.stdout.trim()).toBe("");
    expect((await api(d.socket, "GET", "/nodes")).status).toBe(503);
  });
});

describe("the shoal CLI on a one-node cluster", () => {
  const sh = (args: string[]) => shoal(d.socket, args);

  it("init, create (waits for convergence), ls, ps, scale, node ls, leave", async () => {
    const init = await sh(["cluster", "init"]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toMatch(/Cluster initialized: current node \(\w+\) is now a manager/);
    const created = await sh([
      "service",
      "create",
      "--name",
      "s2",
      "--replicas",
      "2",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain("overall progress: 2 out of 2 tasks");
    expect(created.stdout).toContain("verify: Service converged");
    const ls = await sh(["service", "ls"]);
    expect(ls.stdout).toMatch(/^ID\s+NAME\s+MODE\s+REPLICAS\s+IMAGE\s+PORTS$/m);
    expect(ls.stdout).toMatch(/s2\s+replicated\s+2\/2\s+busybox/);
    const ps = await sh(["service", "ps", "s2"]);
    expect(ps.stdout).toMatch(/s2\.1\s+busybox\s+\S+\s+Running\s+Running/);
    expect(ps.stdout).toMatch(/s2\.2\s+busybox/);
    const scaled = await sh(["service", "scale", "s2=0"]);
    expect(scaled.code, scaled.stderr).toBe(0);
    expect(scaled.stdout).toContain("overall progress: 0 out of 0 tasks");
    expect(scaled.stdout).toContain("verify: Service converged");
    const nodes = await sh(["node", "ls"]);
    expect(nodes.stdout).toMatch(/Ready\s+Active\s+Leader/);
    const bad = await sh(["service", "create", "--name", "x", "--replicas", "-1", "busybox"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("--replicas");
    expect((await sh(["cluster", "leave", "--force"])).code).toBe(0);
  });

  it("node update: drain moves tasks off (pending with a reason), labels steer placement", async () => {
    expect((await sh(["cluster", "init"])).code).toBe(0);
    const svc = await sh([
      "service",
      "create",
      "--name",
      "z",
      "--replicas",
      "1",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(svc.code, svc.stderr).toBe(0);
    expect((await sh(["node", "update", "--availability", "drain", "self"])).code).toBe(0);
    const moved = await until("the task to be replaced and wait", async () => {
      const t = await tasksOf("z");
      const waiting = t.find((x) => x.Status.State === "pending");
      return waiting && t.some((x) => x.Status.State === "shutdown") ? waiting : undefined;
    });
    expect(moved.Status.Err).toBe("no suitable node: 1 is drained");
    expect(await running("z")).toHaveLength(0);
    await sh(["node", "update", "--availability", "active", "--label-add", "zone=east", "self"]);
    await until("z running again", async () => ((await running("z")).length === 1 ? true : undefined));
    const labels = await sh([
      "node",
      "inspect",
      "-f",
      "{{.Spec.Labels.zone}} {{.Spec.Availability}}",
      "self",
    ]);
    expect(labels.stdout.trim()).toBe("east active");
    const east = await sh([
      "service",
      "create",
      "--name",
      "east",
      "--constraint",
      "node.labels.zone==east",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(east.stdout).toContain("overall progress: 1 out of 1 tasks");
    const noLabel = await sh(["node", "update", "--label-rm", "nothere", "self"]);
    expect(noLabel.code).not.toBe(0);
    expect(noLabel.stderr).toContain("no label nothere");
    expect((await sh(["cluster", "leave", "--force"])).code).toBe(0);
  });

  it("service logs gathers every task's lines, each prefixed by its task (docker CLI and shoal)", async () => {
    expect((await sh(["cluster", "init"])).code).toBe(0);
    const r = await sh([
      "service",
      "create",
      "--name",
      "talk",
      "--replicas",
      "2",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sh",
      "-c",
      "echo said-by-$(hostname); sleep 300",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = async (out: () => Promise<{ stdout: string }>) =>
      until("two log lines", async () => {
        const got = (await out()).stdout.split("\n").filter((l) => l.includes("said-by-"));
        return got.length === 2 ? got : undefined;
      });
    const viaDocker = await lines(() => dk(["service", "logs", "talk"]));
    for (const l of viaDocker) expect(l).toMatch(/^talk\.[12]\.\w{12}@\S+\s+\| said-by-\w+$/);
    const viaShoal = await lines(() => sh(["service", "logs", "talk"]));
    expect(viaShoal.map((l) => l.split("|")[1]).sort()).toEqual(viaDocker.map((l) => l.split("|")[1]).sort());
    expect((await sh(["cluster", "leave", "--force"])).code).toBe(0);
  });

  it("a global service runs one task per eligible node; docker service update changes replicas", async () => {
    expect((await sh(["cluster", "init"])).code).toBe(0);
    const g = await dk([
      "service",
      "create",
      "-d",
      "--mode",
      "global",
      "--name",
      "everywhere",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(g.code, g.stderr).toBe(0);
    await until("one global task running", async () =>
      (await running("everywhere")).length === 1 ? true : undefined,
    );
    const ls = await dk(["service", "ls", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}"]);
    expect(ls.stdout).toContain("everywhere global 1/1");
    const scale = await dk(["service", "scale", "everywhere=3"]);
    expect(scale.code).not.toBe(0);
    const rep = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "rep",
      "--stop-grace-period",
      "1s",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(rep.code, rep.stderr).toBe(0);
    expect((await dk(["service", "update", "-d", "--replicas", "2", "rep"])).code).toBe(0);
    await until("two rep tasks running", async () =>
      (await running("rep")).length === 2 ? true : undefined,
    );
    expect((await sh(["cluster", "leave", "--force"])).code).toBe(0);
  });

  it("keeps at most five tasks of history per slot; a removed service's tasks leave the store", async () => {
    expect((await sh(["cluster", "init"])).code).toBe(0);
    const r = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "flappy",
      "--restart-delay",
      "100ms",
      "busybox",
      "sh",
      "-c",
      "exit 1",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const seen = new Set<string>();
    let most = 0;
    await until(
      "seven attempts",
      async () => {
        const tasks = (
          await api(
            d.socket,
            "GET",
            `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: ["flappy"] }))}`,
          )
        ).json<Array<{ ID: string }>>();
        for (const t of tasks) seen.add(t.ID);
        most = Math.max(most, tasks.length);
        return seen.size >= 7 ? true : undefined;
      },
      40_000,
    );
    expect(most).toBeLessThanOrEqual(6);
    const svcId = (await api(d.socket, "GET", "/services/flappy")).json<{ ID: string }>().ID;
    expect((await dk(["service", "rm", "flappy"])).code).toBe(0);
    await until("no tasks of flappy", async () => {
      const all = (await api(d.socket, "GET", "/tasks")).json<Array<{ ServiceID: string }>>();
      return all.some((t) => t.ServiceID === svcId) ? undefined : true;
    });
    expect((await sh(["cluster", "leave", "--force"])).code).toBe(0);
  });

  it("host-mode published ports: one task per node holds the port, it answers; mesh ports are published through ingress", async () => {
    expect((await sh(["cluster", "init"])).code).toBe(0);
    const r = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "hweb",
      "--replicas",
      "2",
      "--stop-grace-period",
      "1s",
      "--publish",
      "mode=host,published=18200,target=80",
      "busybox",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/etc",
    ]);
    expect(r.code, r.stderr).toBe(0);
    await until("one running and one waiting for the port", async () => {
      const tasks = await tasksOf("hweb");
      const waiting = tasks.find(
        (t) => t.Status.Err === "no suitable node: 1 already has the host port in use",
      );
      return (await running("hweb")).length === 1 && waiting ? true : undefined;
    });
    const got = await inNetns(d.netns, "busybox", ["wget", "-qO-", "http://127.0.0.1:18200/hostname"]);
    expect(got.stdout.trim()).toMatch(/^\w{12}$/);
    const mesh = await dk([
      "service",
      "create",
      "-d",
      "--name",
      "mesh",
      "--publish",
      "8080:80",
      "busybox",
      "true",
    ]);
    // The routing mesh comes with overlay networks (issue 7): the port is the service's.
    expect(mesh.code, mesh.stderr).toBe(0);
    const meshPorts = await dk(["service", "inspect", "--format", "{{json .Endpoint.Ports}}", "mesh"]);
    expect(JSON.parse(meshPorts.stdout)).toEqual([
      expect.objectContaining({ PublishedPort: 8080, TargetPort: 80, PublishMode: "ingress" }),
    ]);
    expect((await dk(["service", "rm", "mesh"])).code).toBe(0);
    const viaShoal = await sh([
      "service",
      "create",
      "-d",
      "--name",
      "h2",
      "-p",
      "mode=host,published=18201,target=80",
      "busybox",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/etc",
    ]);
    expect(viaShoal.code, viaShoal.stderr).toBe(0);
    await until("h2 answers", async () => {
      const r2 = await inNetns(d.netns, "busybox", ["wget", "-qO-", "http://127.0.0.1:18201/hostname"]);
      return r2.code === 0 ? true : undefined;
    });
    expect((await sh(["cluster", "leave", "--force"])).code).toBe(0);
  });
});
