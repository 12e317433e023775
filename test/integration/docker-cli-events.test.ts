// docker events, ps filters and IPv6 port bindings through the real docker CLI against a
// private shoald: what a user scripting against the engine sees.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker, shoal } from "../helpers/cli.js";
import { startRegistry } from "../helpers/registry.js";

const exec = promisify(execFile);
let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);
const nowUnix = (): string => (Date.now() / 1000).toFixed(3);
const lines = (s: string): string[] => s.split("\n").filter(Boolean);

/** Run `docker events` in the background; its output so far, and a way to stop it. */
function follow(args: string[]): {
  output: () => string;
  waitFor: (re: RegExp) => Promise<void>;
  stop: () => void;
  exited: Promise<number | null>;
} {
  const child = spawn("docker", ["events", ...args], {
    env: { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: "/tmp/shoal-docker-config" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const waiters: Array<() => void> = [];
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    output: () => out,
    waitFor: async (re) => {
      while (!re.test(out)) await new Promise<void>((r) => waiters.push(r));
    },
    stop: () => {
      if (child.exitCode === null) child.kill("SIGTERM");
    },
    exited,
  };
}

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
});
afterAll(async () => {
  if (!d) return;
  await dk([
    "rm",
    "-f",
    "ev-exit",
    "ev-stop",
    "ev-stopped",
    "ev-web",
    "ev-live",
    "ev-shoal",
    "ps-a",
    "ps-b",
    "ps-c",
  ]).catch(() => undefined);
  await d.destroy();
});

