// Options shoal does not implement are refused, naming the flag, instead of being ignored.
// The base request is what docker 28.2 sends for a plain `docker create busybox`.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { refuseUnsupported } from "../../agent/engine/container/unsupported.js";

type Body = Record<string, unknown> & {
  HostConfig: Record<string, unknown>;
  NetworkingConfig: { EndpointsConfig: Record<string, Record<string, unknown>> };
};

const base = (): Body =>
  JSON.parse(readFileSync(join(import.meta.dirname, "../fixtures/docker-cli-create.json"), "utf8")) as Body;

function check(body: Body, cgroupV2 = true): void {
  const { HostConfig, NetworkingConfig, ...config } = body;
  refuseUnsupported(config, HostConfig, NetworkingConfig, { cgroupV2 });
}

const withHost = (fields: Record<string, unknown>): Body => {
  const b = base();
  Object.assign(b.HostConfig, fields);
  return b;
};

describe("unsupported create options", () => {
  it("accepts what the docker CLI sends when no flag is given", () => {
    expect(() => check(base())).not.toThrow();
    expect(() => check(base(), false)).not.toThrow();
  });

  it.each([
    [{ SecurityOpt: ["apparmor=docker-default"] }, "--security-opt apparmor=docker-default"],
    [{ SecurityOpt: ["writable-cgroups=true"] }, "--security-opt"],
    [{ SecurityOpt: ["label=type:svirt_apache_t"] }, "--security-opt label=type:svirt_apache_t"],
    [{ DeviceRequests: [{ Driver: "", Count: -1, Capabilities: [["gpu"]] }] }, "--gpus"],
    [{ CgroupnsMode: "host" }, "--cgroupns"],
    [{ MemorySwappiness: 0 }, "--memory-swappiness"],
    [{ CpusetCpus: "0" }, "--cpuset-cpus"],
    [{ LogConfig: { Type: "syslog", Config: {} } }, "--log-driver"],
    [{ LogConfig: { Type: "", Config: { "max-size": "10m" } } }, "--log-opt"],
    [{ Runtime: "runsc" }, "--runtime"],
  ])("refuses %j naming %s", (fields, flag) => {
    expect(() => check(withHost(fields))).toThrow(flag);
    try {
      check(withHost(fields));
    } catch (e) {
      expect((e as { kind?: string }).kind).toBe("invalid");
    }
  });

  it("accepts values that name what shoal already does", () => {
    for (const fields of [
      { SecurityOpt: ["no-new-privileges=false"] },
      // Implemented (docs/engine-hostconfig.md): checked and applied by the spec builder.
      { SecurityOpt: ["no-new-privileges", "seccomp=unconfined"] },
      { PidMode: "host", IpcMode: "host", UTSMode: "host", OomScoreAdj: -1000, GroupAdd: ["disk"] },
      { SecurityOpt: ["label=disable", "apparmor=unconfined"] },
      { IpcMode: "private" },
      { CgroupnsMode: "private" },
      { UsernsMode: "host" },
      { LogConfig: { Type: "json-file", Config: {} } },
      { MemorySwappiness: -1 },
    ]) {
      expect(() => check(withHost(fields)), JSON.stringify(fields)).not.toThrow();
    }
    const b = base();
    b.Healthcheck = { Test: ["NONE"] };
    expect(() => check(b)).not.toThrow();
  });

  it("refuses a cgroup namespace mode the host would not give", () => {
    expect(() => check(withHost({ CgroupnsMode: "private" }), false)).toThrow("--cgroupns");
  });

  it("refuses config and endpoint fields shoal would drop", () => {
    // Health checks work now (health-config.ts): a create with one is not refused here.
    const health = base();
    health.Healthcheck = { Test: ["CMD", "true"], Interval: 1e9 };
    expect(() => check(health)).not.toThrow();
    const ip6 = base();
    ip6.NetworkingConfig.EndpointsConfig.default.IPAMConfig = { IPv6Address: "fd00::5" };
    expect(() => check(ip6)).toThrow("--ip6");
  });
});
