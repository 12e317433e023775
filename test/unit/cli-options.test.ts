import { describe, expect, it } from "vitest";
import {
  buildCreateBody,
  parseEnvFile,
  parseEnvFlag,
  parseLabelFile,
  parseLabels,
  parseRestart,
  parseUlimit,
  type RunFlags,
} from "../../cli/options.js";
import { UsageError } from "../../cli/errors.js";

const noEnv = (): undefined => undefined;
const body = (
  flags: RunFlags,
  command: string[] = [],
  extra: Partial<Parameters<typeof buildCreateBody>[0]> = {},
) => buildCreateBody({ image: "busybox", command, flags, lookupEnv: noEnv, ...extra });

describe("buildCreateBody", () => {
  it("defaults match what the docker CLI sends", () => {
    const b = body({}, []);
    expect(b).toMatchObject({
      Image: "busybox",
      Cmd: null,
      Entrypoint: null,
      Env: [],
      Labels: {},
      Hostname: "",
      User: "",
      WorkingDir: "",
      Tty: false,
      OpenStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: {
        AutoRemove: false,
        ReadonlyRootfs: false,
        Privileged: false,
        CapAdd: null,
        CapDrop: null,
        Memory: 0,
        MemorySwap: 0,
        NanoCpus: 0,
        CpuShares: 0,
        PidsLimit: null,
        Init: null,
        Ulimits: null,
        RestartPolicy: { Name: "no", MaximumRetryCount: 0 },
        NetworkMode: "default",
      },
    });
    expect(b).not.toHaveProperty("StopSignal");
    expect(b).not.toHaveProperty("StopTimeout");
  });

  it("maps every flag", () => {
    const b = body(
      {
        rm: true,
        env: ["A=1", "B"],
        workdir: "/srv",
        user: "1000:1000",
        entrypoint: "/bin/sh",
        hostname: "web",
        label: ["a=b", "flag"],
        readOnly: true,
        capAdd: ["NET_ADMIN"],
        capDrop: ["ALL"],
        privileged: true,
        memory: "512m",
        memorySwap: "1g",
        cpus: "1.5",
        cpuShares: "512",
        pidsLimit: "100",
        init: true,
        stopSignal: "SIGUSR1",
        stopTimeout: "30",
        ulimit: ["nofile=1024:2048", "nproc=64"],
        network: ["none"],
      },
      ["-c", "echo hi"],
      { lookupEnv: (k) => (k === "B" ? "from-env" : undefined) },
    );
    expect(b.Cmd).toEqual(["-c", "echo hi"]);
    expect(b.Entrypoint).toEqual(["/bin/sh"]);
    expect(b.Env).toEqual(["A=1", "B=from-env"]);
    expect(b.WorkingDir).toBe("/srv");
    expect(b.User).toBe("1000:1000");
    expect(b.Hostname).toBe("web");
    expect(b.Labels).toEqual({ a: "b", flag: "" });
    expect(b.StopSignal).toBe("SIGUSR1");
    expect(b.StopTimeout).toBe(30);
    expect(b.HostConfig).toEqual({
      AutoRemove: true,
      ReadonlyRootfs: true,
      Privileged: true,
      CapAdd: ["NET_ADMIN"],
      CapDrop: ["ALL"],
      Memory: 512 * 1024 ** 2,
      MemorySwap: 1024 ** 3,
      NanoCpus: 1.5e9,
      CpuShares: 512,
      PidsLimit: 100,
      LogConfig: { Type: "", Config: {} },
      Init: true,
      RestartPolicy: { Name: "no", MaximumRetryCount: 0 },
      Ulimits: [
        { Name: "nofile", Soft: 1024, Hard: 2048 },
        { Name: "nproc", Soft: 64, Hard: 64 },
      ],
      NetworkMode: "none",
      PortBindings: {},
      PublishAllPorts: false,
      Dns: null,
      DnsSearch: null,
      DnsOptions: null,
      ExtraHosts: null,
    });
  });

  it("detached containers do not attach", () => {
    const b = body({ detach: true });
    expect(b.AttachStdout).toBe(false);
    expect(b.AttachStderr).toBe(false);
  });

  it("--entrypoint '' clears the image's entrypoint", () => {
    expect(body({ entrypoint: "" }).Entrypoint).toEqual([""]);
  });

  it("splits a dotted hostname into hostname and domain name", () => {
    const b = body({ hostname: "web.example.com" });
    expect(b.Hostname).toBe("web");
    expect(b.Domainname).toBe("example.com");
  });

  it("--memory-swap -1 means unlimited", () => {
    expect(body({ memory: "64m", memorySwap: "-1" }).HostConfig.MemorySwap).toBe(-1);
  });

  it("--net is the old spelling of --network", () => {
    expect(body({ net: ["host"] }).HostConfig.NetworkMode).toBe("host");
  });

  it("env files come first, then -e, in order", () => {
    const b = body({ env: ["C=3", "A=override"] }, [], {
      envFiles: [{ path: "f1", text: "A=1\n# comment\nB=2\n" }],
    });
    expect(b.Env).toEqual(["A=1", "B=2", "C=3", "A=override"]);
  });

  it("label files merge under -l", () => {
    const b = body({ label: ["a=flag"] }, [], { labelFiles: [{ path: "l", text: "a=file\nb=2\n" }] });
    expect(b.Labels).toEqual({ a: "flag", b: "2" });
  });

  it("restart policies", () => {
    expect(body({ restart: "on-failure:3" }).HostConfig.RestartPolicy).toEqual({
      Name: "on-failure",
      MaximumRetryCount: 3,
    });
    expect(body({ restart: "unless-stopped" }).HostConfig.RestartPolicy.Name).toBe("unless-stopped");
  });

  it.each<[RunFlags, RegExp]>([
    [{ memory: "12q" }, /--memory/],
    [{ memorySwap: "lots" }, /--memory-swap/],
    [{ cpus: "-1" }, /--cpus/],
    [{ cpus: "abc" }, /--cpus/],
    [{ cpuShares: "1.5" }, /--cpu-shares/],
    [{ pidsLimit: "x" }, /--pids-limit/],
    [{ stopTimeout: "10s" }, /--stop-timeout/],
    [{ ulimit: ["bogus=1"] }, /--ulimit/],
    [{ restart: "sometimes" }, /--restart/],
    [{ rm: true, restart: "always" }, /--restart and --rm/],
    [{ env: ["=x"] }, /invalid environment variable/],
    [{ label: ["=x"] }, /label/],
  ])("rejects %j with a usage error naming the flag", (flags, re) => {
    let error: unknown;
    try {
      body(flags);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(125);
    expect((error as Error).message).toMatch(re);
  });

  it("--rm with --restart no is fine", () => {
    expect(body({ rm: true, restart: "no" }).HostConfig.AutoRemove).toBe(true);
  });
});

describe("parseEnvFile", () => {
  it("follows docker's rules", () => {
    const text =
      '\uFEFFA=1\n  B = spaced value \n# comment\n\n   # indented comment\nC=\nD=x=y\nFROM_ENV\nMISSING\r\nE="quoted"\n';
    expect(() => parseEnvFile(text, "f", noEnv)).toThrow(/contains whitespaces/);
    const ok =
      '\uFEFFA=1\n  B= spaced value \n# comment\n\n   # indented\nC=\nD=x=y\nFROM_ENV\nMISSING\r\nE="quoted"\n';
    expect(parseEnvFile(ok, "f", (k) => (k === "FROM_ENV" ? "v" : undefined))).toEqual([
      "A=1",
      "B= spaced value ",
      "C=",
      "D=x=y",
      "FROM_ENV=v",
      'E="quoted"',
    ]);
  });
  it("names the file and line of an empty variable name", () => {
    expect(() => parseEnvFile("A=1\n=2\n", "vars.env", noEnv)).toThrow(/vars.env line 2/);
  });
});

describe("small parsers", () => {
  it("parseEnvFlag", () => {
    expect(parseEnvFlag("A=b=c", noEnv)).toBe("A=b=c");
    expect(parseEnvFlag("HOME", (k) => (k === "HOME" ? "/root" : undefined))).toBe("HOME=/root");
    expect(parseEnvFlag("UNSET", noEnv)).toBe("UNSET");
  });
  it("parseLabels: later wins, bare keys are empty", () => {
    expect(parseLabels(["a=1", "b", "a=2", "c=x=y"])).toEqual({ a: "2", b: "", c: "x=y" });
  });
  it("parseLabelFile skips bare keys", () => {
    expect(parseLabelFile("a=1\nbare\n# c\n", "l")).toEqual(["a=1"]);
  });
  it("parseUlimit", () => {
    expect(parseUlimit("nofile=10")).toEqual({ Name: "nofile", Soft: 10, Hard: 10 });
    expect(parseUlimit("core=-1:-1")).toEqual({ Name: "core", Soft: -1, Hard: -1 });
    expect(() => parseUlimit("nofile=20:10")).toThrow(/soft limit/);
    expect(() => parseUlimit("nofile")).toThrow(/name=soft/);
  });
  it("parseRestart", () => {
    expect(parseRestart("always")).toEqual({ Name: "always", MaximumRetryCount: 0 });
    expect(() => parseRestart("always:3")).toThrow(/on-failure/);
    expect(() => parseRestart("on-failure:-1")).toThrow(/negative|whole number/);
  });
});
