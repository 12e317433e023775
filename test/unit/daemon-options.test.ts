import { afterEach, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseDaemonOptions } from "../../daemon/options.js";
import { rewriteVersionedUrl } from "../../api/server.js";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("shoald options", () => {
  it("takes dockerd's flags, then the config file's keys, then defaults", async () => {
    dir = await mkdtemp("/tmp/shoal-opts-");
    const file = join(dir, "daemon.json");
    await writeFile(
      file,
      JSON.stringify({
        "data-root": "/srv/shoal",
        "exec-root": "/run/s2",
        hosts: ["unix:///run/s2.sock"],
        "log-level": "debug",
      }),
    );
    const fromFile = await parseDaemonOptions(["--config-file", file]);
    expect(fromFile).toMatchObject({
      dataRoot: "/srv/shoal",
      execRoot: "/run/s2",
      socketPath: "/run/s2.sock",
      logLevel: "debug",
      pidFile: "/run/s2/shoald.pid",
    });
    const flagsWin = await parseDaemonOptions([
      "--config-file",
      file,
      "--data-root",
      "/tmp/d",
      "-H",
      "unix:///tmp/x.sock",
    ]);
    expect(flagsWin).toMatchObject({ dataRoot: "/tmp/d", execRoot: "/run/s2", socketPath: "/tmp/x.sock" });
  });

  it("refuses a named config file it cannot read, and TCP hosts for now", async () => {
    await expect(parseDaemonOptions(["--config-file", "/nonexistent/daemon.json"])).rejects.toThrow(
      /cannot read config file \/nonexistent\/daemon.json/,
    );
    dir = await mkdtemp("/tmp/shoal-opts-");
    const bad = join(dir, "bad.json");
    await writeFile(bad, "{ not json");
    await expect(parseDaemonOptions(["--config-file", bad])).rejects.toThrow(/fix the file/);
    const empty = join(dir, "empty.json");
    await writeFile(empty, "{}");
    await expect(parseDaemonOptions(["--config-file", empty, "-H", "tcp://0.0.0.0:2375"])).rejects.toThrow(
      /unsupported host "tcp:\/\/0.0.0.0:2375"/,
    );
  });
});

describe("API version prefixes", () => {
  it("strips /v1.24 to /v1.44 and sends other versions to the refusal route", () => {
    expect(rewriteVersionedUrl("/v1.44/containers/json?all=1")).toBe("/containers/json?all=1");
    expect(rewriteVersionedUrl("/v1.24/_ping")).toBe("/_ping");
    expect(rewriteVersionedUrl("/containers/json")).toBe("/containers/json");
    expect(rewriteVersionedUrl("/v1.50/version")).toBe("/_unsupported_version/1.50");
    expect(rewriteVersionedUrl("/v1.12/version")).toBe("/_unsupported_version/1.12");
  });
});
