// A container's log lines read on another node, for GET /services/{id}/logs
// (api/routes/service-logs.ts): that node's Node service runs `GET /containers/{id}/logs?timestamps=1`
// on its own socket (Forward), and the stdcopy frames that come back are cut into LogLines again
// (the timestamp prefix split off), so merging in time order and the `details` context work the
// same as for the lines of a task on this node.
import * as grpc from "@grpc/grpc-js";
import { messageOf } from "../../shared/errors.js";
import { StdcopyDemuxer, STDERR, SYSTEMERR } from "../../shared/stdcopy.js";
import type { LogLine } from "../../agent/engine/container/types.js";
import type * as pb from "../../proto/gen/cluster.js";

/** How long a node's channel may take to connect before its tasks are given up on. */
const CONNECT_TIMEOUT_MS = 5_000;

export interface RemoteLogOptions {
  follow: boolean;
  stdout: boolean;
  stderr: boolean;
  tail?: number;
  since?: number;
  signal: AbortSignal;
}

/** The node could not be reached: its tasks' logs are missing (not a failure of one task). */
export class NodeUnavailableError extends Error {}

/** "TIME data" (what `logs?timestamps=1` sends) → its time and the line's own bytes. */
export function splitTimestamp(payload: Buffer): { time: string; data: Buffer } {
  const sp = payload.indexOf(0x20);
  if (sp <= 0 || sp > 64) return { time: "", data: payload };
  return { time: payload.subarray(0, sp).toString("latin1"), data: payload.subarray(sp + 1) };
}

/**
 * Turns the body of a remote `logs?timestamps=1` answer into LogLines: stdcopy frames without a
 * TTY, newline-separated lines with one.
 */
export class RemoteLogParser {
  private readonly demuxer = new StdcopyDemuxer();
  private pending = Buffer.alloc(0);
  /** What the remote daemon reported in-band (a system-error frame). */
  systemError = "";

  constructor(private readonly raw: boolean) {}

  push(chunk: Buffer): LogLine[] {
    if (this.raw) {
      const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
      const lines: LogLine[] = [];
      let start = 0;
      for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
        lines.push({ stream: "stdout", ...splitTimestamp(buf.subarray(start, nl + 1)) });
        start = nl + 1;
      }
      this.pending = Buffer.from(buf.subarray(start));
      return lines;
    }
    const lines: LogLine[] = [];
    for (const frame of this.demuxer.push(chunk)) {
      if (frame.stream === SYSTEMERR) this.systemError += frame.data.toString("utf8");
      else
        lines.push({ stream: frame.stream === STDERR ? "stderr" : "stdout", ...splitTimestamp(frame.data) });
    }
    return lines;
  }

  /** A last line without its newline (TTY streams only). */
  end(): LogLine[] {
    if (!this.raw || this.pending.length === 0) return [];
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return [{ stream: "stdout", ...splitTimestamp(rest) }];
  }
}

/** Resolves once the client's channel is connected; rejects when it is not within `ms`. */
export function waitForReady(client: grpc.Client, ms: number): Promise<void> {
  return new Promise((resolve, reject) =>
    client.waitForReady(Date.now() + ms, (err) => (err ? reject(err) : resolve())),
  );
}

function errorMessage(status: number, body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { message?: unknown };
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // not JSON: the body as it is
  }
  return body.toString("utf8").trim() || `status ${status}`;
}

/**
 * A container's log lines read on another node through its Node service. Ends when the remote
 * stream ends or `signal` aborts (the gRPC call is cancelled then). Throws NodeUnavailableError
 * when the node cannot be reached, a ShoalError-like Error with `status` for a refused request.
 */
export async function* remoteContainerLogs(
  client: pb.NodeClient,
  containerId: string,
  o: RemoteLogOptions,
): AsyncGenerator<LogLine> {
  try {
    await waitForReady(client, CONNECT_TIMEOUT_MS);
  } catch (e) {
    throw new NodeUnavailableError(messageOf(e), { cause: e });
  }
  if (o.signal.aborted) return;
  const query = new URLSearchParams({
    stdout: o.stdout ? "1" : "0",
    stderr: o.stderr ? "1" : "0",
    follow: o.follow ? "1" : "0",
    tail: o.tail === undefined ? "all" : String(o.tail),
    timestamps: "1",
  });
  if (o.since !== undefined) query.set("since", String(o.since));
  const call = client.forward({
    method: "GET",
    url: `/containers/${encodeURIComponent(containerId)}/logs?${query.toString()}`,
    headers: [],
    body: Buffer.alloc(0),
  });
  // Errors reach the loop below; this keeps a late one (after a cancel) from going unheard.
  call.on("error", () => undefined);
  const cancel = (): void => call.cancel();
  o.signal.addEventListener("abort", cancel, { once: true });
  let status = 0;
  let parser: RemoteLogParser | undefined;
  const errorBody: Buffer[] = [];
  try {
    for await (const chunk of call as AsyncIterable<pb.HttpResponseChunk>) {
      if (status === 0) {
        status = chunk.status;
        const type = chunk.headers.find((h) => h.name.toLowerCase() === "content-type")?.value ?? "";
        parser = new RemoteLogParser(type.includes("raw-stream"));
        continue;
      }
      if (status !== 200) {
        errorBody.push(Buffer.from(chunk.body));
        continue;
      }
      for (const line of parser?.push(Buffer.from(chunk.body)) ?? []) yield line;
    }
  } catch (e) {
    if (o.signal.aborted) return;
    const err = e as grpc.ServiceError;
    if (status === 0 && (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED))
      throw new NodeUnavailableError(err.details || err.message, { cause: e });
    throw new Error(err.details || err.message, { cause: e });
  } finally {
    o.signal.removeEventListener("abort", cancel);
    call.cancel();
  }
  if (status !== 200) {
    throw Object.assign(new Error(errorMessage(status, Buffer.concat(errorBody))), { status });
  }
  if (parser) {
    for (const line of parser.end()) yield line;
    if (parser.systemError) throw new Error(parser.systemError.trim());
  }
}
