// GET /services/{id}/logs: the logs of a service's tasks, gathered from their containers wherever
// they run. Lives in daemon/ because it needs the manager's view of the tasks and the agent's
// logs. Tasks on this node are read from the local engine; tasks on other nodes through that
// node's Node service: Forward runs `GET /containers/{id}/logs?timestamps=1` on the node's own
// socket, and the stdcopy frames that come back are cut into LogLines again (the timestamp
// prefix split off), so merging in time order and the `details` context work the same for both.
//
// A node that cannot be reached is skipped with a warning; without follow the stream then ends
// the way Docker's does, with a system-error frame naming what is missing ("warning: incomplete
// log stream. some logs could not be retrieved for the following reasons: node X is not
// available"), which the docker CLI prints as "error from daemon in stream: ...".
import type { FastifyInstance } from "fastify";
import * as grpc from "@grpc/grpc-js";
import { invalid, isShoalError, messageOf, unavailable } from "../shared/errors.js";
import { encodeFrame, StdcopyDemuxer, stdcopyFrame, STDERR, SYSTEMERR } from "../shared/stdcopy.js";
import type { ContainerEngineApi } from "../agent/engine/container/api.js";
import type { LogLine } from "../agent/engine/container/types.js";
import { toDockerLogTime } from "../agent/api/log-time.js";
import { qBool, qString, type Query } from "../shared/query.js";
import { NOT_A_MANAGER, type SwarmHost } from "../manager/controlapi/routes.js";
import type * as pb from "../proto/gen/cluster.js";

export interface ServiceLogHost extends SwarmHost {
  /** This node's id (tasks with it are read from the local engine). */
  readonly nodeId: string | undefined;
  /** A client of another node's Node service; undefined when its address is not known. */
  nodeForwardClient(nodeId: string): pb.NodeClient | undefined;
}

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

/** A log line's time as a key that sorts in time order whatever its zone and fraction length. */
export function logTimeKey(time: string): string {
  const docker = toDockerLogTime(time);
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(docker);
  if (!m) return docker;
  return `${m[1]}.${(m[2] ?? "").padEnd(9, "0").slice(0, 9)}`;
}

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

function waitForReady(client: grpc.Client, ms: number): Promise<void> {
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

export function registerServiceLogRoutes(
  app: FastifyInstance,
  host: ServiceLogHost,
  engine: ContainerEngineApi,
): void {
  app.get<{ Params: { id: string }; Querystring: Query }>("/services/:id/logs", async (request, reply) => {
    const control = host.control();
    if (!control) throw unavailable(NOT_A_MANAGER);
    const q = request.query;
    const service = control.inspectService(request.params.id);
    const stdout = qBool(q, "stdout");
    const stderr = qBool(q, "stderr");
    if (!stdout && !stderr)
      throw invalid("you must choose at least one stream: pass stdout=1 and/or stderr=1");
    const tailText = qString(q, "tail");
    const tail =
      tailText === undefined || tailText === "all" || tailText === "" ? undefined : Number(tailText);
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 0))
      throw invalid(`invalid value "${tailText}" for tail: use a number of lines or "all"`);
    const sinceText = qString(q, "since");
    const since =
      sinceText === undefined || sinceText === "" || sinceText === "0" ? undefined : Number(sinceText);
    if (since !== undefined && !Number.isFinite(since))
      throw invalid(`invalid value "${sinceText}" for since: expected a Unix timestamp in seconds`);
    const follow = qBool(q, "follow");
    const details = qBool(q, "details");
    const timestamps = qBool(q, "timestamps");
    const all = control.listTasks({ service: [service.ID] });
    const tasks = all
      .map((t) => ({
        t,
        containerId: (t.Status as { ContainerStatus?: { ContainerID?: string } }).ContainerStatus
          ?.ContainerID,
      }))
      .filter((x): x is { t: typeof x.t; containerId: string } => !!x.containerId && !!x.t.NodeID);
    // Why some logs are missing, in Docker's words; reported at the end without follow.
    const missing: string[] = all
      .filter((t) => !t.NodeID && t.DesiredState === "running")
      .map((t) => `task ${t.ID} has not been scheduled`);

    const aborter = new AbortController();
    // The response closes when the client goes away (or once it has ended): stop every reader.
    reply.raw.on("close", () => aborter.abort());
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "Content-Type": "application/vnd.docker.multiplexed-stream" });
    res.flushHeaders();
    const write = (line: LogLine, context: string): void => {
      if (aborter.signal.aborted) return;
      // The docker CLI reads the first word of a line as the task's context (details=1).
      const prefix = `${timestamps ? `${toDockerLogTime(line.time)} ` : ""}${details ? `${context} ` : ""}`;
      res.write(stdcopyFrame(line.stream, Buffer.concat([Buffer.from(prefix), line.data])));
    };
    const unreachable = new Set<string>();
    const linesOf = (task: (typeof tasks)[number]): AsyncIterable<LogLine> => {
      const options = { follow, stdout, stderr, tail, since, signal: aborter.signal };
      if (task.t.NodeID === host.nodeId) return engine.logs(task.containerId, options);
      const client = host.nodeForwardClient(task.t.NodeID);
      if (!client) throw new NodeUnavailableError("its address is not known");
      return remoteContainerLogs(client, task.containerId, options);
    };
    const read = async (task: (typeof tasks)[number], sink: (l: LogLine, c: string) => void) => {
      const context = contextOf(task.t);
      const nodeId = task.t.NodeID;
      try {
        for await (const line of linesOf(task)) sink(line, context);
      } catch (e) {
        if (aborter.signal.aborted) return;
        if (isShoalError(e) && e.kind === "not_found") return;
        if ((e as { status?: number }).status === 404) return;
        if (e instanceof NodeUnavailableError) {
          request.log.warn(
            { node: nodeId, task: task.t.ID, err: e.message },
            "a node running a task of this service cannot be reached; its logs are left out",
          );
          if (!unreachable.has(nodeId)) {
            unreachable.add(nodeId);
            missing.push(`node ${nodeId} is not available`);
          }
          return;
        }
        request.log.warn(
          { err: messageOf(e), container: task.containerId, node: nodeId },
          "a task's log stream ended with an error",
        );
        missing.push(`task ${task.t.ID}: ${messageOf(e)}`);
      }
    };
    const contextOf = (t: (typeof tasks)[number]["t"]): string =>
      `com.docker.swarm.node.id=${t.NodeID},com.docker.swarm.service.id=${t.ServiceID},com.docker.swarm.task.id=${t.ID}`;
    if (follow) {
      await Promise.all(tasks.map((task) => read(task, write)));
    } else {
      // Without follow the tasks' lines come merged in time order, as one log.
      const lines: Array<{ line: LogLine; context: string; key: string }> = [];
      await Promise.all(
        tasks.map((task) =>
          read(task, (line, context) => lines.push({ line, context, key: logTimeKey(line.time) })),
        ),
      );
      lines.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      for (const { line, context } of lines) write(line, context);
      if (missing.length > 0 && !aborter.signal.aborted)
        res.write(
          encodeFrame(
            SYSTEMERR,
            `Error grabbing logs: warning: incomplete log stream. some logs could not be retrieved for the following reasons: ${missing.join(", ")}\n`,
          ),
        );
    }
    res.end();
  });
}
