// The registry client against a small fake registry in this process (HTTP on 127.0.0.1): token
// auth, retries, digest checks, and a pull whose blob download breaks halfway.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { RegistryClient, type RetryPolicy } from "../../agent/engine/registry/client.js";
import { RegistryHosts } from "../../agent/engine/registry/hosts.js";
import { RegistryService } from "../../agent/engine/registry/service.js";
import { VerifiedBlob } from "../../agent/engine/registry/verify.js";
import type { ProgressMessage } from "../../agent/engine/registry/progress.js";
import { silentLogger } from "../../shared/logging.js";
import { makeTar } from "../fixtures/tarlib.mjs";
import { tempStore, type TestStore } from "./image-helpers.js";

const sha = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const fast: RetryPolicy = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;
let server: Server;
let host: string;
let handler: Handler;
const hits: string[] = [];
let certsDir: string;
let hosts: RegistryHosts;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    hits.push(`${req.method} ${url.pathname}`);
    handler(req, res, url);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  certsDir = await mkdtemp("/tmp/shoal-certs-test-");
  hosts = new RegistryHosts({ insecureRegistries: [], certsDir });
});
afterAll(async () => {
  await hosts.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(certsDir, { recursive: true, force: true });
});
beforeEach(() => {
  hits.length = 0;
});

const json = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
};

const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: sha("c"), size: 1 },
    layers: [],
  }),
);

