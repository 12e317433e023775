// Pull, push and login against a real registry (Debian's docker-registry) running inside the
// test daemon's network namespace; see test/helpers/registry.ts for how the pieces meet.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { loadBusybox } from "../helpers/busybox.js";
import { shoal } from "../helpers/cli.js";
import { sha256, startRegistry, type TestRegistry } from "../helpers/registry.js";
import { busyboxEnv, busyboxLayer } from "../fixtures/busybox-image.mjs";
import { makeTar } from "../fixtures/tarlib.mjs";

const dockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
const ociManifest = "application/vnd.oci.image.manifest.v1+json";
const ociIndex = "application/vnd.oci.image.index.v1+json";
const manifestAccept = [
  dockerManifest,
  ociManifest,
  ociIndex,
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

let d: TestDaemon;
let reg: TestRegistry;
let configDir: string;

const sh = (args: string[], input?: Buffer) => shoal(d.socket, args, input, { SHOAL_CONFIG: configDir });

interface Inspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Variant?: string;
  Os: string;
}
const inspect = async (ref: string): Promise<Inspect> => {
  const r = await api(d.socket, "GET", `/images/${encodeURIComponent(ref)}/json`);
  expect(r.status, r.body.toString()).toBe(200);
  return r.json<Inspect>();
};

/** The JSON-lines messages of a streamed answer. */
const messages = (body: Buffer): Array<Record<string, unknown>> =>
  body
    .toString()
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Push an image made of the given uncompressed layers with raw HTTP; returns the manifest digest. */
async function pushRaw(
  r: TestRegistry,
  repo: string,
  tag: string,
  layers: Buffer[],
  platform: { architecture: string; variant?: string },
  mediaType = ociManifest,
): Promise<{ digest: string; raw: Buffer; configDigest: string; layerDigests: string[] }> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: "linux",
      created: "2024-01-01T00:00:00Z",
      config: { Env: busyboxEnv, Cmd: ["sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => sha256(l)) },
      history: layers.map(() => ({ created: "2024-01-01T00:00:00Z", created_by: "registry test" })),
    }),
  );
  const cfg = await r.pushBlob(repo, config);
  const blobs = [];
  for (const l of layers) blobs.push(await r.pushBlob(repo, gzipSync(l)));
  const raw = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: {
        mediaType:
          mediaType === dockerManifest
            ? "application/vnd.docker.container.image.v1+json"
            : "application/vnd.oci.image.config.v1+json",
        digest: cfg.digest,
        size: cfg.size,
      },
      layers: blobs.map((b) => ({
        mediaType:
          mediaType === dockerManifest
            ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
            : "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: b.digest,
        size: b.size,
      })),
    }),
  );
  const digest = await r.putManifest(repo, tag, raw, mediaType);
  return { digest, raw, configDigest: cfg.digest, layerDigests: blobs.map((b) => b.digest) };
}

