// conmon's attach socket and control fifo, the way to a container's (or exec session's) stdio
// after it started. The socket is SOCK_SEQPACKET, which Node's net module cannot open, so
// node-unix-socket (prebuilt N-API) does. Every packet conmon sends starts with one byte naming
// the stream (2 stdout, 3 stderr); what we write goes to the process's stdin (or its terminal)
// as is. Half-closing our side makes conmon close the process's stdin unless it was started
// with --leave-stdin-open. Window sizes go through the `ctl` fifo in the bundle folder.
import { open } from "node:fs/promises";
import { constants } from "node:fs";
import { join } from "node:path";
import { SeqpacketSocket } from "node-unix-socket";
import { conflict, messageOf } from "../../../shared/errors.js";

export type AttachStreamName = "stdout" | "stderr";

export interface AttachOutput {
  stream: AttachStreamName;
  data: Buffer;
}

const STREAM_OF_BYTE: Record<number, AttachStreamName | undefined> = { 2: "stdout", 3: "stderr" };

/** conmon reads at most this much per packet (STDIO_BUF_SIZE) and writes packets of this size plus the stream byte. */
const PACKET_SIZE = 8192 + 1;

/** conmon reads input packets into a 32 KiB buffer and truncates longer ones: send smaller. */
const INPUT_PACKET = 8192;

/** conmon's control message types (ctrl.c). */
const WIN_RESIZE_EVENT = 1;
export const REOPEN_LOGS_EVENT = 2;

export interface AttachSocket {
  /** Output packets, in order; called until the socket ends. */
  onOutput(fn: (out: AttachOutput) => void): void;
  /** Resolves when conmon closed the connection (the process's output ended) or we closed it. */
  readonly ended: Promise<void>;
  /**
   * Send bytes to the process's stdin (or terminal), in packets conmon reads whole. `done` runs
   * once the operating system took them (at once when the socket is closed): callers wait for
   * it before sending more, so a process that stops reading its input holds back the client.
   */
  write(data: Buffer, done?: () => void): void;
  /** Half-close: no more input. conmon closes the process's stdin unless told to leave it open. */
  endInput(): void;
  /** Drop the connection at once (detach): the process keeps running. */
  close(): void;
}

/** Connect to conmon's attach socket at `path` (a short link: socket paths must fit in 108 bytes). */
export function connectAttachSocket(path: string): Promise<AttachSocket> {
  return new Promise((resolve, reject) => {
    const socket = new SeqpacketSocket();
    socket.setInternalReadBufferSize(PACKET_SIZE * 4);
    const listeners: Array<(out: AttachOutput) => void> = [];
    const pending: AttachOutput[] = [];
    let endedResolve!: () => void;
    const ended = new Promise<void>((r) => (endedResolve = r));
    let connected = false;
    let closed = false;
    const finish = (): void => {
      if (closed) return;
      closed = true;
      endedResolve();
    };
    socket.on("data", (buf: Buffer) => {
      if (closed || buf.length < 1) return;
      const stream = STREAM_OF_BYTE[buf[0]];
      if (!stream) return;
      const out = { stream, data: Buffer.from(buf.subarray(1)) };
      if (listeners.length === 0) pending.push(out);
      else for (const fn of listeners) fn(out);
    });
    socket.on("end", finish);
    socket.on("close", finish);
    socket.on("error", (e: Error) => {
      if (!connected) reject(conflict(`cannot attach to the container's stdio (${path}): ${messageOf(e)}`));
      finish();
    });
    const api: AttachSocket = {
      onOutput(fn) {
        listeners.push(fn);
        for (const out of pending.splice(0)) fn(out);
      },
      ended,
      write(data, done) {
        if (closed || data.length === 0) {
          done?.();
          return;
        }
        for (let off = 0; off < data.length; off += INPUT_PACKET) {
          const last = off + INPUT_PACKET >= data.length;
          const chunk = data.subarray(off, Math.min(data.length, off + INPUT_PACKET));
          socket.write(chunk, 0, chunk.length, last ? done : undefined);
        }
      },
      endInput() {
        if (!closed) socket.end();
      },
      close() {
        if (closed) return;
        finish();
        // Never inside one of the socket's own callbacks: node-unix-socket goes on reading the
        // fd after a 'data' event and panics (taking the daemon down) when it was closed there.
        setImmediate(() => socket.destroy());
      },
    };
    try {
      socket.connect(path, () => {
        connected = true;
        resolve(api);
      });
    } catch (e) {
      reject(conflict(`cannot attach to the container's stdio (${path}): ${messageOf(e)}; is it running?`));
    }
  });
}

/** Send one control message through conmon's `ctl` fifo in the bundle (or exec session) folder. */
export async function sendConmonControl(
  bundleDir: string,
  type: number,
  height = 0,
  width = 0,
): Promise<void> {
  // O_NONBLOCK: opening a fifo nobody reads (conmon gone) fails at once instead of hanging.
  const fh = await open(join(bundleDir, "ctl"), constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    await fh.write(`${type} ${height} ${width}\n`);
  } finally {
    await fh.close();
  }
}

/** Resize the process's terminal (conmon accepts 0–1000 for each side). */
export async function resizeTerminal(bundleDir: string, height: number, width: number): Promise<void> {
  const h = Math.max(0, Math.min(1000, Math.floor(height)));
  const w = Math.max(0, Math.min(1000, Math.floor(width)));
  await sendConmonControl(bundleDir, WIN_RESIZE_EVENT, h, w);
}
