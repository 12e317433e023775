// The CLI's side of an interactive attach (run -it, start -ai, attach), as the docker CLI does
// it: the local terminal in raw mode while attached (restored however the stream ends), its
// window size sent at once and on every SIGWINCH, stdin copied to the connection and
// half-closed at its end, and with a TTY the detach keys caught here so the CLI can stop at
// once ("read escape sequence") while the container keeps running.
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { ApiClient } from "./client.js";
import { DEFAULT_DETACH_KEYS, EscapeProxy, keysToBytes } from "../shared/detach-keys.js";
import { UsageError } from "./errors.js";
import { copyRaw, demuxTo } from "./stdcopy.js";

export interface InteractiveOptions {
  tty: boolean;
  /** Send our stdin (run -i, start -i, attach without --no-stdin). */
  stdin: boolean;
  detachKeys?: string;
}

/** The --detach-keys value as bytes; a bad one is a usage error before anything is sent. */
export function detachKeyBytes(value: string | undefined): Buffer {
  if (value === undefined || value === "") return DEFAULT_DETACH_KEYS;
  try {
    return keysToBytes(value);
  } catch (e) {
    throw new UsageError(`invalid detach keys (${value}): ${(e as Error).message}`);
  }
}

/** Send the terminal's size now and whenever it changes; returns the function that stops. */
export function followWindowSize(client: ApiClient, resizePath: string): () => void {
  const out = process.stdout;
  if (!out.isTTY) return () => undefined;
  const send = (): void => {
    const [w, h] = out.getWindowSize();
    client.call("POST", resizePath, { query: { h, w } }).catch(() => undefined);
  };
  send();
  out.on("resize", send);
  return () => out.off("resize", send);
}

/**
 * Stream between the hijacked connection and this terminal until the output ends or the user
 * detaches. Resolves "detached" for the detach keys, "ended" otherwise.
 */
export async function streamInteractive(
  conn: Readable,
  o: InteractiveOptions,
): Promise<"ended" | "detached"> {
  const input = process.stdin;
  const raw = o.tty && o.stdin && input.isTTY;
  if (raw) input.setRawMode(true);
  const restore = (): void => {
    if (raw && input.isTTY) input.setRawMode(false);
  };
  const socket = conn as Socket;
  let detached = false;
  const proxy = o.tty ? new EscapeProxy(detachKeyBytes(o.detachKeys)) : undefined;
  const onData = (chunk: Buffer): void => {
    if (!proxy) {
      socket.write(chunk);
      return;
    }
    const { pass, detached: hit } = proxy.feed(chunk);
    if (pass.length > 0) socket.write(pass);
    if (hit) {
      detached = true;
      socket.destroy();
    }
  };
  const onEnd = (): void => {
    if (proxy) {
      const held = proxy.flush();
      if (held.length > 0) socket.write(held);
    }
    // Half-close: the daemon closes the process's stdin (StdinOnce) or ends the attach.
    if (!socket.destroyed) socket.end();
  };
  if (o.stdin) {
    input.on("data", onData);
    input.once("end", onEnd);
    input.resume();
  }
  try {
    await (o.tty ? copyRaw(conn, process.stdout) : demuxTo(conn, process.stdout, process.stderr)).catch(
      (e: unknown) => {
        if (!detached) throw e;
      },
    );
  } finally {
    restore();
    if (o.stdin) {
      input.off("data", onData);
      input.off("end", onEnd);
      input.pause();
    }
  }
  return detached ? "detached" : "ended";
}
