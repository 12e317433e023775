// A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1:<port>,
// with its own storage folder, optionally with htpasswd basic auth and/or TLS (a throwaway CA
// and a server certificate for 127.0.0.1 and localhost, made with openssl).
//
// Where it runs: test daemons live in their own network namespace (see daemon.ts), and a
// registry on the host's 127.0.0.1 is not reachable from there. So the registry runs *inside the
// daemon's namespace* (nsenter --net), where shoald reaches it as 127.0.0.1:<port> — a loopback
// address, hence "insecure" by default (plain HTTP allowed), exactly like a local registry next
// to dockerd. The test process itself reaches the registry (to wait for it, to build images with
// raw HTTP, to check what is stored) through a small bridge, also in that namespace, that
// forwards a unix socket to the registry's port: `registry.request()` and the helpers below use it.
// stop() kills both processes and removes every file; nothing leaves the namespace.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { Agent, request } from "undici";
import { repoRoot } from "./daemon.js";

const run = promisify(execFile);

export interface RegistryOptions {
  /** The network namespace to run in (a test daemon's `netns`). */
  netns: string;
  /** Basic auth with one user (htpasswd, bcrypt). */
  auth?: { username: string; password: string };
  /** Serve HTTPS with a certificate from a fresh CA (`ca` in the result). */
  tls?: boolean;
}

export interface RegistryAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface TestRegistry {
  /** "127.0.0.1:<port>": the registry part of image references. */
  host: string;
  port: number;
  dir: string;
  /** The filesystem driver's root (docker/registry/v2/...). */
  storage: string;
  /** PEM of the CA that signed the server certificate (tls only). */
  ca?: Buffer;
  logs: () => string;
  /** A request from the test process; sends the basic credentials unless auth is false. */
  request: (
    method: string,
    path: string,
    opts?: { headers?: Record<string, string>; body?: Buffer; auth?: boolean },
  ) => Promise<RegistryAnswer>;
  /** Upload a blob (POST + PUT ?digest=) and return its descriptor. */
  pushBlob: (repo: string, data: Buffer) => Promise<{ digest: string; size: number }>;
  /** PUT a manifest; returns its digest. */
  putManifest: (repo: string, reference: string, raw: Buffer, mediaType: string) => Promise<string>;
  /** Where the registry keeps a blob's bytes (to corrupt it in a test). */
  blobFile: (digest: string) => string;
  stop: () => Promise<void>;
}

export const sha256 = (data: Buffer): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const p = (n: string): string => join(dir, n);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.crt"),
    "-days",
    "2",
    "-subj",
    "/CN=shoal test CA",
  ]);
  await run("openssl", [
    "req",
    ...ec,
    "-keyout",
    p("server.key"),
    "-out",
    p("server.csr"),
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await writeFile(
    p("server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
  );
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    p("server.csr"),
    "-CA",
    p("ca.crt"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-out",
    p("server.crt"),
    "-days",
    "2",
    "-extfile",
    p("server.ext"),
  ]);
  return { ca: p("ca.crt"), cert: p("server.crt"), key: p("server.key") };
}

function waitForLine(child: ChildProcess, text: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no "${text}" within ${ms} ms: ${out}`)), ms);
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before "${text}": ${out}`));
    });
  });
}

async function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