describe("docker events", () => {
  it("replays create, start, die with its exit code and destroy of a container between --since and --until", async () => {
    const since = nowUnix();
    const run = await dk([
      "run",
      "--name",
      "ev-exit",
      "--label",
      "team=blue",
      "busybox",
      "sh",
      "-c",
      "exit 3",
    ]);
    expect(run.code).toBe(3);
    expect((await dk(["rm", "ev-exit"])).code).toBe(0);
    const until = nowUnix();

    const ev = await dk([
      "events",
      "--since",
      since,
      "--until",
      until,
      "--filter",
      "container=ev-exit",
      "--format",
      "{{.Status}} {{.Type}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    ]);
    expect(ev.stderr).toBe("");
    expect(ev.code).toBe(0);
    const actions = lines(ev.stdout).map((l) => l.split(" ")[0]);
    expect(actions.filter((a) => a !== "attach")).toEqual(["create", "start", "die", "destroy"]);
    expect(lines(ev.stdout)).toContain("die container ev-exit 3");

    // The same window as the CLI's durations, and the whole message as JSON. The CLI sends a
    // duration as whole seconds, so `--until 0s` covers events of the seconds already over.
    await sleep(1000 - (Date.now() % 1000) + 50);
    const json = await dk([
      "events",
      "--since",
      "1m",
      "--until",
      "0s",
      "--filter",
      "event=die",
      "--filter",
      "label=team=blue",
      "--format",
      "{{json .}}",
    ]);
    expect(json.code).toBe(0);
    const [die] = lines(json.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(die).toMatchObject({
      status: "die",
      from: "busybox",
      Type: "container",
      Action: "die",
      scope: "local",
      Actor: { Attributes: { exitCode: "3", image: "busybox", name: "ev-exit", team: "blue" } },
    });
    expect(die.id).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof die.timeNano).toBe("number");

    // The default output: time, type, action, id and the attributes.
    const plain = await dk([
      "events",
      "--since",
      since,
      "--until",
      until,
      "--filter",
      "container=ev-exit",
      "--filter",
      "event=destroy",
    ]);
    expect(plain.stdout).toMatch(
      /^\d{4}-\d\d-\d\dT[\d:.]+Z container destroy [0-9a-f]{64} \(.*name=ev-exit.*\)$/m,
    );
  });

  it("shows stop as kill (with its signal), die, stop, and rename with the old name", async () => {
    const since = nowUnix();
    const run = await dk([
      "run",
      "-d",
      "--name",
      "ev-stop",
      "busybox",
      "sh",
      "-c",
      "trap 'exit 0' TERM; sleep 300 & wait",
    ]);
    expect(run.code).toBe(0);
    expect((await dk(["stop", "ev-stop"])).code).toBe(0);
    expect((await dk(["rename", "ev-stop", "ev-stopped"])).code).toBe(0);
    expect((await dk(["rm", "ev-stopped"])).code).toBe(0);
    const ev = await dk([
      "events",
      "--since",
      since,
      "--until",
      nowUnix(),
      "--filter",
      `container=${run.stdout.trim()}`,
      "--format",
      "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.signal}}{{.Actor.Attributes.exitCode}}{{.Actor.Attributes.oldName}}",
    ]);
    expect(lines(ev.stdout.replaceAll("<no value>", ""))).toEqual([
      "create ev-stop ",
      "start ev-stop ",
      "kill ev-stop 15",
      "die ev-stop 0",
      "stop ev-stop ",
      "rename ev-stopped ev-stop",
      "destroy ev-stopped ",
    ]);
  });

  it("shows network create, connect and disconnect, filtered by network and event", async () => {
    const since = nowUnix();
    expect((await dk(["network", "create", "ev-net"])).code).toBe(0);
    const web = await dk(["run", "-d", "--name", "ev-web", "busybox", "sleep", "300"]);
    expect(web.code).toBe(0);
    const id = web.stdout.trim();
    expect((await dk(["network", "connect", "ev-net", "ev-web"])).code).toBe(0);
    expect((await dk(["network", "disconnect", "ev-net", "ev-web"])).code).toBe(0);
    const until = nowUnix();
    const ev = await dk([
      "events",
      "--since",
      since,
      "--until",
      until,
      "--filter",
      "network=ev-net",
      "--format",
      "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}} {{.Actor.Attributes.container}}",
    ]);
    expect(ev.code).toBe(0);
    expect(lines(ev.stdout)).toEqual([
      "network create ev-net bridge <no value>",
      `network connect ev-net bridge ${id}`,
      `network disconnect ev-net bridge ${id}`,
    ]);
    // Its start joined the default bridge network.
    const started = await dk([
      "events",
      "--since",
      since,
      "--until",
      until,
      "--filter",
      "type=network",
      "--filter",
      "event=connect",
      "--filter",
      "network=bridge",
      "--format",
      "{{.Actor.Attributes.container}}",
    ]);
    expect(lines(started.stdout)).toEqual([id]);
    expect((await dk(["rm", "-f", "ev-web"])).code).toBe(0);
    expect((await dk(["network", "rm", "ev-net"])).code).toBe(0);
  });

  it("shows image tag and untag events", async () => {
    const since = nowUnix();
    expect((await dk(["tag", "busybox:latest", "ev/tagged:1"])).code).toBe(0);
    expect((await dk(["rmi", "ev/tagged:1"])).code).toBe(0);
    const until = nowUnix();
    const ev = await dk([
      "events",
      "--since",
      since,
      "--until",
      until,
      "--filter",
      "type=image",
      "--format",
      "{{.Status}} {{.Actor.Attributes.name}}",
    ]);
    expect(ev.code).toBe(0);
    expect(lines(ev.stdout)).toEqual(["tag ev/tagged:1", "untag ev/tagged:1"]);
    const byImage = await dk([
      "events",
      "--since",
      since,
      "--until",
      until,
      "--filter",
      "image=ev/tagged",
      "--format",
      "{{.Action}}",
    ]);
    expect(lines(byImage.stdout)).toEqual(["tag", "untag"]);
  });

  it("shows image save and load events with the image id", async () => {
    const since = nowUnix();
    const id = (await dk(["image", "inspect", "busybox", "--format", "{{.Id}}"])).stdout.trim();
    // The archive goes through a pipe, as a user would send it.
    await exec("sh", ["-c", "docker save busybox | docker load"], {
      env: { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: "/tmp/shoal-docker-config" },
    });
    const ev = await dk([
      "events",
      "--since",
      since,
      "--until",
      nowUnix(),
      "--filter",
      "type=image",
      "--format",
      "{{.Action}} {{.Actor.ID}}",
    ]);
    expect(lines(ev.stdout)).toEqual([`save ${id}`, `load ${id}`]);
  });

  it("shows push and pull with the reference as actor and the repository as name", async () => {
    const reg = await startRegistry({ netns: d.netns });
    const name = `${reg.host}/ev/busybox:1`;
    try {
      const since = nowUnix();
      expect((await dk(["tag", "busybox", name])).code).toBe(0);
      const push = await dk(["push", name]);
      expect(push.code, push.stderr).toBe(0);
      expect((await dk(["rmi", name])).code).toBe(0);
      const pull = await dk(["pull", name]);
      expect(pull.code, pull.stderr).toBe(0);
      const ev = await dk([
        "events",
        "--since",
        since,
        "--until",
        nowUnix(),
        "--filter",
        "event=push",
        "--filter",
        "event=pull",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
      ]);
      expect(lines(ev.stdout)).toEqual([
        `push ${name} ${reg.host}/ev/busybox`,
        `pull ${name} ${reg.host}/ev/busybox`,
      ]);
    } finally {
      await dk(["rmi", name]);
      await reg.stop();
    }
  });

  it("follows new events live, and a stream with a future --until ends by itself", async () => {
    const live = follow(["--filter", "container=ev-live", "--format", "{{.Action}}"]);
    const run = await dk(["run", "-d", "--name", "ev-live", "busybox", "sh", "-c", "exit 0"]);
    expect(run.code).toBe(0);
    await live.waitFor(/die/);
    live.stop();
    await live.exited;
    expect(lines(live.output()).slice(0, 3)).toEqual(["create", "start", "die"]);

    const until = ((Date.now() + 1500) / 1000).toFixed(3);
    const bounded = follow([
      "--since",
      "1m",
      "--until",
      until,
      "--filter",
      "container=ev-live",
      "--filter",
      "event=destroy",
      "--format",
      "{{.Action}}",
    ]);
    expect((await dk(["rm", "ev-live"])).code).toBe(0);
    expect(await bounded.exited).toBe(0);
    expect(lines(bounded.output())).toEqual(["destroy"]);
  });

  it("shoal events and shoal system events show the same, with --filter and --format", async () => {
    const since = nowUnix();
    expect((await dk(["run", "--name", "ev-shoal", "busybox", "sh", "-c", "exit 4"])).code).toBe(4);
    expect((await dk(["rm", "ev-shoal"])).code).toBe(0);
    const until = nowUnix();
    const window = ["--since", since, "--until", until, "--filter", "container=ev-shoal"];
    const s = await shoal(d.socket, [
      "events",
      ...window,
      "--format",
      "{{.Status}} {{.Actor.Attributes.exitCode}}",
    ]);
    expect(s.stderr).toBe("");
    expect(lines(s.stdout).filter((l) => !l.startsWith("attach"))).toEqual([
      "create <no value>",
      "start <no value>",
      "die 4",
      "destroy <no value>",
    ]);
    const sys = await shoal(d.socket, ["system", "events", ...window, "--filter", "event=die"]);
    const dockerLine = await dk(["events", ...window, "--filter", "event=die"]);
    expect(sys.stdout).toBe(dockerLine.stdout);
    const json = await shoal(d.socket, [
      "events",
      ...window,
      "--filter",
      "event=die",
      "--format",
      "{{json .}}",
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      status: "die",
      Actor: { Attributes: { exitCode: "4" } },
    });
    const bad = await shoal(d.socket, ["events", "--until", "0s", "--filter", "colour=red"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid filter 'colour'/);
  });

  it("refuses a filter it does not know with a 400 naming it", async () => {
    const bad = await dk(["events", "--until", "0s", "--filter", "colour=red"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid filter 'colour'/);
    const badType = await dk(["events", "--until", "0s", "--filter", "type=box"]);
    expect(badType.code).not.toBe(0);
    expect(badType.stderr).toMatch(/type=box/);
    const badTime = await dk(["events", "--since", "yesterday"]);
    expect(badTime.code).not.toBe(0);
  });
});

describe("docker ps filters", () => {
  it("network, volume, publish, expose, health, is-task, before and since each narrow the list", async () => {
    expect((await dk(["network", "create", "ps-net"])).code).toBe(0);
    const a = await dk([
      "run",
      "-d",
      "--name",
      "ps-a",
      "-v",
      "ps-vol:/data",
      "-p",
      "18081:80",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(a.code).toBe(0);
    const b = await dk([
      "run",
      "-d",
      "--name",
      "ps-b",
      "--network",
      "ps-net",
      "--expose",
      "9000/udp",
      "busybox",
      "sleep",
      "300",
    ]);
    expect(b.code).toBe(0);
    const c = await dk([
      "create",
      "--name",
      "ps-c",
      "--label",
      "com.docker.swarm.task.id=fake",
      "busybox",
      "true",
    ]);
    expect(c.code).toBe(0);
    const names = async (...filters: string[]): Promise<string[]> => {
      const r = await dk(["ps", "-a", ...filters.flatMap((f) => ["--filter", f]), "--format", "{{.Names}}"]);
      expect(r.stderr).toBe("");
      return lines(r.stdout)
        .filter((n) => n.startsWith("ps-"))
        .sort();
    };
    try {
      expect(await names("network=ps-net")).toEqual(["ps-b"]);
      expect(await names("network=bridge")).toEqual(["ps-a", "ps-c"]);
      expect(await names("volume=ps-vol")).toEqual(["ps-a"]);
      expect(await names("volume=/data")).toEqual(["ps-a"]);
      expect(await names("publish=18081")).toEqual(["ps-a"]);
      expect(await names("publish=18080-18090/tcp")).toEqual(["ps-a"]);
      expect(await names("publish=18081/udp")).toEqual([]);
      expect(await names("expose=80")).toEqual(["ps-a"]);
      expect(await names("expose=9000/udp")).toEqual(["ps-b"]);
      expect(await names("health=none")).toEqual(["ps-a", "ps-b", "ps-c"]);
      expect(await names("health=healthy")).toEqual([]);
      expect(await names("is-task=true")).toEqual(["ps-c"]);
      expect(await names("is-task=false")).toEqual(["ps-a", "ps-b"]);
      expect(await names("before=ps-b")).toEqual(["ps-a"]);
      expect(await names("since=ps-a")).toEqual(["ps-b", "ps-c"]);
      expect(await names("network=ps-net", "expose=80")).toEqual([]);

      for (const [filter, said] of [
        ["colour=red", /invalid filter 'colour'/],
        ["health=sick", /health=sick/],
        ["publish=80:80", /should not contain ':'/],
        ["is-task=maybe", /is-task=maybe/],
      ] as const) {
        const bad = await dk(["ps", "--filter", filter]);
        expect(bad.code).not.toBe(0);
        expect(bad.stderr).toMatch(said);
      }
    } finally {
      await dk(["rm", "-f", "ps-a", "ps-b", "ps-c"]);
      await dk(["volume", "rm", "ps-vol"]);
      await dk(["network", "rm", "ps-net"]);
    }
  });

  it("shows the volume's create, mount, unmount and destroy events", async () => {
    const since = nowUnix();
    expect((await dk(["run", "--rm", "-v", "ev-vol:/v", "busybox", "true"])).code).toBe(0);
    expect((await dk(["volume", "rm", "ev-vol"])).code).toBe(0);
    const ev = await dk([
      "events",
      "--since",
      since,
      "--until",
      nowUnix(),
      "--filter",
      "volume=ev-vol",
      "--format",
      "{{.Action}} {{.Actor.Attributes.driver}}",
    ]);
    expect(lines(ev.stdout)).toEqual(["create local", "mount local", "unmount local", "destroy local"]);
  });
});

describe("IPv6 host addresses in published ports", () => {
  it("are refused at create with a 400 naming the binding, never bound on IPv4", async () => {
    for (const spec of ["[::1]:18090:80", "[::]:18090:80"]) {
      const r = await dk(["create", "--name", "ps-v6", "-p", spec, "busybox", "true"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(
        /invalid port binding \[::1?\]:18090:80\/tcp: shoal publishes ports on IPv4 addresses only/,
      );
    }
    const left = await dk(["ps", "-a", "--filter", "name=ps-v6", "-q"]);
    expect(left.stdout).toBe("");
  });
});
