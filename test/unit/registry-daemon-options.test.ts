import { afterEach, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseDaemonOptions } from "../../daemon/options.js";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("shoald registry options", () => {
  it("takes --insecure-registry (repeatable), --certs-dir and daemon.json's insecure-registries", async () => {
    dir = await mkdtemp("/tmp/shoal-opts-");
    const file = join(dir, "daemon.json");
    await writeFile(
      file,
      JSON.stringify({ "insecure-registries": ["10.0.0.0/8"], "certs-dir": "/etc/x/certs.d" }),
    );
    expect(await parseDaemonOptions(["--config-file", file])).toMatchObject({
      insecureRegistries: ["10.0.0.0/8"],
      certsDir: "/etc/x/certs.d",
    });
    const flags = await parseDaemonOptions([
      "--config-file",
      file,
      "--insecure-registry",
      "reg.lan:5000",
      "--insecure-registry",
      "192.168.0.0/16",
      "--certs-dir",
      "/tmp/certs",
    ]);
    expect(flags.insecureRegistries).toEqual(["10.0.0.0/8", "reg.lan:5000", "192.168.0.0/16"]);
    expect(flags.certsDir).toBe("/tmp/certs");
    expect(flags).toMatchObject({ maxConcurrentDownloads: 3, maxConcurrentUploads: 5 });
    const limits = await parseDaemonOptions(["--config-file", file, "--max-concurrent-downloads", "6"]);
    expect(limits.maxConcurrentDownloads).toBe(6);
    await expect(
      parseDaemonOptions(["--config-file", file, "--max-concurrent-uploads", "0"]),
    ).rejects.toThrow(/invalid value "0" for --max-concurrent-uploads/);
    await writeFile(file, "{}");
    expect((await parseDaemonOptions(["--config-file", file])).certsDir).toBe("/etc/shoal/certs.d");
  });
});
