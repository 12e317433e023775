// resolv.conf in and out: the host's file tells the daemon where to forward the names it does not
// know, and every container gets one pointing at the daemon (its network's gateway).
import { readFile } from "node:fs/promises";
import { errnoCode } from "../../../shared/errors.js";

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const raw of text.split("\n")) {
    // Everything after '#' or ';' is a comment, wherever it starts, as Docker reads the file.
    const comment = raw.search(/[#;]/);
    const line = (comment >= 0 ? raw.slice(0, comment) : raw).trim();
    const [keyword, ...args] = line.split(/\s+/);
    if (args.length === 0) continue;
    switch (keyword) {
      case "nameserver":
        conf.nameservers.push(args[0]);
        break;
      // search and domain replace each other: the last line wins, as in glibc.
      case "search":
        conf.search = args;
        break;
      case "domain":
        conf.search = [args[0]];
        break;
      case "options":
        conf.options.push(...args);
        break;
    }
  }
  return conf;
}

export function renderResolvConf(conf: {
  nameservers: string[];
  search?: string[];
  options?: string[];
}): string {
  const lines = conf.nameservers.map((ns) => `nameserver ${ns}`);
  if (conf.search && conf.search.length > 0) lines.push(`search ${conf.search.join(" ")}`);
  if (conf.options && conf.options.length > 0) lines.push(`options ${conf.options.join(" ")}`);
  return lines.map((l) => `${l}\n`).join("");
}

/** The host's resolver configuration; empty lists when the file does not exist. */
export async function readHostResolvConf(path = "/etc/resolv.conf"): Promise<ResolvConf> {
  try {
    return parseResolvConf(await readFile(path, "utf8"));
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return { nameservers: [], search: [], options: [] };
    throw e;
  }
}

/**
 * The resolv.conf of a container whose DNS the daemon answers at `nameserver`: the host's search
 * domains and options (or the user's --dns-search/--dns-option, which replace them), and ndots:0 unless ndots was
 * given, as Docker does, so "web" is asked as is before any search domain is appended and a
 * container name never leaks to the host's resolvers as "web.corp.example".
 */
export function containerResolvConf(
  host: ResolvConf,
  nameserver: string,
  user: { search?: string[]; options?: string[] } = {},
): ResolvConf {
  let search = user.search && user.search.length > 0 ? user.search : host.search;
  // "--dns-search ." is Docker's way to ask for no search domain at all.
  if (search.length === 1 && search[0] === ".") search = [];
  const options = user.options && user.options.length > 0 ? [...user.options] : [...host.options];
  if (!options.some((o) => o.startsWith("ndots:"))) options.push("ndots:0");
  return { nameservers: [nameserver], search: [...search], options };
}
