// `docker service logs` across hosts, on the lab: 1 manager and 2 workers, each a real shoald in
// its own network namespace. A service's tasks run on all three; the manager reads the local
// task's log from its engine and the others' through each node's Node service (Forward of
// `GET /containers/{id}/logs`), merged in time order; a worker's socket refuses the request
// (a worker has no control API, as in swarmkit); `--follow` streams remote lines as they come; a node cut off is left out with
// Docker's "incomplete log stream" error.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { Lab } from "../../deploy/lab/lab.js";
import { formCluster } from "../../deploy/lab/cluster.js";
import { api, repoRoot } from "../helpers/daemon.js";
import { buildBusyboxArchive } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";
import { until } from "../helpers/cluster.js";
import { logTimeKey } from "../../api/logs/time.js";

const shoald = join(repoRoot, "dist/daemon/main.js");
let lab: Lab;

interface Task {
  ID: string;
  NodeID: string;
  DesiredState: string;
  Status: { State: string };
}

const sock = (host: string): string => lab.host(host).socket;
const dk = (host: string, args: string[]) => docker(sock(host), args);

async function createService(name: string, script: string): Promise<string> {
  const r = await api(sock("m1"), "POST", "/services/create", {
    Name: name,
    TaskTemplate: {
      ContainerSpec: { Image: "busybox:latest", Args: ["sh", "-c", script], StopGracePeriod: 1e9 },
    },
    Mode: { Replicated: { Replicas: 3 } },
  });
  expect(r.status, r.body.toString()).toBe(201);
  return r.json<{ ID: string }>().ID;
}

/** The lab hosts of a service's running tasks, once 3 run on 3 different hosts. */
async function spreadOverAll(service: string): Promise<string[]> {
  return until(
    `3 running tasks of ${service} on 3 hosts`,
    async () => {
      const nodes = (await api(sock("m1"), "GET", "/nodes")).json<
        Array<{ ID: string; Description: { Hostname: string } }>
      >();
      const names = new Map(nodes.map((n) => [n.ID, n.Description.Hostname]));
      const f = encodeURIComponent(JSON.stringify({ service: [service] }));
      const tasks = (await api(sock("m1"), "GET", `/tasks?filters=${f}`)).json<Task[]>();
      const running = tasks.filter((t) => t.DesiredState === "running" && t.Status.State === "running");
      const hosts = [...new Set(running.map((t) => names.get(t.NodeID) ?? t.NodeID))].sort();
      return running.length === 3 && hosts.length === 3 ? hosts : undefined;
    },
    90_000,
  );
}

/** `name.slot.task@host    | text` → host and text. */
function parseLine(line: string): { host: string; text: string; stamp?: string } | undefined {
  const m = /^(?:(\S+Z) )?[\w-]+\.\d+\.\w+@(\S+)\s+\| (.*)$/.exec(line);
  return m ? { stamp: m[1], host: m[2], text: m[3] } : undefined;
}

function linesOf(stdout: string): Array<{ host: string; text: string; stamp?: string }> {
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const p = parseLine(l);
      if (!p) throw new Error(`unexpected service logs line: ${JSON.stringify(l)}`);
      return p;
    });
}

/**
 * Run `docker service logs --follow` against a host's socket until `want` matches a line of its
 * output; then stop the client (as Ctrl-C does) and wait for it to exit.
 */
async function followUntil(
  host: string,
  args: string[],
  want: RegExp,
  whileOpen: () => Promise<void> = async () => undefined,
  ms = 30_000,
): Promise<string[]> {
  const child = spawn("docker", ["service", "logs", "--follow", ...args], {
    env: { ...process.env, DOCKER_HOST: `unix://${sock(host)}`, DOCKER_CONFIG: "/tmp/shoal-docker-config" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))),
  );
  try {
    await until(
      `a line matching ${want} from docker service logs --follow via ${host}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`docker service logs --follow ended early: ${err}`);
        return out.split("\n").some((l) => want.test(l)) ? true : undefined;
      },
      ms,
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}; output so far: ${out}; stderr: ${err}`);
    });
    await whileOpen();
  } finally {
    child.kill("SIGINT");
  }
  const code = await Promise.race([
    exited,
    new Promise<"stuck">((r) => setTimeout(() => r("stuck"), 10_000)),
  ]);
  if (code === "stuck") child.kill("SIGKILL");
  expect(code, "the docker client ends when stopped").not.toBe("stuck");
  return out.split("\n").filter(Boolean);
}

/** Open connections to a host's engine socket (the Forward of a remote log stream holds one). */
async function socketConnections(host: string): Promise<number> {
  // Unix sockets belong to a network namespace: look from inside the host's.
  const { stdout } = await lab.exec(host, ["ss", "-xH", "state", "connected"]);
  return stdout.split("\n").filter((l) => l.includes(` ${sock(host)} `)).length;
}

let helloId = "";
let hostOf = new Map<string, string>();

