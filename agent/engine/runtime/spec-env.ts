// The process environment dockerd builds (container.CreateDaemonEnvironment): its defaults,
// then the container's Env replacing or appending by name; "NAME" without "=" unsets.

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const keyOf = (e: string): string => {
  const i = e.indexOf("=");
  return i < 0 ? e : e.slice(0, i);
};

function replaceOrAppendEnv(defaults: readonly string[], overrides: readonly string[]): string[] {
  const env: Array<string | null> = [...defaults];
  const index = new Map<string, number>();
  env.forEach((e, i) => index.set(keyOf(e ?? ""), i));
  for (const value of overrides) {
    const key = keyOf(value);
    const at = index.get(key);
    if (!value.includes("=")) {
      if (at !== undefined) env[at] = null;
      continue;
    }
    if (at !== undefined) env[at] = value;
    else index.set(key, env.push(value) - 1);
  }
  return env.filter((e): e is string => e !== null);
}

export function processEnv(opts: {
  hostname: string;
  tty: boolean;
  env: readonly string[];
  home: string;
}): string[] {
  const defaults = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${opts.hostname}`];
  if (opts.tty) defaults.push("TERM=xterm");
  const env = replaceOrAppendEnv(defaults, opts.env);
  // runc would set HOME itself at exec; writing it here makes `inspect`-style tooling see it.
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${opts.home}`);
  return env;
}