beforeAll(async () => {
  d = await startDaemon();
  reg = await startRegistry({ netns: d.netns });
  configDir = await mkdtemp("/tmp/shoal-cli-config-");
  await loadBusybox(d.socket);
});
afterAll(async () => {
  await reg?.stop();
  await d?.destroy();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

describe("registry: push and pull", () => {
  it("push then pull round-trips an image with its manifest digest unchanged, and it runs", async () => {
    const name = `${reg.host}/test/busybox:1`;
    const original = await inspect("busybox");
    expect((await sh(["tag", "busybox", name])).code).toBe(0);
    const push = await sh(["push", name]);
    expect(push.stderr).toBe("");
    expect(push.code).toBe(0);
    expect(push.stdout).toContain(`The push refers to repository [${reg.host}/test/busybox]`);
    expect(push.stdout).toMatch(/: Pushed/);
    const digest = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(push.stdout)?.[1];
    expect(digest).toBeDefined();
    // The registry holds exactly that manifest under the tag.
    const m = await reg.request("GET", "/v2/test/busybox/manifests/1", {
      headers: { accept: manifestAccept },
    });
    expect(m.status).toBe(200);
    expect(sha256(m.body)).toBe(digest);
    expect(JSON.parse(m.body.toString()).config.digest).toBe(original.Id);
    expect((await inspect(name)).RepoDigests).toContain(`${reg.host}/test/busybox@${digest}`);

    // A second push sends nothing new and gives the same digest.
    const again = await sh(["push", name]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("Layer already exists");
    expect(again.stdout).toContain(`1: digest: ${digest}`);

    // Remove every image using the layer, so the pull must really download and unpack it.
    expect((await sh(["rmi", name, "busybox"])).code).toBe(0);
    expect((await api(d.socket, "GET", "/images/json")).json<unknown[]>()).toHaveLength(0);
    const pull = await sh(["pull", name]);
    expect(pull.stderr).toBe("");
    expect(pull.code).toBe(0);
    expect(pull.stdout).toContain("1: Pulling from test/busybox");
    expect(pull.stdout).toContain("Pull complete");
    expect(pull.stdout).toContain(`Digest: ${digest}`);
    expect(pull.stdout).toContain(`Status: Downloaded newer image for ${name}`);
    expect(pull.stdout.trim().split("\n").pop()).toBe(name);
    const pulled = await inspect(name);
    expect(pulled.Id).toBe(original.Id);
    expect(pulled.RepoDigests).toEqual([`${reg.host}/test/busybox@${digest}`]);

    const ran = await sh(["run", "--rm", name, "sh", "-c", "echo pulled-and-running"]);
    expect(ran.stderr).toBe("");
    expect(ran.stdout).toBe("pulled-and-running\n");

    // Pulling again changes nothing.
    const twice = await sh(["pull", name]);
    expect(twice.stdout).toContain(`Status: Image is up to date for ${name}`);

    // The pulled image pushed elsewhere in the same registry: the layer is mounted, not
    // uploaded, and the pulled manifest is pushed as it was, so the digest stays.
    const copy = `${reg.host}/test/copy:1`;
    expect((await sh(["tag", name, copy])).code).toBe(0);
    const mounted = await sh(["push", copy]);
    expect(mounted.code).toBe(0);
    expect(mounted.stdout).toContain("Mounted from test/busybox");
    expect(mounted.stdout).toContain(`1: digest: ${digest}`);
  });

  it("pulls by digest and answers Docker's progress messages on the API", async () => {
    const { digest, layerDigests } = await pushRaw(
      reg,
      "test/bydigest",
      "v1",
      [await makeTar([{ name: "by-digest.txt", data: "hello\n" }])],
      { architecture: "amd64" },
    );
    const r = await api(
      d.socket,
      "POST",
      `/images/create?fromImage=${encodeURIComponent(`${reg.host}/test/bydigest`)}&tag=${digest}`,
    );
    expect(r.status).toBe(200);
    const lines = messages(r.body);
    const id = layerDigests[0].slice(7, 19);
    expect(lines[0]).toEqual({ status: "Pulling from test/bydigest", id: digest });
    expect(lines).toContainEqual({ status: "Pulling fs layer", progressDetail: {}, id });
    expect(
      lines.some(
        (l) => l.status === "Downloading" && l.id === id && (l.progressDetail as { total?: number }).total,
      ),
    ).toBe(true);
    expect(lines).toContainEqual({ status: "Download complete", progressDetail: {}, id });
    expect(lines).toContainEqual({ status: "Pull complete", progressDetail: {}, id });
    expect(lines).toContainEqual({ status: `Digest: ${digest}` });
    expect(lines[lines.length - 1]).toEqual({
      status: `Status: Downloaded newer image for ${reg.host}/test/bydigest@${digest}`,
    });
    const image = await inspect(`${reg.host}/test/bydigest@${digest}`);
    expect(image.RepoTags).toEqual([]);
    expect(image.RepoDigests).toEqual([`${reg.host}/test/bydigest@${digest}`]);
  });

  it("an unknown tag is a 404 with the registry's message", async () => {
    const r = await api(
      d.socket,
      "POST",
      `/images/create?fromImage=${encodeURIComponent(`${reg.host}/test/busybox`)}&tag=nosuch`,
    );
    expect(r.status).toBe(404);
    expect(r.json<{ message: string }>().message).toBe(
      `manifest for ${reg.host}/test/busybox:nosuch not found: manifest unknown: manifest unknown`,
    );
    const cli = await sh(["pull", `${reg.host}/test/nothing-here:1`]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/Error response from daemon: manifest for .* not found: .*unknown/);
    const push = await api(d.socket, "POST", `/images/${reg.host}/test/none/push?tag=1`);
    expect(push.status).toBe(404);
    expect(push.json<{ message: string }>().message).toBe(
      `An image does not exist locally with the tag: ${reg.host}/test/none:1`,
    );
  });

  it("a multi-platform index: the host's manifest by default, --platform picks another", async () => {
    const host = await pushRaw(reg, "test/multi", "amd64-only", [await busyboxLayer()], {
      architecture: "amd64",
    });
    const arm = await pushRaw(
      reg,
      "test/multi",
      "arm64-only",
      [await makeTar([{ name: "arm64.txt", data: "an arm64 layer\n" }])],
      { architecture: "arm64", variant: "v8" },
    );
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociIndex,
        manifests: [
          {
            mediaType: ociManifest,
            digest: arm.digest,
            size: arm.raw.length,
            platform: { os: "linux", architecture: "arm64", variant: "v8" },
          },
          {
            mediaType: ociManifest,
            digest: host.digest,
            size: host.raw.length,
            platform: { os: "linux", architecture: "amd64" },
          },
          {
            mediaType: ociManifest,
            digest: arm.digest,
            size: arm.raw.length,
            platform: { os: "unknown", architecture: "unknown" },
            annotations: { "vnd.docker.reference.type": "attestation-manifest" },
          },
        ],
      }),
    );
    const indexDigest = await reg.putManifest("test/multi", "1", index, ociIndex);
    const name = `${reg.host}/test/multi:1`;
    const pull = await sh(["pull", name]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain(`Digest: ${indexDigest}`);
    const got = await inspect(name);
    expect(got.Architecture).toBe("amd64");
    expect(got.Id).toBe(host.configDigest);
    expect(got.RepoDigests).toContain(`${reg.host}/test/multi@${indexDigest}`);
    const ran = await sh(["run", "--rm", name, "echo", "host-arch"]);
    expect(ran.stdout).toBe("host-arch\n");

    const other = await sh(["pull", "--platform", "linux/arm64", name]);
    expect(other.code, other.stderr).toBe(0);
    const armImage = await inspect(name);
    expect(armImage.Id).toBe(arm.configDigest);
    expect(armImage.Architecture).toBe("arm64");
    expect(armImage.Variant).toBe("v8");

    const none = await sh(["pull", "--platform", "linux/s390x", name]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no matching manifest for linux/s390x in the manifest list entries");
  });

  it("a blob whose digest does not match is refused and nothing is stored", async () => {
    const layer = await makeTar([{ name: "payload.bin", data: Buffer.alloc(200_000, 7) }]);
    const { layerDigests } = await pushRaw(reg, "test/corrupt", "1", [layer], { architecture: "amd64" });
    // Flip bytes in the middle of the stored blob: same size, different content.
    const file = reg.blobFile(layerDigests[0]);
    const data = await readFile(file);
    for (let i = 100; i < 120; i++) data[Math.floor(data.length / 2) + i - 100] ^= 0xff;
    await writeFile(file, data);
    const before = (await api(d.socket, "GET", "/images/json")).json<unknown[]>().length;
    const r = await api(
      d.socket,
      "POST",
      `/images/create?fromImage=${encodeURIComponent(`${reg.host}/test/corrupt`)}&tag=1`,
    );
    expect(r.status).toBe(200);
    const last = messages(r.body).pop() as { error?: string; errorDetail?: { message?: string } };
    expect(last.errorDetail?.message).toMatch(/verification failed for digest sha256:[0-9a-f]{64}/);
    expect(last.error).toBe(last.errorDetail?.message);
    const cli = await sh(["pull", `${reg.host}/test/corrupt:1`]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/verification failed/);
    // Nothing of it is stored: no image, no layer folder, no temp files.
    expect((await api(d.socket, "GET", "/images/json")).json<unknown[]>().length).toBe(before);
    const imageRoot = join(d.dataRoot, "image");
    await expect(stat(join(imageRoot, "layers", sha256(layer).slice(7)))).rejects.toThrow();
    expect(await readdir(join(imageRoot, "tmp"))).toEqual([]);
  });

  it("shoal run pulls an image that is not there first", async () => {
    await pushRaw(
      reg,
      "test/autopull",
      "1",
      [await busyboxLayer()],
      { architecture: "amd64" },
      dockerManifest,
    );
    const r = await sh(["run", "--rm", `${reg.host}/test/autopull:1`, "echo", "auto-pulled"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`Unable to find image '${reg.host}/test/autopull:1' locally`);
    expect(r.stdout).toBe("auto-pulled\n");
  });
});

describe("registry: basic auth", () => {
  let secured: TestRegistry;
  beforeAll(async () => {
    secured = await startRegistry({ netns: d.netns, auth: { username: "alice", password: "s3cret" } });
  });
  afterAll(async () => {
    await secured?.stop();
  });

  it("wrong credentials are a 401 with the registry's message; right ones via shoal login work", async () => {
    const server = secured.host;
    const bad = await api(d.socket, "POST", "/auth", {
      username: "alice",
      password: "wrong",
      serveraddress: server,
    });
    expect(bad.status).toBe(401);
    expect(bad.json<{ message: string }>().message).toContain("unauthorized: authentication required");
    const badCli = await sh(["login", "-u", "alice", "--password-stdin", server], Buffer.from("wrong\n"));
    expect(badCli.code).toBe(1);
    expect(badCli.stderr).toContain("unauthorized: authentication required");

    // Without credentials the push is refused before anything is sent.
    const name = `${server}/private/busybox:1`;
    await loadBusybox(d.socket);
    expect((await sh(["tag", "busybox", name])).code).toBe(0);
    const anonymous = await sh(["push", name]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain("unauthorized: authentication required");

    const login = await sh(["login", "-u", "alice", "--password-stdin", server], Buffer.from("s3cret\n"));
    expect(login.stderr).toContain("WARNING! Your password will be stored unencrypted");
    expect(login.code).toBe(0);
    expect(login.stdout).toBe("Login Succeeded\n");
    const config = JSON.parse(await readFile(join(configDir, "config.json"), "utf8")) as {
      auths: Record<string, { auth: string }>;
    };
    expect(Buffer.from(config.auths[server].auth, "base64").toString()).toBe("alice:s3cret");
    expect(((await stat(join(configDir, "config.json"))).mode & 0o777).toString(8)).toBe("600");

    const push = await sh(["push", name]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/1: digest: sha256:[0-9a-f]{64}/);
    // Wrong credentials in X-Registry-Auth: 401 with the registry's message, before any stream.
    const wrongAuth = {
      "X-Registry-Auth": Buffer.from(
        JSON.stringify({ username: "alice", password: "wrong", serveraddress: server }),
      ).toString("base64url"),
    };
    const repo = encodeURIComponent(`${server}/private/busybox`);
    const wrongPull = await api(
      d.socket,
      "POST",
      `/images/create?fromImage=${repo}&tag=1`,
      undefined,
      wrongAuth,
    );
    expect(wrongPull.status).toBe(401);
    expect(wrongPull.json<{ message: string }>().message).toContain("unauthorized: authentication required");
    const wrongPush = await api(
      d.socket,
      "POST",
      `/images/${server}/private/busybox/push?tag=1`,
      undefined,
      wrongAuth,
    );
    expect(wrongPush.status).toBe(401);

    expect((await sh(["rmi", name])).code).toBe(0);
    const pull = await sh(["pull", name]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain("Status:");

    const logout = await sh(["logout", server]);
    expect(logout.stdout).toBe(`Removing login credentials for ${server}\n`);
    const denied = await sh(["pull", name.replace(":1", ":other")]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("unauthorized: authentication required");
  });
});

describe("registry: TLS with a custom CA", () => {
  let tls: TestRegistry;
  beforeAll(async () => {
    tls = await startRegistry({ netns: d.netns, tls: true });
  });
  afterAll(async () => {
    await tls?.stop();
  });

  it("fails with a clear message without the CA, works with it in the certs dir", async () => {
    await pushRaw(tls, "secure/busybox", "1", [await busyboxLayer()], { architecture: "amd64" });
    const name = `${tls.host}/secure/busybox:1`;
    const without = await sh(["pull", name]);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain(`cannot verify the TLS certificate of registry ${tls.host}`);
    expect(without.stderr).toContain(join(d.certsDir, tls.host, "ca.crt"));

    await mkdir(join(d.certsDir, tls.host), { recursive: true });
    await writeFile(join(d.certsDir, tls.host, "ca.crt"), tls.ca as Buffer);
    const pull = await sh(["pull", name]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain(`Status: Downloaded newer image for ${name}`);
    const ran = await sh(["run", "--rm", name, "echo", "over-tls"]);
    expect(ran.stdout).toBe("over-tls\n");
  });
});
