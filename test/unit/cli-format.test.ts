import { describe, expect, it } from "vitest";
import { ellipsis, goTimeString, timeAgo } from "../../cli/format/human.js";
import { describeState, dockerSize, goFormatG, humanDuration } from "../../shared/human.js";
import { renderList, tabwrite } from "../../cli/format/table.js";
import {
  containerContext,
  containerHeaders,
  DEFAULT_IMAGES_FORMAT,
  DEFAULT_PS_FORMAT,
  formatPorts,
  imageContext,
  imageHeaders,
  imageRows,
} from "../../cli/format/contexts.js";
import type { ContainerSummary, ImageSummary } from "../../cli/api-types.js";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe("humanDuration (go-units)", () => {
  it.each([
    [0, "Less than a second"],
    [999, "Less than a second"],
    [1 * S, "1 second"],
    [59 * S, "59 seconds"],
    [60 * S, "About a minute"],
    [119 * S, "About a minute"],
    [2 * M, "2 minutes"],
    [59 * M, "59 minutes"],
    [60 * M, "About an hour"],
    [89 * M, "About an hour"],
    [90 * M, "2 hours"],
    [47 * H, "47 hours"],
    [48 * H, "2 days"],
    [13 * D, "13 days"],
    [14 * D, "2 weeks"],
    [59 * D, "8 weeks"],
    [60 * D, "2 months"],
    [729 * D, "24 months"],
    [730 * D, "2 years"],
  ])("%d ms → %s", (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });

  it("timeAgo adds ago and never goes negative", () => {
    expect(timeAgo(100, 100_000 + 3000)).toBe("3 seconds ago");
    expect(timeAgo(200, 100_000)).toBe("Less than a second ago");
  });
});

describe("describeState", () => {
  const now = Date.parse("2024-01-01T00:10:00Z");
  it.each([
    [{ Status: "running", StartedAt: "2024-01-01T00:09:57Z" }, "Up 3 seconds"],
    [{ Status: "running", StartedAt: "2024-01-01T00:08:30Z" }, "About a minute".replace(/^/, "Up ")],
    [{ Status: "paused", StartedAt: "2024-01-01T00:00:00Z" }, "Up 10 minutes (Paused)"],
    [
      {
        Status: "exited",
        ExitCode: 0,
        StartedAt: "2024-01-01T00:00:00Z",
        FinishedAt: "2024-01-01T00:09:58Z",
      },
      "Exited (0) 2 seconds ago",
    ],
    [
      {
        Status: "exited",
        ExitCode: 137,
        StartedAt: "2024-01-01T00:00:00Z",
        FinishedAt: "2023-12-31T23:10:00Z",
      },
      "Exited (137) About an hour ago",
    ],
    [{ Status: "exited", ExitCode: 0, StartedAt: "0001-01-01T00:00:00Z" }, "Created"],
    [{ Status: "created" }, "Created"],
    [
      { Status: "restarting", ExitCode: 1, FinishedAt: "2024-01-01T00:09:55Z" },
      "Restarting (1) 5 seconds ago",
    ],
    [{ Status: "removing" }, "Removal In Progress"],
    [{ Status: "dead" }, "Dead"],
  ])("%j → %s", (state, text) => {
    expect(describeState(state, now)).toBe(text);
  });
});

describe("sizes as go-units prints them", () => {
  it.each([
    [0, 3, "0B"],
    [999, 3, "999B"],
    [1000, 3, "1kB"],
    [1_982_256, 3, "1.98MB"],
    [1_982_256, 4, "1.982MB"],
    [1_000_000, 3, "1MB"],
    [4_200_000, 3, "4.2MB"],
    [123_456_789, 3, "123MB"],
    [999_900, 3, "1e+03kB"],
    [5 * 1000 ** 4, 3, "5TB"],
  ])("%d bytes, precision %d → %s", (bytes, precision, text) => {
    expect(dockerSize(bytes, precision)).toBe(text);
  });
  it("goFormatG matches Go's %g", () => {
    expect(goFormatG(0.0001234, 3)).toBe("0.000123");
    expect(goFormatG(0.00001234, 3)).toBe("1.23e-05");
    expect(goFormatG(1234.4, 4)).toBe("1234");
    expect(goFormatG(12346, 4)).toBe("1.235e+04");
  });
});

describe("small formatting helpers", () => {
  it("ellipsis counts characters, not bytes", () => {
    expect(ellipsis("short", 20)).toBe("short");
    expect(ellipsis("sh -c 'sleep 1000; echo done'", 20)).toBe("sh -c 'sleep 1000; …");
    expect([...ellipsis("ééééééééééééééééééééééé", 20)]).toHaveLength(20);
  });
  it("goTimeString looks like Go's Time.String()", () => {
    expect(goTimeString(Date.parse("2024-05-01T12:34:56Z"))).toMatch(
      /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4} \S+$/,
    );
  });
  it("formatPorts", () => {
    expect(
      formatPorts([
        { PrivatePort: 80, PublicPort: 8080, IP: "0.0.0.0", Type: "tcp" },
        { PrivatePort: 80, PublicPort: 8080, IP: "::", Type: "tcp" },
        { PrivatePort: 53, Type: "udp" },
      ]),
    ).toBe("53/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp");
    expect(formatPorts(null)).toBe("");
  });
});

describe("tabwrite (docker's tabwriter: minwidth 10, padding 3)", () => {
  it("pads every cell but the last", () => {
    expect(tabwrite("A\tBB\tC\nlonger-than-ten\tx\ty\n")).toBe(
      "A                 BB        C\nlonger-than-ten   x         y\n",
    );
  });
  it("counts multi-byte characters as one", () => {
    const out = tabwrite("é…\tx\n");
    expect(out).toBe("é…        x\n");
  });
});