export async function startRegistry(opts: RegistryOptions): Promise<TestRegistry> {
  const dir = await mkdtemp("/tmp/shoal-registry-");
  const storage = join(dir, "data");
  let registry: ChildProcess | undefined;
  let bridge: ChildProcess | undefined;
  let agent: Agent | undefined;
  let output = "";
  const cleanup = async (): Promise<void> => {
    await agent?.close().catch(() => undefined);
    await kill(bridge);
    await kill(registry);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const certs = opts.tls ? await makeCertificates(dir) : undefined;
    if (opts.auth) {
      const { stdout } = await run("htpasswd", ["-Bbn", opts.auth.username, opts.auth.password]);
      await writeFile(join(dir, "htpasswd"), stdout);
    }
    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = 20_000 + Math.floor(Math.random() * 30_000);
      // JSON is YAML: the registry reads this as its config.yml.
      const config = {
        version: 0.1,
        log: { level: "info", accesslog: { disabled: true } },
        storage: {
          filesystem: { rootdirectory: storage },
          delete: { enabled: true },
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: {
          addr: `127.0.0.1:${port}`,
          secret: randomBytes(16).toString("hex"),
          ...(certs ? { tls: { certificate: certs.cert, key: certs.key } } : {}),
        },
        ...(opts.auth ? { auth: { htpasswd: { realm: "shoal-test", path: join(dir, "htpasswd") } } } : {}),
      };
      await writeFile(join(dir, "config.yml"), JSON.stringify(config, null, 1));
      output = "";
      registry = spawn(
        "nsenter",
        [`--net=/run/netns/${opts.netns}`, "/usr/bin/docker-registry", "serve", join(dir, "config.yml")],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      registry.stdout?.on("data", (c: Buffer) => (output += c.toString()));
      registry.stderr?.on("data", (c: Buffer) => (output += c.toString()));
      // It logs "listening on" once bound; an early exit means the port was taken or the config is bad.
      const started = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), 10_000);
        const check = setInterval(() => {
          if (output.includes("listening on")) {
            clearInterval(check);
            clearTimeout(timer);
            resolve(true);
          }
        }, 20);
        registry?.once("exit", () => {
          clearInterval(check);
          clearTimeout(timer);
          resolve(false);
        });
      });
      if (started) break;
      if (attempt >= 4 || !/address already in use/.test(output))
        throw new Error(`docker-registry did not start:\n${output}`);
    }
    const socket = join(dir, "bridge.sock");
    bridge = spawn(
      "nsenter",
      [
        `--net=/run/netns/${opts.netns}`,
        process.execPath,
        join(repoRoot, "test/fixtures/unix-tcp-bridge.mjs"),
        socket,
        "127.0.0.1",
        String(port),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    await waitForLine(bridge, "ready", 10_000);
    const ca = certs ? await readFile(certs.ca) : undefined;
    agent = new Agent({ connect: { socketPath: socket, ...(ca ? { ca } : {}) } });
    const base = `${certs ? "https" : "http"}://127.0.0.1:${port}`;
    const basic = opts.auth
      ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString("base64")}`
      : undefined;
    const req: TestRegistry["request"] = async (method, path, o = {}) => {
      const res = await request(`${base}${path}`, {
        method: method as "GET",
        dispatcher: agent,
        headers: { ...(basic && o.auth !== false ? { authorization: basic } : {}), ...o.headers },
        body: o.body,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers, body };
    };
    for (let i = 0; ; i++) {
      try {
        const r = await req("GET", "/v2/");
        if (r.status === 200 || r.status === 401) break;
      } catch {
        // not answering yet
      }
      if (i > 200) throw new Error(`the registry does not answer /v2/:\n${output}`);
      await sleep(50);
    }
    const pathOf = (location: string): string =>
      location.startsWith("/") ? location : new URL(location).pathname + new URL(location).search;
    const pushBlob: TestRegistry["pushBlob"] = async (repo, data) => {
      const digest = sha256(data);
      const start = await req("POST", `/v2/${repo}/blobs/uploads/`);
      if (start.status !== 202) throw new Error(`upload start: ${start.status} ${start.body.toString()}`);
      const loc = new URL(pathOf(String(start.headers.location)), base);
      loc.searchParams.set("digest", digest);
      const put = await req("PUT", loc.pathname + loc.search, {
        headers: { "content-type": "application/octet-stream" },
        body: data,
      });
      if (put.status !== 201) throw new Error(`upload: ${put.status} ${put.body.toString()}`);
      return { digest, size: data.length };
    };
    const putManifest: TestRegistry["putManifest"] = async (repo, reference, raw, mediaType) => {
      const r = await req("PUT", `/v2/${repo}/manifests/${reference}`, {
        headers: { "content-type": mediaType },
        body: raw,
      });
      if (r.status !== 201) throw new Error(`manifest put: ${r.status} ${r.body.toString()}`);
      return sha256(raw);
    };
    return {
      host: `127.0.0.1:${port}`,
      port,
      dir,
      storage,
      ca,
      logs: () => output,
      request: req,
      pushBlob,
      putManifest,
      blobFile: (digest) => {
        const hex = digest.replace(/^sha256:/, "");
        return join(storage, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
      },
      stop: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
