import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient, buildQuery, parseHost, resolveHost } from "../../cli/client.js";
import { CliError, DaemonError } from "../../cli/errors.js";
import { filtersJson } from "../../cli/command.js";
import { apiTimestamp } from "../../cli/options.js";
import { startFailureCode } from "../../cli/commands/run.js";

describe("host selection", () => {
  it("-H wins over SHOAL_HOST over DOCKER_HOST over the default", () => {
    const env = { SHOAL_HOST: "unix:///s.sock", DOCKER_HOST: "unix:///d.sock" };
    expect(resolveHost("unix:///h.sock", env).display).toBe("unix:///h.sock");
    expect(resolveHost(undefined, env).display).toBe("unix:///s.sock");
    expect(resolveHost(undefined, { DOCKER_HOST: "unix:///d.sock" }).display).toBe("unix:///d.sock");
    expect(resolveHost(undefined, {})).toEqual({
      kind: "unix",
      socketPath: "/run/shoal/shoal.sock",
      display: "unix:///run/shoal/shoal.sock",
    });
  });
  it("parses tcp hosts", () => {
    expect(parseHost("tcp://10.0.0.1:2377")).toEqual({
      kind: "tcp",
      host: "10.0.0.1",
      port: 2377,
      display: "tcp://10.0.0.1:2377",
    });
    expect(parseHost("tcp://[::1]:2375")).toMatchObject({ kind: "tcp", host: "::1", port: 2375 });
  });
  it("rejects what it cannot use", () => {
    expect(() => parseHost("ssh://box")).toThrow(/invalid host/);
    expect(() => parseHost("unix://")).toThrow(/empty/);
  });
});

describe("query and filters", () => {
  it("buildQuery skips undefined, repeats arrays, writes booleans as 1/0", () => {
    expect(buildQuery({ a: 1, b: undefined, c: true, d: false, names: ["x", "y"], n: null, s: "a b" })).toBe(
      "?a=1&c=1&d=0&names=x&names=y&s=a+b",
    );
    expect(buildQuery({})).toBe("");
  });
  it("filtersJson uses docker's map form", () => {
    expect(filtersJson(["status=exited", "label=a=b", "status=created"])).toBe(
      '{"status":{"exited":true,"created":true},"label":{"a=b":true}}',
    );
    expect(filtersJson([], { dangling: ["true"] })).toBe('{"dangling":{"true":true}}');
    expect(filtersJson(undefined)).toBeUndefined();
    expect(() => filtersJson(["nonsense"])).toThrow(/name=value/);
  });
});

describe("logs --since/--until", () => {
  const now = Date.parse("2024-01-01T00:00:00Z");
  it("accepts Unix times, RFC 3339 dates and durations", () => {
    expect(apiTimestamp("1700000000", "--since", now)).toBe("1700000000");
    expect(apiTimestamp("1700000000.5", "--since", now)).toBe("1700000000.5");
    expect(apiTimestamp("10m", "--since", now)).toBe(`${now / 1000 - 600}.000000000`);
    expect(apiTimestamp("1h30m", "--since", now)).toBe(`${now / 1000 - 5400}.000000000`);
    expect(apiTimestamp("2024-01-01T00:00:10Z", "--since", now)).toBe(`${now / 1000 + 10}.000000000`);
    expect(apiTimestamp("2024-01-01T00:00:10.123456789Z", "--since", now)).toBe(
      `${now / 1000 + 10}.123456789`,
    );
    expect(apiTimestamp("2024-01-01", "--since", now)).toBe(`${now / 1000}.000000000`);
  });
  it("names the flag on bad input", () => {
    expect(() => apiTimestamp("yesterday", "--until", now)).toThrow(/--until/);
  });
});

describe("run exit codes for a failed start", () => {
  it.each([
    ['exec: "nope": executable file not found in $PATH', 127],
    ["runc create failed: exec /bin/x: no such file or directory", 127],
    ["exec /etc: permission denied", 126],
    ["exec /: is a directory", 126],
    ["cgroup setup failed", 125],
  ])("%s → %d", (message, code) => {
    expect(startFailureCode(message)).toBe(code);
  });
});

describe("ApiClient over a unix socket", () => {
  let dir: string;
  let server: Server;
  let socketPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "shoal-cli-"));
    socketPath = join(dir, "api.sock");
    // Only enough HTTP to exercise the client's own handling: error bodies, JSON, upgrade.
    server = createServer((req, res) => {
      if (req.url?.startsWith("/v1.44/fail")) {
        res.writeHead(409, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ message: "the name is taken" }));
      } else if (req.url?.startsWith("/v1.44/text")) {
        res.writeHead(500);
        res.end("plain failure\n");
      } else {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ path: req.url, method: req.method }));
      }
    });
    server.on("upgrade", (req, socket) => {
      socket.write(
        "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
      );
      socket.end(Buffer.from([1, 0, 0, 0, 0, 0, 0, 2, 104, 105]));
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends versioned paths and parses JSON", async () => {
    const client = new ApiClient(parseHost(`unix://${socketPath}`));
    expect(await client.json("GET", "/containers/json", { query: { all: 1 } })).toEqual({
      path: "/v1.44/containers/json?all=1",
      method: "GET",
    });
  });

  it("turns {message} bodies into DaemonError", async () => {
    const client = new ApiClient(parseHost(`unix://${socketPath}`));
    const e = await client.json("POST", "/fail").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DaemonError);
    expect((e as DaemonError).status).toBe(409);
    expect((e as DaemonError).display).toBe("Error response from daemon: the name is taken");
    const t = await client.json("GET", "/text").catch((x: unknown) => x);
    expect((t as DaemonError).message).toBe("plain failure");
  });

  it("hijacks on 101 and hands back the raw stream", async () => {
    const client = new ApiClient(parseHost(`unix://${socketPath}`));
    const stream = await client.hijack("/containers/x/attach", { stream: 1 });
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect([...Buffer.concat(chunks)]).toEqual([1, 0, 0, 0, 0, 0, 0, 2, 104, 105]);
  });

  it("explains a missing socket", async () => {
    const client = new ApiClient(parseHost(`unix://${join(dir, "missing.sock")}`));
    const e = await client.json("GET", "/version").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CliError);
    expect((e as Error).message).toBe(
      `Cannot connect to the shoal daemon at unix://${join(dir, "missing.sock")}. Is shoald running? (start it with: shoald, or systemctl start shoald)`,
    );
  });
});
