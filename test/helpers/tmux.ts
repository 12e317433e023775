// A real pseudo-terminal for tests: a private tmux server (its own socket and config, killed at
// teardown) running one command in a detached 80x24 window, typed into with send-keys and read
// back with capture-pane. Waits poll with generous limits; nothing relies on timing.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

const run = promisify(execFile);

export interface Tmux {
  /** Run `argv` (with `env`) in a new window named `name`; the pane stays after it exits. */
  start(name: string, argv: string[], env?: Record<string, string>): Promise<void>;
  /** tmux send-keys: key names (C-p, Enter) or, with literal, text typed as is. */
  send(name: string, keys: string[], literal?: boolean): Promise<void>;
  /** The pane's text, with its scrollback. */
  capture(name: string): Promise<string>;
  /** Poll the pane until `test` holds; throws with the pane's text after `timeoutMs`. */
  waitFor(name: string, test: (text: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
  /** Whether the pane's command has exited, and its status. */
  exited(name: string): Promise<{ dead: boolean; status: number }>;
  resize(name: string, width: number, height: number): Promise<void>;
  /** Kill the server and remove its folder. */
  destroy(): Promise<void>;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function startTmux(): Promise<Tmux> {
  const dir = await mkdtemp("/tmp/shoal-tmux-");
  const socket = join(dir, "sock");
  const conf = join(dir, "tmux.conf");
  await writeFile(conf, "set -g remain-on-exit on\nset -g history-limit 10000\nset -g status off\n");
  const statusFile = (name: string): string => join(dir, `${name}.status`);
  const tmux = (args: string[]) => run("tmux", ["-S", socket, "-f", conf, ...args], { encoding: "utf8" });
  // A first session keeps the server (and its options) up before any test window exists.
  await tmux(["new-session", "-d", "-s", "idle", "-x", "80", "-y", "24", "sleep 100000"]);
  const t: Tmux = {
    async start(name, argv, env = {}) {
      const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
      await tmux([
        "new-session",
        "-d",
        "-s",
        name,
        "-x",
        "80",
        "-y",
        "24",
        ...envArgs,
        // The exit status is written to a file by the pane's shell: tmux's own pane_dead_status
        // stayed empty under CI (read as 0, it hid docker attach's exit code 3).
        `${argv.map(shellQuote).join(" ")}; echo $? > ${shellQuote(statusFile(name))}`,
      ]);
    },
    async send(name, keys, literal = false) {
      await tmux(["send-keys", "-t", `${name}:`, ...(literal ? ["-l"] : []), ...keys]);
    },
    async capture(name) {
      const { stdout } = await tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", `${name}:`]);
      return stdout;
    },
    async waitFor(name, test, what, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      let text = "";
      while (Date.now() < until) {
        text = await t.capture(name);
        if (test(text)) return text;
        await sleep(100);
      }
      throw new Error(`tmux window ${name}: no ${what} within ${timeoutMs} ms; the pane shows:\n${text}`);
    },
    async exited(name) {
      const text = await readFile(statusFile(name), "utf8").catch(() => "");
      return /^\d+\n$/.test(text) ? { dead: true, status: Number(text.trim()) } : { dead: false, status: 0 };
    },
    async resize(name, width, height) {
      await tmux(["resize-window", "-t", `${name}:`, "-x", `${width}`, "-y", `${height}`]);
    },
    async destroy() {
      await tmux(["kill-server"]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return t;
}
