// --link <name>[:<alias>], Docker's legacy links. On the default bridge (no DNS there) the
// linking container gets an /etc/hosts line for each linked container and its link variables
// (ALIAS_PORT_80_TCP_ADDR, ALIAS_ENV_X, ...), as dockerd writes them at start. On a
// user-defined network the alias is a DNS name only this container resolves (dns/records.ts).
import { readFile, writeFile } from "node:fs/promises";
import { conflict, invalid } from "../../../shared/errors.js";
import type { HostConfig } from "../../../shared/engine-api.js";
import type { Spec } from "../runtime/oci-types.js";
import { parseLinks } from "../network/link-aliases.js";
import { containerPaths, type EngineContext } from "./context.js";
import { isUp } from "./filters.js";
import type { ContainerRecord } from "./types.js";

/** At create: every linked container exists and has a network of its own (dockerd's registerLinks). */
export function checkLinks(ctx: EngineContext, hc: HostConfig): void {
  const links = parseLinks(hc.Links);
  if (links.length === 0) return;
  if (hc.NetworkMode === "host")
    throw invalid("conflicting options: host type networking can't be used with links");
  if (hc.NetworkMode.startsWith("container:"))
    throw invalid("conflicting options: container type network can't be used with links");
  for (const l of links) {
    const child = ctx.store.find(l.name);
    if (!child) throw invalid(`could not get container for ${l.name}: No such container: ${l.name}`);
    if (child.HostConfig.NetworkMode === "host")
      throw invalid(`--link ${l.name}: conflicting options: host type networking can't be used with links`);
  }
}

const onDefaultBridge = (rec: ContainerRecord): boolean =>
  rec.HostConfig.NetworkMode === "default" || rec.HostConfig.NetworkMode === "bridge";

/** dockerd's link variables (daemon/links/links.go) for one linked container. */
function linkEnv(parent: ContainerRecord, child: ContainerRecord, alias: string, ip: string): string[] {
  const p = alias.toUpperCase().replace(/-/g, "_");
  const env: string[] = [`${p}_NAME=/${parent.Name}/${alias}`];
  const ports = Object.keys(child.Config.ExposedPorts ?? {})
    .map((k) => {
      const [port, proto = "tcp"] = k.split("/");
      return { port: Number(port), proto };
    })
    .sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
  if (ports.length > 0) env.push(`${p}_PORT=${ports[0].proto}://${ip}:${ports[0].port}`);
  for (const { port, proto } of ports) {
    const k = `${p}_PORT_${port}_${proto.toUpperCase()}`;
    env.push(`${k}=${proto}://${ip}:${port}`, `${k}_ADDR=${ip}`, `${k}_PORT=${port}`, `${k}_PROTO=${proto}`);
  }
  for (const e of child.Config.Env ?? []) {
    const eq = e.indexOf("=");
    const key = eq < 0 ? e : e.slice(0, eq);
    // dockerd leaves out the variables every container has.
    if (["HOME", "HOSTNAME", "PATH"].includes(key)) continue;
    env.push(`${p}_ENV_${e}`);
  }
  return env;
}

/**
 * At start, before the network's /etc files are written: on the default bridge, the hosts lines
 * (kept on the record, so every rewrite of /etc/hosts has them) and link variables of each
 * linked container, which must be running (dockerd's rule).
 */
export async function applyLinks(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  const links = parseLinks(rec.HostConfig.Links);
  delete rec.LinkHosts;
  if (links.length === 0) return;
  const children = links.map((l) => {
    const child = ctx.store.find(l.name);
    if (!child)
      throw invalid(`could not get container for ${l.name}: No such container: ${l.name}; remove the --link`);
    if (!isUp(child))
      throw conflict(`Cannot link to a non running container: /${child.Name} AS /${rec.Name}/${l.alias}`);
    return { link: l, child };
  });
  if (!onDefaultBridge(rec)) return;
  const p = containerPaths(ctx, rec.Id);
  const hosts: string[] = [];
  const env: string[] = [];
  for (const { link, child } of children) {
    const ip = child.NetworkSettings?.Networks.bridge?.IPAddress ?? "";
    if (ip === "")
      throw conflict(
        `Cannot link to /${child.Name}, as it does not belong to the default network; use a user-defined network for both`,
      );
    hosts.push(`${ip}\t${link.alias} ${child.Id.slice(0, 12)} ${child.Name}`);
    env.push(...linkEnv(rec, child, link.alias, ip));
  }
  rec.LinkHosts = hosts;
  const spec = JSON.parse(await readFile(p.spec, "utf8")) as Spec;
  // Variables of an earlier start go first: links may point elsewhere now.
  const prefixes = children.map(({ link }) => `${link.alias.toUpperCase().replace(/-/g, "_")}_`);
  const own = new Set(rec.Config.Env ?? []);
  spec.process.env = [
    ...spec.process.env.filter((e) => own.has(e) || !prefixes.some((x) => e.startsWith(x))),
    ...env.filter((e) => !own.has(e)),
  ];
  await writeFile(p.spec, JSON.stringify(spec, null, 1));
}

/**
 * Links a client sent per endpoint (the docker CLI copies --link there on a user-defined
 * network) join HostConfig.Links, which is what the DNS aliases are made from.
 */
export function mergeEndpointLinks(
  hc: HostConfig,
  endpoints: Record<string, { Links?: string[] | null }> | null | undefined,
): void {
  const all = [...(hc.Links ?? [])];
  for (const ep of Object.values(endpoints ?? {}))
    for (const l of ep?.Links ?? []) if (!all.includes(l)) all.push(l);
  if (all.length > 0) hc.Links = all;
}
