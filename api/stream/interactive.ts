// Joins a hijacked client connection to a process's stdio (conmon's attach socket), both ways,
// the way dockerd's attach and exec streams behave:
// - output: raw bytes with a TTY, stdcopy frames without one; only the streams asked for;
// - input: the client's bytes go to the process; with a TTY the detach sequence ends the stream
//   (the process keeps running), and the bytes of a partial sequence are passed on;
// - the client half-closing its side: with stdinOnce and no TTY the process's stdin is closed
//   and output goes on until the process ends it (`echo data | docker run -i busybox cat`);
//   otherwise the stream ends there and the process keeps its stdin (dockerd closes stdout and
//   stderr "no matter what" in that case);
// - bounded: input waits until conmon took the previous chunk (the client is paused meanwhile),
//   and a client that stops reading its output is dropped once too much is waiting for it:
//   conmon's socket cannot be paused, and blocking it would stall the process and its log.
// Used by container attach and exec start alike.
import type { Socket } from "node:net";
import type { AttachSocket } from "../../agent/engine/runtime/attach-socket.js";
import { stdcopyFrame } from "../../shared/stdcopy.js";
import { EscapeProxy } from "./detach-keys.js";

export interface InteractiveOptions {
  tty: boolean;
  /** Pass the client's bytes to the process (attach stdin=1 on a container with OpenStdin). */
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Docker's StdinOnce: the client's end of input closes the process's stdin (without a TTY). */
  stdinOnce: boolean;
  /** The detach sequence; only watched for with a TTY, as dockerd does. Empty: none. */
  detachKeys: Buffer;
  /** Output bytes allowed to wait for a slow client before it is dropped (default 8 MiB). */
  maxPendingOutput?: number;
}

/** Why the stream ended. */
export type InteractiveEnd =
  /** The process's output ended (it exited, or conmon closed the socket). */
  | "output-ended"
  /** The client typed the detach sequence. */
  | "detached"
  /** The client half-closed its side and that ends the stream. */
  | "input-ended"
  /** The client went away. */
  | "client-closed"
  /** The client stopped reading and too much output piled up. */
  | "overrun";

const DEFAULT_MAX_PENDING = 8 * 1024 * 1024;

/**
 * Stream between `client` (already answered with 101 or 200) and `attach` until one side ends;
 * both are closed (or ended) when this resolves. Output that arrived before the call (buffered
 * by the attach socket) is sent first.
 */
export function joinInteractive(
  client: Socket,
  attach: AttachSocket,
  o: InteractiveOptions,
): Promise<InteractiveEnd> {
  const maxPending = o.maxPendingOutput ?? DEFAULT_MAX_PENDING;
  const proxy = o.tty && o.detachKeys.length > 0 ? new EscapeProxy(o.detachKeys) : undefined;
  return new Promise((resolve) => {
    let done = false;
    const finish = (why: InteractiveEnd): void => {
      if (done) return;
      done = true;
      attach.close();
      if (why === "client-closed" || why === "overrun") client.destroy();
      else client.end();
      resolve(why);
    };

    attach.onOutput((out) => {
      if (done) return;
      if (out.stream === "stdout" ? !o.stdout : !o.stderr) return;
      client.write(o.tty ? out.data : stdcopyFrame(out.stream, out.data));
      if (client.writableLength > maxPending) finish("overrun");
    });
    // conmon closes the socket once the process's output is drained; what was written to the
    // client is still flushed by client.end().
    void attach.ended.then(() => finish("output-ended"));

    // Input the OS has not taken yet; the end of input waits for it, so no typed byte is lost.
    let inflight: Promise<void> = Promise.resolve();
    const send = (data: Buffer): void => {
      if (data.length === 0) return;
      client.pause();
      inflight = new Promise((taken) =>
        attach.write(data, () => {
          taken();
          if (!done) client.resume();
        }),
      );
    };
    client.on("data", (chunk: Buffer) => {
      if (done || !o.stdin) return;
      if (!proxy) return send(chunk);
      const { pass, detached } = proxy.feed(chunk);
      send(pass);
      if (detached) void inflight.then(() => finish("detached"));
    });
    client.on("end", () => {
      if (done || !o.stdin) return;
      if (proxy) send(proxy.flush());
      void inflight.then(() => {
        if (done) return;
        if (o.stdinOnce && !o.tty) attach.endInput();
        else finish("input-ended");
      });
    });
    client.on("close", () => finish("client-closed"));
    client.resume();
  });
}