beforeAll(async () => {
  lab = await Lab.up({
    name: `l${randomBytes(3).toString("hex")}`,
    managers: 1,
    workers: 2,
    root: await mkdtemp("/tmp/shoal-lab-"),
    octet: 100 + Math.floor(Math.random() * 100),
    shoald,
  });
  await formCluster(lab);
  const archive = await buildBusyboxArchive();
  await Promise.all(
    lab.state.hosts.map(async (h) => {
      const r = await api(h.socket, "POST", "/images/load", archive);
      if (r.status !== 200) throw new Error(`loading busybox on ${h.name}: ${r.body.toString()}`);
    }),
  );
  await until(
    "3 ready nodes",
    async () => {
      const n = (await api(sock("m1"), "GET", "/nodes")).json<
        Array<{ ID: string; Description: { Hostname: string }; Status: { State: string } }>
      >();
      if (n.length !== 3 || !n.every((x) => x.Status.State === "ready")) return undefined;
      hostOf = new Map(n.map((x) => [x.Description.Hostname, x.ID]));
      return true;
    },
    60_000,
  );
}, 240_000);

afterAll(async () => {
  await lab?.down();
}, 120_000);

describe("service logs across the lab's hosts", { timeout: 180_000 }, () => {
  it("shows the lines of all 3 tasks, from all three hosts, through the manager's socket", async () => {
    helloId = await createService("hello", 'echo "hello from $(hostname)"; sleep 100000');
    expect(await spreadOverAll("hello")).toEqual(["m1", "w1", "w2"]);
    const lines = await until("a hello line from each of the 3 tasks", async () => {
      const r = await dk("m1", ["service", "logs", "hello"]);
      expect(r.code, r.stderr).toBe(0);
      const ls = linesOf(r.stdout);
      return ls.length === 3 ? ls : undefined;
    });
    expect(lines.map((l) => l.host).sort()).toEqual(["m1", "w1", "w2"]);
    for (const l of lines) expect(l.text).toMatch(/^hello from \S+$/);
    // Three containers, three hostnames.
    expect(new Set(lines.map((l) => l.text)).size).toBe(3);
  });

  it("a worker's socket refuses with Docker's words (a worker has no control API)", async () => {
    for (const via of ["w1", "w2"]) {
      const r = await dk(via, ["service", "logs", "hello"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("Worker nodes can't be used to view or modify cluster state.");
      expect(r.stdout).not.toContain("hello from");
    }
    // --tail and the raw API through the manager.
    const r = await dk("m1", ["service", "logs", "--tail", "1", "--no-task-ids", helloId]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split("\n").filter(Boolean)).toHaveLength(3);
  });

  it("--follow receives lines a worker's task prints later, and ends when the client stops", async () => {
    await createService(
      "ticker",
      'i=0; while true; do echo "tick $i $(hostname)"; i=$((i+1)); sleep 1; done',
    );
    expect(await spreadOverAll("ticker")).toEqual(["m1", "w1", "w2"]);
    // --tail 0: nothing from before; whatever comes was printed after the stream opened.
    for (const via of ["m1"]) {
      let during = 0;
      const lines = await followUntil(via, ["--tail", "0", "ticker"], /@w2\s+\| tick \d+/, async () => {
        during = await socketConnections("w2");
        expect(during, "w2 serves the forwarded logs request on its socket").toBeGreaterThan(0);
      });
      // The manager cancelled its Forward to w2, which closed w2's local logs request.
      await until("w2's log request to close after the client went away", async () =>
        (await socketConnections("w2")) < during ? true : undefined,
      );
      const parsed = lines.map(parseLine);
      expect(parsed.every((p) => p && /^tick \d+ \S+$/.test(p.text))).toBe(true);
      expect(parsed.some((p) => p?.host === "w2")).toBe(true);
    }
    // The daemons are still fine after the clients went away mid-stream.
    const r = await dk("m1", ["service", "logs", "--tail", "1", "hello"]);
    expect(r.code, r.stderr).toBe(0);
    expect(linesOf(r.stdout)).toHaveLength(3);
  });

  it("--timestamps lines from the three hosts come in time order", async () => {
    // A few seconds of ticks on every host.
    await new Promise((r) => setTimeout(r, 3_000));
    const r = await dk("m1", ["service", "logs", "--timestamps", "ticker"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = linesOf(r.stdout);
    expect(lines.length).toBeGreaterThanOrEqual(9);
    expect(new Set(lines.map((l) => l.host))).toEqual(new Set(["m1", "w1", "w2"]));
    const keys = lines.map((l) => {
      expect(l.stamp, "every line starts with its RFC 3339 time").toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/,
      );
      return logTimeKey(l.stamp ?? "");
    });
    expect(keys).toEqual([...keys].sort());
    // Merged, not one host after another: the hosts alternate.
    const switches = lines.slice(1).filter((l, i) => l.host !== lines[i].host).length;
    expect(switches).toBeGreaterThanOrEqual(3);
    // Each task's own ticks stay in order.
    for (const host of ["m1", "w1", "w2"]) {
      const ticks = lines.filter((l) => l.host === host).map((l) => Number(l.text.split(" ")[1]));
      expect(ticks).toEqual([...ticks].sort((a, b) => a - b));
    }
  });

  it("leaves out a node that cannot be reached, says so as Docker does, and keeps the rest", async () => {
    await lab.cut("w2");
    try {
      const r = await dk("m1", ["service", "logs", "hello"]);
      const lines = linesOf(r.stdout);
      // (w2's task may meanwhile have a replacement on m1 or w1 once w2 is marked down.)
      expect(new Set(lines.map((l) => l.host))).toEqual(new Set(["m1", "w1"]));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(
        `Error grabbing logs: warning: incomplete log stream. some logs could not be retrieved for the following reasons: node ${hostOf.get("w2")} is not available`,
      );
    } finally {
      await lab.heal("w2");
    }
  });
});