describe("registry client", () => {
  it("answers a Bearer challenge with a token fetched with the credentials, and caches it", async () => {
    let tokenRequests = 0;
    handler = (req, res, url) => {
      if (url.pathname === "/token") {
        tokenRequests++;
        const ok = req.headers.authorization === `Basic ${Buffer.from("alice:pw").toString("base64")}`;
        if (!ok) return json(res, 401, { details: "incorrect username or password" });
        expect(url.searchParams.get("service")).toBe("fake");
        expect(url.searchParams.getAll("scope")).toEqual(["repository:team/app:pull"]);
        return json(res, 200, { token: "T1", expires_in: 300 });
      }
      if (req.headers.authorization !== "Bearer T1") {
        return json(
          res,
          401,
          { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
          {
            "www-authenticate": `Bearer realm="http://${host}/token",service="fake",scope="repository:team/app:pull"`,
          },
        );
      }
      if (url.pathname === "/v2/team/app/manifests/1") {
        res.writeHead(200, {
          "content-type": "application/vnd.docker.distribution.manifest.v2+json",
          "docker-content-digest": sha(manifest),
        });
        return res.end(manifest);
      }
      json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
    };
    const client = new RegistryClient(hosts, host, { username: "alice", password: "pw" }, undefined, fast);
    const m = await client.getManifest("team/app", "1");
    expect(m.digest).toBe(sha(manifest));
    expect(m.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    await client.getManifest("team/app", "1");
    expect(tokenRequests).toBe(1);
    await expect(client.getManifest("team/app", "nosuch")).rejects.toThrow(
      `manifest for ${host}/team/app:nosuch not found: manifest unknown: manifest unknown`,
    );

    const wrong = new RegistryClient(hosts, host, { username: "alice", password: "nope" }, undefined, fast);
    const err = await wrong.getManifest("team/app", "1").catch((e: unknown) => e);
    expect((err as { status: number }).status).toBe(401);
    expect((err as Error).message).toContain("incorrect username or password");
  });

  it("retries 5xx and 429 with backoff, then gives up with the registry's message", async () => {
    let n = 0;
    handler = (_req, res, url) => {
      if (url.pathname === "/v2/") return json(res, 200, {});
      n++;
      if (n === 1) return json(res, 503, { errors: [{ code: "UNAVAILABLE", message: "busy" }] });
      if (n === 2)
        return json(
          res,
          429,
          { errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] },
          { "retry-after": "0" },
        );
      res.writeHead(200, { "content-type": "application/vnd.docker.distribution.manifest.v2+json" });
      res.end(manifest);
    };
    const client = new RegistryClient(hosts, host, undefined, undefined, fast);
    expect((await client.getManifest("a/b", "1")).digest).toBe(sha(manifest));
    expect(n).toBe(3);

    handler = (_req, res, url) => {
      if (url.pathname === "/v2/") return json(res, 200, {});
      json(res, 500, { errors: [{ code: "UNKNOWN", message: "disk on fire" }] });
    };
    hits.length = 0;
    const failing = new RegistryClient(hosts, host, undefined, undefined, fast);
    await expect(failing.getManifest("a/b", "1")).rejects.toThrow("unknown: disk on fire");
    expect(hits.filter((h) => h.includes("/manifests/")).length).toBe(fast.attempts);
  });

  it("refuses a manifest whose content does not match the digest asked for or announced", async () => {
    handler = (_req, res, url) => {
      if (url.pathname === "/v2/") return json(res, 200, {});
      res.writeHead(200, {
        "content-type": "application/vnd.docker.distribution.manifest.v2+json",
        "docker-content-digest": sha("other"),
      });
      res.end(manifest);
    };
    const client = new RegistryClient(hosts, host, undefined, undefined, fast);
    await expect(client.getManifest("a/b", "1")).rejects.toThrow(/manifest verification failed.*says sha256/);
    await expect(client.getManifest("a/b", sha("other"))).rejects.toThrow(/manifest verification failed/);
  });

  it("falls back to plain HTTP only for insecure registries, and says what to do otherwise", async () => {
    handler = (_req, res) => json(res, 200, {});
    const secureHosts = new RegistryHosts({
      insecureRegistries: ["10.0.0.0/8", "my.registry:5000"],
      certsDir,
    });
    try {
      expect(await secureHosts.isInsecure("127.0.0.1:5000")).toBe(true);
      expect(await secureHosts.isInsecure("localhost:5000")).toBe(true);
      expect(await secureHosts.isInsecure("10.2.3.4:443")).toBe(true);
      expect(await secureHosts.isInsecure("my.registry:5000")).toBe(true);
      expect(await secureHosts.isInsecure("192.168.1.1:5000")).toBe(false);
      expect(await secureHosts.isInsecure("docker.io")).toBe(false);
      expect(() => new RegistryHosts({ insecureRegistries: ["10.0.0.0/40"], certsDir })).toThrow(
        /invalid insecure registry/,
      );
    } finally {
      await secureHosts.close();
    }
    // 127.0.0.1 is insecure by default: HTTPS fails (plain server), HTTP works.
    await new RegistryClient(hosts, host, undefined, undefined, fast).ping();
    // Nothing listens here: both schemes fail, and the message names them.
    await expect(new RegistryClient(hosts, "127.0.0.1:1", undefined, undefined, fast).ping()).rejects.toThrow(
      "cannot reach registry 127.0.0.1:1: https: connection refused; http: connection refused",
    );
  });
});

describe("verified blobs", () => {
  const chunks = async function* (parts: Buffer[]): AsyncGenerator<Buffer> {
    for (const p of parts) yield p;
  };

  it("passes the bytes through, keeps them, and checks size and digest at the end", async () => {
    const dir = await mkdtemp("/tmp/shoal-verify-");
    try {
      const data = Buffer.from("hello registry");
      const keep = join(dir, "kept");
      const ok = new VerifiedBlob(
        chunks([data.subarray(0, 5), data.subarray(5)]),
        sha(data),
        data.length,
        "blob",
        { keepTo: keep },
      );
      const first = await ok.chunks().next();
      expect(first.value?.toString()).toBe("hello");
      await ok.finish(); // reads the rest the consumer left
      expect((await stat(keep)).size).toBe(data.length);

      const bad = new VerifiedBlob(chunks([data]), sha("something else"), data.length, "blob", {
        keepTo: join(dir, "bad"),
      });
      await expect(bad.finish()).rejects.toThrow(
        /verification failed for digest sha256:[0-9a-f]{64}: the downloaded content hashes to/,
      );
      expect(await readdir(dir)).toEqual(["kept"]);

      const long = new VerifiedBlob(chunks([data, data]), sha(data), data.length, "blob");
      await expect(long.finish()).rejects.toThrow(/more than the 14 bytes/);
      const short = new VerifiedBlob(chunks([data.subarray(0, 3)]), sha(data), data.length, "blob");
      await expect(short.finish()).rejects.toThrow(/sent 3 bytes, but the manifest gives 14/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("pull through the service", () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await tempStore();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it("retries a layer whose download breaks halfway, and commits only verified layers", async () => {
    const layer = await makeTar([
      { name: "big.bin", data: Buffer.alloc(300_000, 1) },
      { name: "x.txt", data: "x\n" },
    ]);
    const blob = gzipSync(layer, { level: 0 });
    const config = Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: {},
        rootfs: { type: "layers", diff_ids: [sha(layer)] },
      }),
    );
    const m = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: sha(config),
          size: config.length,
        },
        layers: [
          { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(blob), size: blob.length },
        ],
      }),
    );
    let blobGets = 0;
    handler = (_req, res, url) => {
      if (url.pathname === "/v2/") return json(res, 200, {});
      if (url.pathname.endsWith("/manifests/1")) {
        res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
        return res.end(m);
      }
      if (url.pathname.endsWith(`/blobs/${sha(config)}`)) return res.end(config);
      if (url.pathname.endsWith(`/blobs/${sha(blob)}`)) {
        blobGets++;
        res.writeHead(200, { "content-length": String(blob.length) });
        if (blobGets === 1) {
          // Half the blob, then the connection dies.
          res.write(blob.subarray(0, blob.length >> 1), () => res.socket?.destroy());
          return;
        }
        return res.end(blob);
      }
      json(res, 404, { errors: [{ code: "BLOB_UNKNOWN", message: "blob unknown" }] });
    };
    const service = new RegistryService(
      () => t.store.distribution(),
      { insecureRegistries: [], certsDir, retry: fast },
      silentLogger(),
    );
    try {
      const job = await service.preparePull({ reference: `${host}/a/b:1` });
      const seen: ProgressMessage[] = [];
      await job.run((msg) => seen.push(msg));
      expect(blobGets).toBe(2);
      const id = sha(blob).slice(7, 19);
      expect(seen).toContainEqual({ status: "Retrying in 1 second", progressDetail: {}, id });
      expect(seen).toContainEqual({ status: "Pull complete", progressDetail: {}, id });
      const image = t.store.resolve(`${host}/a/b:1`);
      expect(image.id).toBe(sha(config));
      expect(image.repoDigests).toEqual([`${host}/a/b@${sha(m)}`]);
      // The compressed blob is kept with the layer, for the next push.
      const kept = await t.store.distribution().keptBlobs(sha(layer));
      expect(kept).toEqual([
        {
          digest: sha(blob),
          size: blob.length,
          mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
          repositories: [`${host}/a/b`],
          kept: true,
        },
      ]);
      expect(await readdir(join(t.root, "tmp"))).toEqual([]);
    } finally {
      await service.close();
    }
  });
});
