// Reading Docker's multiplexed streams in the CLI. The framing and the demuxer are
// shared/stdcopy.ts's; this adds copying the frames to the terminal's stdout and stderr.

import type { Readable } from "node:stream";
import { StdcopyDemuxer, STDERR, SYSTEMERR } from "../shared/stdcopy.js";

interface Sink {
  write(data: Buffer): unknown;
}

/**
 * Copy a multiplexed stream to stdout and stderr as frames arrive. Resolves when the stream
 * ends; rejects with the daemon's message when it sends a system-error frame.
 */
export async function demuxTo(source: Readable, stdout: Sink, stderr: Sink): Promise<void> {
  const demuxer = new StdcopyDemuxer();
  let systemError: string | undefined;
  for await (const chunk of source) {
    for (const frame of demuxer.push(chunk as Buffer)) {
      if (frame.stream === STDERR) stderr.write(frame.data);
      else if (frame.stream === SYSTEMERR) systemError = (systemError ?? "") + frame.data.toString("utf8");
      else stdout.write(frame.data);
    }
  }
  if (systemError !== undefined) throw new Error(systemError.trim());
}

/** Copy an unframed (TTY) stream as is. */
export async function copyRaw(source: Readable, stdout: Sink): Promise<void> {
  for await (const chunk of source) stdout.write(chunk as Buffer);
}
