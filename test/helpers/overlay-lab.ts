// What the overlay e2e tests share: a one-manager, two-worker cluster on the lab with busybox
// loaded everywhere, the docker CLI against its hosts, one-shot probe tasks, and reading what
// busybox's nslookup and the web tasks printed.
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { expect } from "vitest";
import { Lab } from "../../deploy/lab/lab.js";
import { formCluster } from "../../deploy/lab/cluster.js";
import { buildBusyboxArchive } from "./busybox.js";
import { docker, type CliResult } from "./cli.js";
import { until } from "./cluster.js";
import { api, shoaldPath } from "./daemon.js";

/** m1 (manager), w1, w2, in a cluster, with busybox:latest on every host. */
export async function overlayLab(prefix: string): Promise<Lab> {
  const lab = await Lab.up({
    name: `${prefix}${randomBytes(3).toString("hex")}`,
    managers: 1,
    workers: 2,
    root: await mkdtemp("/tmp/shoal-lab-"),
    octet: 100 + Math.floor(Math.random() * 100),
    shoald: shoaldPath,
  });
  try {
    await formCluster(lab);
    const archive = await buildBusyboxArchive();
    await Promise.all(lab.state.hosts.map((h) => api(h.socket, "POST", "/images/load", archive)));
  } catch (e) {
    await lab.down().catch(() => undefined);
    throw e;
  }
  return lab;
}

/** The docker CLI against a lab's hosts (the lab is made in beforeAll, hence the getter). */
export class LabDocker {
  private probes = 0;

  constructor(private readonly lab: () => Lab) {}

  sock(host: string): string {
    return this.lab().host(host).socket;
  }

  dk(host: string, args: string[]): Promise<CliResult> {
    return docker(this.sock(host), args);
  }

  /** Its stdout; the test fails with its stderr unless it exits 0. */
  async ok(host: string, args: string[]): Promise<string> {
    const r = await this.dk(host, args);
    expect(r.code, `docker ${args.join(" ")} on ${host}: ${r.stderr}`).toBe(0);
    return r.stdout;
  }

  /**
   * Run `script` once in a task on `host` attached to `network` (restart condition none) and give
   * back what it printed, read through `service logs` on m1.
   */
  async probe(host: string, network: string, script: string): Promise<string> {
    const name = `probe${++this.probes}`;
    await this.ok("m1", [
      "service",
      "create",
      "--detach",
      "--name",
      name,
      "--network",
      network,
      "--constraint",
      `node.hostname==${host}`,
      "--restart-condition",
      "none",
      "busybox",
      "sh",
      "-c",
      `${script}; echo PROBE-DONE`,
    ]);
    const out = await until(
      `${name} done`,
      async () => {
        const r = await this.dk("m1", ["service", "logs", "--raw", name]);
        return r.stdout.includes("PROBE-DONE") ? r.stdout : undefined;
      },
      60_000,
    );
    await this.dk("m1", ["service", "rm", name]);
    return out;
  }
}

/** Shell that prints what busybox nslookup says of `name`, marked for `resolved`. */
export const lookup = (name: string): string =>
  `echo "NSLOOKUP ${name}"; nslookup ${name}; echo NSLOOKUP-END`;

/** The A records busybox nslookup printed for `name` (from a `lookup`), sorted. */
export function resolved(out: string, name: string): string[] {
  const block = out.split(`NSLOOKUP ${name}`)[1]?.split("NSLOOKUP-END")[0] ?? "";
  const answers = block.split(/\n\s*\n/).filter((b) => /^Name:/m.test(b));
  return answers.flatMap((b) => [...b.matchAll(/^Address:\s*([\d.]+)\s*$/gm)].map((m) => m[1])).sort();
}

/** Lines that are container hostnames (what the web tasks serve). */
export const servedBy = (out: string): Set<string> =>
  new Set(
    out
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^[0-9a-f]{12}$/.test(l)),
  );