const container: ContainerSummary = {
  Id: "4c01db0b339c8c5b4b1e6f0d4ddf1d23f7b4e2c2a1b0c9d8e7f6a5b4c3d2e1f0",
  Names: ["/web", "/other/alias"],
  Image: "busybox",
  ImageID: "sha256:aaaa",
  Command: "sh -c 'while true; do sleep 1; done'",
  Created: 1_700_000_000,
  Ports: [],
  Labels: { tier: "front", app: "x" },
  State: "running",
  Status: "Up 3 seconds",
};

describe("ps rows", () => {
  const now = 1_700_000_000_000 + 75 * S;
  it("default table looks like docker ps", () => {
    const out = renderList([containerContext(container, { trunc: true, now })], undefined, {
      defaultFormat: DEFAULT_PS_FORMAT,
      headers: containerHeaders,
    });
    const [header, row] = out.split("\n");
    expect(header).toBe(
      "CONTAINER ID   IMAGE     COMMAND                  CREATED              STATUS         PORTS     NAMES",
    );
    expect(row).toBe(
      '4c01db0b339c   busybox   "sh -c \'while true; …"   About a minute ago   Up 3 seconds             web',
    );
  });
  it("an empty list still prints the header", () => {
    expect(renderList([], undefined, { defaultFormat: DEFAULT_PS_FORMAT, headers: containerHeaders })).toBe(
      "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n",
    );
  });
  it("--no-trunc keeps full ids, commands and link names", () => {
    const c = containerContext(container, { trunc: false, now });
    expect(c.ID).toBe(container.Id);
    expect(c.Command).toBe(JSON.stringify(container.Command));
    expect(c.Names).toBe("web,other/alias");
  });
  it("custom formats: plain, table with \\t escapes, Label, json", () => {
    const rows = [containerContext(container, { trunc: true, now })];
    const spec = { defaultFormat: DEFAULT_PS_FORMAT, headers: containerHeaders };
    expect(renderList(rows, '{{.Names}} {{.State}} {{.Label "tier"}}', spec)).toBe("web running front\n");
    expect(renderList(rows, "table {{.ID}}\\t{{.Names}}", spec)).toBe(
      "CONTAINER ID   NAMES\n4c01db0b339c   web\n",
    );
    const json = JSON.parse(renderList(rows, "{{json .}}", spec)) as Record<string, string>;
    expect(Object.keys(json)).toEqual([
      "Command",
      "CreatedAt",
      "ID",
      "Image",
      "Labels",
      "LocalVolumes",
      "Mounts",
      "Names",
      "Networks",
      "Ports",
      "RunningFor",
      "Size",
      "State",
      "Status",
    ]);
    expect(json.Labels).toBe("tier=front,app=x");
    expect(renderList(rows, "json", spec)).toBe(renderList(rows, "{{json .}}", spec));
  });
  it("unknown fields are errors, as in docker", () => {
    const rows = [containerContext(container, { trunc: true, now })];
    expect(() =>
      renderList(rows, "{{.Nope}}", { defaultFormat: DEFAULT_PS_FORMAT, headers: containerHeaders }),
    ).toThrow(/can't evaluate field Nope/);
  });
  it("image ids given as digests are shortened", () => {
    const c = containerContext({ ...container, Image: "sha256:" + "ab".repeat(32) }, { trunc: true, now });
    expect(c.Image).toBe("abababababab");
  });
  it("computes the status when the API leaves it empty", () => {
    expect(
      containerContext({ ...container, Status: "", State: "created" }, { trunc: true, now }).Status,
    ).toBe("Created");
  });
});

const image = (over: Partial<ImageSummary>): ImageSummary => ({
  Id: "sha256:" + "1f".repeat(32),
  ParentId: "",
  RepoTags: ["busybox:latest"],
  RepoDigests: [],
  Created: 1_700_000_000,
  Size: 4_268_000,
  SharedSize: -1,
  Labels: null,
  Containers: -1,
  ...over,
});

describe("images rows", () => {
  const now = 1_700_000_000_000 + 3 * D;
  it("one row per tag; untagged images show <none>", () => {
    const rows = imageRows([
      image({ RepoTags: ["busybox:latest", "localhost:5000/bb:1.36"] }),
      image({ RepoTags: [] }),
      image({ RepoTags: ["<none>:<none>"], RepoDigests: ["alpine@sha256:abc"] }),
    ]);
    expect(rows.map((r) => `${r.repository}|${r.tag}|${r.digest}`)).toEqual([
      "busybox|latest|<none>",
      "localhost:5000/bb|1.36|<none>",
      "<none>|<none>|<none>",
      "alpine|<none>|sha256:abc",
    ]);
  });
  it("default table looks like docker images", () => {
    const rows = imageRows([image({})]).map((r) => imageContext(r, { trunc: true, now }));
    expect(renderList(rows, undefined, { defaultFormat: DEFAULT_IMAGES_FORMAT, headers: imageHeaders })).toBe(
      "REPOSITORY   TAG       IMAGE ID       CREATED      SIZE\nbusybox      latest    1f1f1f1f1f1f   3 days ago   4.27MB\n",
    );
  });
  it("{{.Repository}}:{{.Tag}} and --no-trunc ids", () => {
    const rows = imageRows([image({})]).map((r) => imageContext(r, { trunc: false, now }));
    expect(
      renderList(rows, "{{.Repository}}:{{.Tag}} {{.ID}}", {
        defaultFormat: DEFAULT_IMAGES_FORMAT,
        headers: imageHeaders,
      }),
    ).toBe(`busybox:latest sha256:${"1f".repeat(32)}\n`);
  });
});
