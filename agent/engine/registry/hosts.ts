// Which registries may be spoken to how: HTTPS always, verified against the system roots plus
// the CAs in `<certs-dir>/<host:port>/*.crt` (Docker's /etc/docker/certs.d layout, client
// certificates as `*.cert` + `*.key`); plain HTTP only as a fallback for registries marked
// insecure (--insecure-registry names or CIDRs, 127.0.0.0/8 and localhost by default).
import { createHash } from "node:crypto";
import { lookup } from "node:dns/promises";
import { readdir, readFile } from "node:fs/promises";
import { BlockList, isIP } from "node:net";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { Agent, type Dispatcher } from "undici";
import { errnoCode, invalid } from "../../../shared/errors.js";
import { defaultDomain } from "../../../shared/reference.js";

export interface RegistryHostsOptions {
  /** Names ("host:port", "host") and CIDRs allowed over plain HTTP, besides the defaults. */
  insecureRegistries: string[];
  /** Docker's certs.d: one folder per "host:port" with ca.crt (and client.cert/client.key). */
  certsDir: string;
}

const defaultInsecureCidrs = ["127.0.0.0/8", "::1/128"];

/** The host an API request for a reference's domain goes to. */
export function apiHostOf(domain: string): string {
  return domain === defaultDomain ? "registry-1.docker.io" : domain;
}

function splitHostPort(host: string): { name: string; port?: string } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (v6) return { name: v6[1], port: v6[2] };
  const i = host.lastIndexOf(":");
  if (i > 0 && !host.slice(0, i).includes(":")) return { name: host.slice(0, i), port: host.slice(i + 1) };
  return { name: host };
}

interface TlsFiles {
  ca: Buffer[];
  cert?: Buffer;
  key?: Buffer;
  /** Digest of everything read, so an agent is rebuilt when the files change. */
  fingerprint: string;
}

export class RegistryHosts {
  private readonly names = new Set<string>();
  private readonly cidrs = new BlockList();
  private readonly cidrList: string[] = [];
  private readonly agents = new Map<string, { fingerprint: string; agent: Agent }>();
  private readonly plain: Agent;

  constructor(readonly options: RegistryHostsOptions) {
    for (const c of defaultInsecureCidrs) this.addCidr(c);
    for (const entry of options.insecureRegistries) {
      const e = entry
        .trim()
        .replace(/^[a-z]+:\/\//, "")
        .replace(/\/+$/, "");
      if (e === "") continue;
      if (e.includes("/")) this.addCidr(e);
      else this.names.add(e.toLowerCase());
    }
    this.plain = new Agent(agentOptions());
  }

  private addCidr(cidr: string): void {
    const [net, bits] = cidr.split("/");
    const family = isIP(net);
    const prefix = Number(bits);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128))
      throw invalid(`invalid insecure registry "${cidr}": use host[:port] or a CIDR such as 10.0.0.0/8`);
    this.cidrs.addSubnet(net, prefix, family === 4 ? "ipv4" : "ipv6");
    this.cidrList.push(cidr);
  }

  /** The CIDRs that allow plain HTTP (for `docker info`'s RegistryConfig). */
  insecureCidrs(): string[] {
    return [...this.cidrList];
  }

  insecureNames(): string[] {
    return [...this.names];
  }

  private inCidrs(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.cidrs.check(address, family === 4 ? "ipv4" : "ipv6");
  }

  /** Whether plain HTTP may be tried for this registry (after HTTPS failed). */
  async isInsecure(host: string): Promise<boolean> {
    const lower = host.toLowerCase();
    const { name } = splitHostPort(lower);
    if (this.names.has(lower) || this.names.has(name)) return true;
    if (name === "localhost") return true;
    if (isIP(name)) return this.inCidrs(name);
    if (lower === defaultDomain || lower === apiHostOf(defaultDomain)) return false;
    // A name is insecure when it resolves into an insecure range, as dockerd decides.
    try {
      const addrs = await lookup(name, { all: true });
      return addrs.some((a) => this.inCidrs(a.address));
    } catch {
      return false;
    }
  }

  /** Where a registry's CA and client certificates are expected. */
  certsFolder(host: string): string {
    return join(this.options.certsDir, host);
  }

  private async tlsFiles(host: string): Promise<TlsFiles> {
    const dir = this.certsFolder(host);
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (e) {
      if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return { ca: [], fingerprint: "" };
      throw e;
    }
    const hash = createHash("sha256");
    const ca: Buffer[] = [];
    let cert: Buffer | undefined;
    let key: Buffer | undefined;
    for (const n of names) {
      if (n.endsWith(".crt")) {
        const b = await readFile(join(dir, n));
        ca.push(b);
        hash.update(n).update(b);
      } else if (n.endsWith(".cert")) {
        const keyName = `${n.slice(0, -".cert".length)}.key`;
        if (!names.includes(keyName))
          throw invalid(`client certificate ${join(dir, n)} has no matching key ${keyName}`);
        cert = await readFile(join(dir, n));
        key = await readFile(join(dir, keyName));
        hash.update(n).update(cert).update(key);
      }
    }
    return { ca, cert, key, fingerprint: hash.digest("hex") };
  }

  /** The dispatcher for a registry and scheme; HTTPS agents carry the registry's CAs. */
  async dispatcher(host: string, scheme: "https" | "http"): Promise<Dispatcher> {
    if (scheme === "http") return this.plain;
    const files = await this.tlsFiles(host);
    const cached = this.agents.get(host);
    if (cached && cached.fingerprint === files.fingerprint) return cached.agent;
    const agent = new Agent(
      agentOptions({
        // Extra CAs add to the system roots, as Docker's certs.d does.
        ...(files.ca.length > 0 ? { ca: [...rootCertificates, ...files.ca.map((b) => b.toString())] } : {}),
        ...(files.cert ? { cert: files.cert, key: files.key } : {}),
      }),
    );
    this.agents.set(host, { fingerprint: files.fingerprint, agent });
    if (cached) void cached.agent.close().catch(() => undefined);
    return agent;
  }

  async close(): Promise<void> {
    await Promise.all([this.plain, ...[...this.agents.values()].map((a) => a.agent)].map((a) => a.close()));
    this.agents.clear();
  }
}

function agentOptions(tls: Record<string, unknown> = {}): Agent.Options {
  return {
    connect: { timeout: 15_000, ...tls },
    keepAliveTimeout: 30_000,
    headersTimeout: 120_000,
    // Idle time between two chunks of a body, not the whole transfer.
    bodyTimeout: 120_000,
  };
}
