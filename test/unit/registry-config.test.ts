import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  configDir,
  credentialsFor,
  eraseCredentials,
  readConfigFile,
  storeCredentials,
  writeConfigFile,
  type ConfigFile,
} from "../../cli/config-file.js";
import { dockerHubAuthKey } from "../../shared/registry-auth.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp("/tmp/shoal-config-test-");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("config.json", () => {
  it("is found in $SHOAL_CONFIG, then $DOCKER_CONFIG, then ~/.shoal", () => {
    expect(configDir({ SHOAL_CONFIG: "/a", DOCKER_CONFIG: "/b" })).toBe("/a");
    expect(configDir({ DOCKER_CONFIG: "/b" })).toBe("/b");
    expect(configDir({})).toMatch(/\/\.shoal$/);
  });

  it("reads the docker CLI's file, matching keys however they spell the registry", async () => {
    const path = join(dir, "config.json");
    await writeFile(
      path,
      JSON.stringify({
        auths: {
          "https://index.docker.io/v1/": { auth: Buffer.from("hubuser:hubpw").toString("base64") },
          "http://127.0.0.1:5000/v2/": { auth: Buffer.from("alice:a:b").toString("base64") },
          "tokens.example.com": {
            auth: Buffer.from("carol:").toString("base64"),
            identitytoken: "refresh-me",
          },
        },
        credsStore: "",
        psFormat: "table {{.ID}}",
      }),
    );
    const config = await readConfigFile(path);
    expect(credentialsFor(config, "docker.io")).toEqual({
      serveraddress: "https://index.docker.io/v1/",
      username: "hubuser",
      password: "hubpw",
    });
    expect(credentialsFor(config, "127.0.0.1:5000")).toMatchObject({ username: "alice", password: "a:b" });
    expect(credentialsFor(config, "tokens.example.com")).toMatchObject({
      username: "carol",
      identitytoken: "refresh-me",
    });
    expect(credentialsFor(config, "elsewhere:1")).toBeUndefined();
    expect(await readConfigFile(join(dir, "missing.json"))).toEqual({});
  });

  it("writes credentials readable by the owner only and keeps other settings", async () => {
    const path = join(dir, "sub", "config.json");
    let config: ConfigFile = {
      psFormat: "table {{.ID}}",
      auths: { "http://127.0.0.1:5000/v2/": { auth: "old" } },
    };
    config = storeCredentials(config, "127.0.0.1:5000", { username: "alice", password: "s3cret" });
    config = storeCredentials(config, "docker.io", { username: "hub", password: "pw" });
    await writeConfigFile(config, path);
    expect(((await stat(path)).mode & 0o777).toString(8)).toBe("600");
    const written = JSON.parse(await readFile(path, "utf8"));
    expect(written.psFormat).toBe("table {{.ID}}");
    expect(Object.keys(written.auths).sort()).toEqual(["127.0.0.1:5000", dockerHubAuthKey]);
    expect(Buffer.from(written.auths["127.0.0.1:5000"].auth, "base64").toString()).toBe("alice:s3cret");

    const { config: after, removed } = eraseCredentials(await readConfigFile(path), "127.0.0.1:5000");
    expect(removed).toBe(true);
    expect(Object.keys(after.auths ?? {})).toEqual([dockerHubAuthKey]);
    expect(eraseCredentials(after, "127.0.0.1:5000").removed).toBe(false);
  });

  it("refuses a file that is not JSON with a message naming it", async () => {
    const path = join(dir, "config.json");
    await writeFile(path, "{nope");
    await expect(readConfigFile(path)).rejects.toThrow(`${path} is not valid JSON`);
  });
});
