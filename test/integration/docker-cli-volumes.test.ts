// The real docker CLI (client only on this machine) managing and mounting shoal's volumes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { docker } from "../helpers/cli.js";

let d: TestDaemon;
const dk = (args: string[]) => docker(d.socket, args);

beforeAll(async () => {
  d = await startDaemon();
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await d?.destroy();
});

describe("docker volume commands against shoald", () => {
  it("volume create, ls, inspect, rm", async () => {
    const create = await dk(["volume", "create", "--label", "app=shop", "dkvol"]);
    expect(create).toMatchObject({ code: 0, stdout: "dkvol\n", stderr: "" });
    const ls = await dk(["volume", "ls"]);
    expect(ls.stdout).toBe("DRIVER    VOLUME NAME\nlocal     dkvol\n");
    const filtered = await dk([
      "volume",
      "ls",
      "-q",
      "--filter",
      "label=app=shop",
      "--filter",
      "dangling=true",
    ]);
    expect(filtered.stdout).toBe("dkvol\n");
    const inspect = await dk([
      "volume",
      "inspect",
      "--format",
      "{{.Name}} {{.Driver}} {{.Labels.app}} {{.Mountpoint}}",
      "dkvol",
    ]);
    expect(inspect.stdout.trim()).toBe(`dkvol local shop ${join(d.dataRoot, "volumes", "dkvol", "_data")}`);
    const json = JSON.parse((await dk(["volume", "inspect", "dkvol"])).stdout) as Array<
      Record<string, unknown>
    >;
    expect(json[0]).toMatchObject({
      Name: "dkvol",
      Driver: "local",
      Scope: "local",
      Labels: { app: "shop" },
    });
    const rm = await dk(["volume", "rm", "dkvol"]);
    expect(rm).toMatchObject({ code: 0, stdout: "dkvol\n" });
    const missing = await dk(["volume", "inspect", "dkvol"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/No such volume: dkvol/);
  });

  it("run -v with a named volume and a bind mount; data outlives the container", async () => {
    const dir = join(d.root, "docker-bind");
    await mkdir(dir);
    await writeFile(join(dir, "in.txt"), "from host\n");
    const w = await dk([
      "run",
      "--rm",
      "-v",
      "dkdata:/data",
      "-v",
      `${dir}:/host`,
      "busybox",
      "sh",
      "-c",
      "cat /host/in.txt; echo saved > /data/f; echo back > /host/out.txt",
    ]);
    expect(w).toMatchObject({ code: 0, stdout: "from host\n", stderr: "" });
    expect(await readFile(join(dir, "out.txt"), "utf8")).toBe("back\n");
    const r = await dk([
      "run",
      "--rm",
      "-v",
      "dkdata:/data:ro",
      "busybox",
      "sh",
      "-c",
      "cat /data/f; touch /data/g",
    ]);
    expect(r.stdout).toBe("saved\n");
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(r.code).toBe(1);
  });

  it("inspect shows the mounts; volume rm refuses one in use; rm -v and prune clean up", async () => {
    const id = (
      await dk(["create", "--name", "dkuser", "-v", "dkused:/u", "-v", "/anon", "busybox", "true"])
    ).stdout.trim();
    const mounts = JSON.parse(
      (await dk(["inspect", "--format", "{{json .Mounts}}", "dkuser"])).stdout,
    ) as Array<{
      Type: string;
      Name: string;
      Destination: string;
      RW: boolean;
    }>;
    expect(mounts.map((m) => [m.Type, m.Destination, m.RW])).toEqual([
      ["volume", "/anon", true],
      ["volume", "/u", true],
    ]);
    const refused = await dk(["volume", "rm", "dkused"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `Error response from daemon: remove dkused: volume is in use - [${id}] (container dkuser): remove the container first\n`,
    );
    expect((await dk(["rm", "-v", "dkuser"])).code).toBe(0);
    const left = (await dk(["volume", "ls", "-q"])).stdout.split("\n").filter(Boolean);
    expect(left).toContain("dkused");
    expect(left).not.toContain(mounts[0].Name);
    const prune = await dk(["volume", "prune", "-af"]);
    expect(prune.code).toBe(0);
    expect(prune.stdout).toContain("dkused");
    expect((await dk(["volume", "ls", "-q"])).stdout).toBe("");
  });

  it("--mount and --tmpfs through the docker CLI", async () => {
    const r = await dk([
      "run",
      "--rm",
      "--mount",
      "type=volume,src=dkmnt,dst=/m,readonly",
      "--tmpfs",
      "/scratch:size=4m",
      "busybox",
      "sh",
      "-c",
      "grep ' /scratch ' /proc/mounts; touch /m/x 2>/dev/null || echo ro",
    ]);
    expect(r.stdout).toBe("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=4096k 0 0\nro\n");
    const bad = await dk([
      "run",
      "--rm",
      "--mount",
      `type=bind,src=${join(d.root, "nope")},dst=/x`,
      "busybox",
      "true",
    ]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain(
      `invalid mount config for type "bind": bind source path does not exist: ${join(d.root, "nope")}`,
    );
  });
});
