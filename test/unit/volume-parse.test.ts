// -v, --mount and --tmpfs: the daemon's checks (planMounts) and the CLI's mapping onto the API.
import { describe, expect, it } from "vitest";
import { parseBind, parseMountRequest, planMounts } from "../../agent/engine/container/mounts.js";
import type { ContainerConfig } from "../../agent/engine/container/types.js";
import type { HostConfig } from "../../shared/engine-api.js";
import { parseMountFlag, parseTmpfsFlags, parseVolumeFlags, storageFields } from "../../cli/mount-options.js";
import { buildCreateBody } from "../../cli/options.js";
import { UsageError } from "../../cli/errors.js";
import { ShoalError } from "../../shared/errors.js";

function badRequest(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ShoalError);
  expect((caught as ShoalError).status).toBe(400);
  expect((caught as ShoalError).message).toMatch(message);
}

const plan = (host: Partial<HostConfig>, volumes: Record<string, object> | null = null) =>
  planMounts({ Volumes: volumes } as ContainerConfig, host as HostConfig);

describe("-v (HostConfig.Binds)", () => {
  it("tells named volumes, binds and anonymous volumes apart", () => {
    expect(parseBind("data:/var/lib/data")).toMatchObject({
      Type: "volume",
      Source: "data",
      Destination: "/var/lib/data",
      RW: true,
      Mode: "z",
      CopyData: true,
    });
    expect(parseBind("/srv/www:/usr/share/www:ro")).toMatchObject({
      Type: "bind",
      Source: "/srv/www",
      Destination: "/usr/share/www",
      RW: false,
      Mode: "ro",
      Propagation: "rprivate",
      CreateSource: true,
    });
    expect(parseBind("/cache")).toMatchObject({
      Type: "volume",
      Source: "",
      Destination: "/cache",
      Mode: "",
    });
    expect(parseBind("/a/b/:/c/d/")).toMatchObject({ Source: "/a/b", Destination: "/c/d" });
  });

  it("reads combined modes: ro with nocopy, propagation on binds", () => {
    expect(parseBind("data:/d:ro,nocopy")).toMatchObject({ RW: false, CopyData: false, Mode: "ro,nocopy" });
    expect(parseBind("/host:/d:rslave")).toMatchObject({ RW: true, Propagation: "rslave" });
    expect(parseBind("/host:/d:rw,z")).toMatchObject({ RW: true, Mode: "rw,z" });
  });

  it("refuses what Docker refuses, saying what to fix", () => {
    badRequest(() => parseBind("data:relative"), /mount path must be absolute/);
    badRequest(() => parseBind("relative"), /invalid mount path: 'relative' mount path must be absolute/);
    badRequest(() => parseBind("data:/d:rw,ro"), /invalid mode: rw,ro/);
    badRequest(() => parseBind("data:/d:bogus"), /invalid mode: bogus.*use rw or ro/);
    badRequest(() => parseBind("data:/d:rshared"), /propagation \(rshared\) applies to bind mounts/);
    badRequest(() => parseBind("/host:/d:nocopy"), /nocopy applies to volumes/);
    badRequest(() => parseBind("/d:ro"), /invalid volume specification: '\/d:ro'/);
    badRequest(() => parseBind("a:b:c:d"), /invalid volume specification/);
    badRequest(() => parseBind("x:/d"), /"x" includes invalid characters for a local volume name/);
    badRequest(() => parseBind("./dir:/d"), /If you intended to pass a host directory, use absolute path/);
    badRequest(() => parseBind("/host:/"), /destination can't be '\/'/);
  });
});

describe("--mount (HostConfig.Mounts)", () => {
  it("checks each type's fields as dockerd does", () => {
    expect(parseMountRequest({ Type: "bind", Source: "/srv", Target: "/srv", ReadOnly: true })).toMatchObject(
      {
        Type: "bind",
        RW: false,
        Mode: "",
        Propagation: "rprivate",
        CreateSource: false,
      },
    );
    expect(
      parseMountRequest({ Type: "volume", Source: "data", Target: "/d", VolumeOptions: { NoCopy: true } }),
    ).toMatchObject({ Type: "volume", Source: "data", Mode: "z", CopyData: false });
    expect(parseMountRequest({ Type: "volume", Target: "/anon" })).toMatchObject({ Source: "" });
    expect(
      parseMountRequest({ Type: "tmpfs", Target: "/t", TmpfsOptions: { SizeBytes: 1 << 20, Mode: 0o700 } }),
    ).toMatchObject({ Type: "tmpfs", Source: "", RW: true });
    badRequest(
      () => parseMountRequest({ Type: "bind", Target: "/x" }),
      /invalid mount config for type "bind": field Source must not be empty/,
    );
    badRequest(
      () => parseMountRequest({ Type: "bind", Source: "rel", Target: "/x" }),
      /'rel' mount path must be absolute/,
    );
    badRequest(
      () => parseMountRequest({ Type: "tmpfs", Source: "/x", Target: "/x" }),
      /field Source must not be specified/,
    );
    badRequest(
      () => parseMountRequest({ Type: "volume", Source: "v1", Target: "/x", BindOptions: {} }),
      /field BindOptions must not be specified/,
    );
    badRequest(
      () =>
        parseMountRequest({ Type: "bind", Source: "/a", Target: "/x", BindOptions: { Propagation: "odd" } }),
      /invalid propagation mode: odd/,
    );
    badRequest(() => parseMountRequest({ Type: "npipe" as "bind", Target: "/x" }), /mount type unknown/);
    badRequest(() => parseMountRequest({ Type: "volume", Target: "" }), /field Target must not be empty/);
  });
});

describe("planMounts", () => {
  it("adds an anonymous volume for each image VOLUME nothing else covers, sorted by path", () => {
    const planned = plan(
      { Binds: ["data:/data"], Tmpfs: { "/run": "" } },
      { "/data": {}, "/logs": {}, "/run": {} },
    );
    expect(planned.map((m) => [m.Type, m.Source, m.Destination])).toEqual([
      ["volume", "data", "/data"],
      ["volume", "", "/logs"],
    ]);
  });

  it("refuses one path mounted twice, whichever flags", () => {
    badRequest(() => plan({ Binds: ["a1:/d", "/host:/d/"] }), /Duplicate mount point: \/d/);
    badRequest(
      () => plan({ Binds: ["a1:/d"], Mounts: [{ Type: "tmpfs", Target: "/d" }] }),
      /Duplicate mount point: \/d/,
    );
    badRequest(() => plan({ Binds: ["a1:/d"], Tmpfs: { "/d": "" } }), /Duplicate mount point: \/d/);
  });

  it("checks --tmpfs paths and options", () => {
    expect(plan({ Tmpfs: { "/t": "size=64m,mode=1777,exec" } })).toEqual([]);
    badRequest(() => plan({ Tmpfs: { t: "" } }), /'t' mount path must be absolute/);
    badRequest(() => plan({ Tmpfs: { "/t": "size=lots" } }), /invalid value in tmpfs option "size=lots"/);
    badRequest(() => plan({ Tmpfs: { "/t": "bogus" } }), /invalid tmpfs option "bogus"/);
  });

  it("refuses request JSON of the wrong shape", () => {
    badRequest(() => plan({ Binds: "data:/d" as unknown as string[] }), /invalid HostConfig.Binds/);
    badRequest(() => plan({ Mounts: ["x"] as unknown as [] }), /invalid HostConfig.Mounts/);
    badRequest(
      () => plan({ Tmpfs: { "/t": 1 } as unknown as Record<string, string> }),
      /invalid HostConfig.Tmpfs/,
    );
  });

  it("refuses relative image volume paths", () => {
    badRequest(() => plan({}, { data: {} }), /'data' mount path must be absolute/);
  });
});

describe("CLI: -v, --mount, --tmpfs", () => {
  it("-v with a colon is a bind or named volume, without one an anonymous volume; ./ is made absolute", () => {
    expect(parseVolumeFlags(["data:/d", "/cache", "./here:/h:ro", "/abs:/a"], "/work")).toEqual({
      binds: ["data:/d", "/work/here:/h:ro", "/abs:/a"],
      volumes: { "/cache": {} },
    });
  });

  it("--mount reads docker's CSV keys", () => {
    expect(parseMountFlag("type=bind,source=/srv,target=/srv,readonly,bind-propagation=rslave")).toEqual({
      Type: "bind",
      Source: "/srv",
      Target: "/srv",
      ReadOnly: true,
      BindOptions: { Propagation: "rslave" },
    });
    expect(parseMountFlag("src=data,dst=/d,volume-nocopy,volume-label=a=b")).toEqual({
      Type: "volume",
      Source: "data",
      Target: "/d",
      VolumeOptions: { NoCopy: true, Labels: { a: "b" } },
    });
    expect(parseMountFlag("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770")).toEqual({
      Type: "tmpfs",
      Target: "/t",
      TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1770 },
    });
    expect(parseMountFlag('type=bind,"source=/a,b",target=/x').Source).toBe("/a,b");
    expect(parseMountFlag("type=bind,src=./rel,target=/x,ro=false", "/w")).toMatchObject({
      Source: "/w/rel",
      ReadOnly: false,
    });
    expect(() => parseMountFlag("type=bind,source=/a")).toThrow(/target is required/);
    expect(() => parseMountFlag("type=bind,src=/a,dst=/b,color=red")).toThrow(/unexpected key 'color'/);
    expect(() => parseMountFlag("type=bind,src=/a,dst=/b,tmpfs-size=1m")).toThrow(
      /cannot mix 'tmpfs-\*' options with mount type 'bind'/,
    );
    expect(() => parseMountFlag("type=tmpfs,dst=/b,tmpfs-size=big")).toThrow(UsageError);
    expect(() => parseMountFlag("type=tmpfs,dst=/b,nonsense")).toThrow(/must be a key=value pair/);
  });

  it("--tmpfs splits at the first colon", () => {
    expect(parseTmpfsFlags(["/run", "/tmp:size=1m,mode=1777"])).toEqual({
      "/run": "",
      "/tmp": "size=1m,mode=1777",
    });
  });

  it("the create body carries them where the docker CLI puts them", () => {
    const body = buildCreateBody({
      image: "busybox",
      command: [],
      flags: { volume: ["data:/d", "/anon"], mount: ["type=tmpfs,dst=/t"], tmpfs: ["/run:size=1m"] },
      lookupEnv: () => undefined,
    });
    expect(body.Volumes).toEqual({ "/anon": {} });
    expect(body.HostConfig.Binds).toEqual(["data:/d"]);
    expect(body.HostConfig.Mounts).toEqual([{ Type: "tmpfs", Target: "/t" }]);
    expect(body.HostConfig.Tmpfs).toEqual({ "/run": "size=1m" });
    const none = storageFields({});
    expect(none).toEqual({ Binds: null, Volumes: null, Mounts: null, Tmpfs: null });
  });
});
