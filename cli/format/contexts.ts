// Per-row template contexts for `ps` and `images`: the fields docker's formatter exposes,
// as strings computed the way docker computes them. Keys are in alphabetical order so that
// `{{json .}}` prints what docker prints.

import type { ContainerSummary, ImageSummary, PortSummary, Volume } from "../api-types.js";
import { STRICT } from "./template.js";
import { ellipsis, goTimeString, timeAgo } from "./human.js";
import { describeState, dockerSize } from "../../shared/human.js";

export const containerHeaders: Record<string, string> = {
  ID: "CONTAINER ID",
  Image: "IMAGE",
  Command: "COMMAND",
  CreatedAt: "CREATED AT",
  RunningFor: "CREATED",
  Ports: "PORTS",
  State: "STATE",
  Status: "STATUS",
  Size: "SIZE",
  Names: "NAMES",
  Labels: "LABELS",
  Label: "LABEL",
  Mounts: "MOUNTS",
  LocalVolumes: "LOCAL VOLUMES",
  Networks: "NETWORKS",
};

export const DEFAULT_PS_FORMAT =
  "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

export const imageHeaders: Record<string, string> = {
  ID: "IMAGE ID",
  Repository: "REPOSITORY",
  Tag: "TAG",
  Digest: "DIGEST",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  Size: "SIZE",
  Containers: "CONTAINERS",
  SharedSize: "SHARED SIZE",
  UniqueSize: "UNIQUE SIZE",
  VirtualSize: "VIRTUAL SIZE",
};

export const DEFAULT_IMAGES_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

function shortId(id: string): string {
  return id.replace(/^sha256:/, "").slice(0, 12);
}

function formatPort(p: PortSummary): string {
  if (p.PublicPort === undefined || p.PublicPort === 0) return `${p.PrivatePort}/${p.Type}`;
  const ip = p.IP ?? "";
  const host = ip.includes(":") ? `[${ip}]` : ip;
  return `${host}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`;
}

export function formatPorts(ports: PortSummary[] | null | undefined): string {
  if (!ports) return "";
  const sorted = [...ports].sort(
    (a, b) => a.PrivatePort - b.PrivatePort || (a.PublicPort ?? 0) - (b.PublicPort ?? 0),
  );
  return [...new Set(sorted.map(formatPort))].join(", ");
}

function labelList(labels: Record<string, string> | null | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

interface RowOptions {
  trunc: boolean;
  now?: number;
}

export function containerContext(c: ContainerSummary, opts: RowOptions): Record<string | symbol, unknown> {
  const now = opts.now ?? Date.now();
  const names = (c.Names ?? []).map((n) => n.replace(/^\//, ""));
  // Truncated output drops link aliases ("other/alias"), as docker does.
  const shownNames = opts.trunc ? names.filter((n) => !n.includes("/")) : names;
  let image = c.Image || "<no image>";
  if (opts.trunc) {
    if (/^(sha256:)?[0-9a-f]{64}$/.test(image)) image = shortId(image);
    else image = image.replace(/@sha256:[0-9a-f]{64}$/, "");
  }
  const size =
    c.SizeRw !== undefined ? `${dockerSize(c.SizeRw)} (virtual ${dockerSize(c.SizeRootFs ?? 0)})` : "0B";
  const mounts = (c.Mounts ?? []).map((m) =>
    m.Name ? (opts.trunc ? ellipsis(m.Name, 15) : m.Name) : (m.Source ?? ""),
  );
  return {
    [STRICT]: "ContainerContext",
    Command: JSON.stringify(opts.trunc ? ellipsis(c.Command ?? "", 20) : (c.Command ?? "")),
    CreatedAt: goTimeString(c.Created * 1000),
    ID: opts.trunc ? shortId(c.Id) : c.Id,
    Image: image,
    Label: (name: unknown) => (c.Labels ?? {})[String(name)] ?? "",
    Labels: labelList(c.Labels),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Name).length),
    Mounts: mounts.join(","),
    Names: shownNames.join(","),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {})
      .sort()
      .join(","),
    Ports: formatPorts(c.Ports),
    RunningFor: timeAgo(c.Created, now),
    Size: size,
    State: c.State,
    Status: c.Status || describeState({ Status: c.State }, now),
  };
}

interface ImageRow {
  image: ImageSummary;
  repository: string;
  tag: string;
  digest: string;
}

/** One row per tag, like `docker images`; untagged images show <none>. */
export function imageRows(images: ImageSummary[]): ImageRow[] {
  const rows: ImageRow[] = [];
  for (const image of images) {
    const tags = (image.RepoTags ?? []).filter((t) => t !== "<none>:<none>");
    const digests = (image.RepoDigests ?? []).filter((d) => d !== "<none>@<none>");
    const digestOf = (repo: string): string =>
      digests.find((d) => d.startsWith(`${repo}@`))?.slice(repo.length + 1) ?? "<none>";
    if (tags.length === 0) {
      if (digests.length > 0) {
        for (const d of digests) {
          const at = d.lastIndexOf("@");
          rows.push({ image, repository: d.slice(0, at), tag: "<none>", digest: d.slice(at + 1) });
        }
      } else {
        rows.push({ image, repository: "<none>", tag: "<none>", digest: "<none>" });
      }
      continue;
    }
    for (const t of tags) {
      const colon = t.lastIndexOf(":");
      const slash = t.lastIndexOf("/");
      const [repo, tag] = colon > slash ? [t.slice(0, colon), t.slice(colon + 1)] : [t, "<none>"];
      rows.push({ image, repository: repo, tag, digest: digestOf(repo) });
    }
  }
  return rows;
}

export function imageContext(row: ImageRow, opts: RowOptions): Record<string | symbol, unknown> {
  const i = row.image;
  const now = opts.now ?? Date.now();
  const unique = i.SharedSize >= 0 ? i.Size - i.SharedSize : -1;
  return {
    [STRICT]: "ImageContext",
    Containers: i.Containers >= 0 ? String(i.Containers) : "N/A",
    CreatedAt: goTimeString(i.Created * 1000),
    CreatedSince: timeAgo(i.Created, now),
    Digest: row.digest,
    ID: opts.trunc ? shortId(i.Id) : i.Id,
    Repository: row.repository,
    SharedSize: i.SharedSize >= 0 ? dockerSize(i.SharedSize) : "N/A",
    Size: dockerSize(i.Size),
    Tag: row.tag,
    UniqueSize: unique >= 0 ? dockerSize(unique) : "N/A",
    VirtualSize: dockerSize(i.VirtualSize ?? i.Size, 4),
  };
}

export const volumeHeaders: Record<string, string> = {
  Name: "VOLUME NAME",
  Driver: "DRIVER",
  Scope: "SCOPE",
  Mountpoint: "MOUNTPOINT",
  Labels: "LABELS",
  Label: "LABEL",
  Links: "LINKS",
  Size: "SIZE",
};

export const DEFAULT_VOLUMES_FORMAT = "table {{.Driver}}\t{{.Name}}";

export function volumeContext(v: Volume): Record<string | symbol, unknown> {
  return {
    [STRICT]: "VolumeContext",
    Driver: v.Driver,
    Label: (name: unknown) => (v.Labels ?? {})[String(name)] ?? "",
    Labels: labelList(v.Labels),
    Links: v.UsageData ? String(v.UsageData.RefCount) : "N/A",
    Mountpoint: v.Mountpoint,
    Name: v.Name,
    Scope: v.Scope,
    Size: v.UsageData ? dockerSize(v.UsageData.Size) : "N/A",
  };
}
