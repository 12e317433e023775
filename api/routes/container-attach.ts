// /containers/{id}/attach and /containers/{id}/resize: a container's stdio on a hijacked
// connection, as dockerd serves it.
// - With stdin (and a container opened with -i): both ways through conmon's attach socket
//   (api/stream/interactive.ts), connected before the process runs when the client attaches
//   before starting it, as the docker CLI does.
// - Without stdin: the container's log, followed from the moment of attaching (or from the
//   start with logs=1). The log holds every byte from the first, so nothing is lost however late
//   the client connects, and a watcher never touches the process's stdin (conmon closes a
//   StdinOnce container's stdin when any attach socket closes).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Socket } from "node:net";
import type { ContainerEngineApi } from "../../agent/engine/container/api.js";
import type { ContainerRecord, LogLine } from "../../agent/engine/container/types.js";
import type { AttachSocket } from "../../agent/engine/runtime/attach-socket.js";
import { invalid, isShoalError } from "../../shared/errors.js";
import { qBool, qString, type Query } from "../../shared/query.js";
import { stdcopyFrame } from "../../shared/stdcopy.js";
import { followAttach } from "../stream/attach.js";
import { parseDetachKeys } from "../stream/detach-keys.js";
import { hijack } from "../stream/hijack.js";
import { joinInteractive } from "../stream/interactive.js";
import { parseResizeQuery } from "../stream/resize.js";

type IdParams = { Params: { id: string }; Querystring: Query };

export interface AttachRoutesOptions {
  containers: ContainerEngineApi;
}

interface AttachQuery {
  stream: boolean;
  logs: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  detachKeys: Buffer;
}

function parseAttachQuery(q: Query, c: ContainerRecord): AttachQuery {
  return {
    stream: qBool(q, "stream"),
    logs: qBool(q, "logs"),
    // As dockerd: stdin is only passed to a container that was opened for it (-i).
    stdin: qBool(q, "stdin") && c.Config.OpenStdin,
    stdout: qBool(q, "stdout"),
    stderr: qBool(q, "stderr"),
    detachKeys: parseDetachKeys(qString(q, "detachKeys")),
  };
}

/** Write and wait while the client's buffer is full: a client that stops reading holds the log reader back. */
function writeBounded(socket: Socket, data: Buffer): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  if (socket.write(data)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
  });
}

function frame(line: LogLine, tty: boolean): Buffer {
  return tty ? line.data : stdcopyFrame(line.stream, line.data);
}

async function copyLines(
  lines: AsyncIterable<LogLine> | Iterable<LogLine>,
  socket: Socket,
  tty: boolean,
  request: FastifyRequest,
  signal: AbortSignal,
): Promise<void> {
  try {
    for await (const line of lines) {
      if (socket.destroyed) break;
      await writeBounded(socket, frame(line, tty));
    }
  } catch (e) {
    if (!signal.aborted && !(isShoalError(e) && e.kind === "not_found"))
      request.log.warn({ err: e }, "attach stream ended with an error");
  }
}

export const containerAttachRoutes: FastifyPluginAsync<AttachRoutesOptions> = async (app, deps) => {
  const engine = deps.containers;

  app.post<IdParams>("/containers/:id/attach", async (request, reply) => {
    const c = engine.get(request.params.id);
    const q = parseAttachQuery(request.query, c);
    // With --log-driver none there is no log to follow: the output comes from conmon's socket.
    const noLog = c.HostConfig.LogConfig?.Type === "none";
    if (q.stream && (q.stdin || noLog)) return attachInteractive(request, reply, c, q);
    const aborter = new AbortController();
    const socket = hijack(request, reply);
    socket.on("close", () => aborter.abort());
    // No stdin wanted: read and drop what the client sends, so its going away is noticed.
    socket.resume();
    const lines = q.stream
      ? followAttach(engine, c.Id, {
          stdout: q.stdout,
          stderr: q.stderr,
          replay: q.logs,
          signal: aborter.signal,
        })
      : q.logs
        ? engine.logs(c.Id, { follow: false, stdout: q.stdout, stderr: q.stderr, signal: aborter.signal })
        : [];
    await copyLines(lines, socket, c.Config.Tty, request, aborter.signal);
    socket.end();
  });

  async function attachInteractive(
    request: FastifyRequest<IdParams>,
    reply: FastifyReply,
    c: ContainerRecord,
    q: AttachQuery,
  ): Promise<void> {
    const aborter = new AbortController();
    const pending = engine.attachStdio(c.Id, aborter.signal);
    let stdio: AttachSocket;
    let socket: Socket;
    if (pending.immediate) {
      // The container runs: a failure to connect is still an HTTP answer (409).
      stdio = await pending.socket;
      socket = hijack(request, reply);
      socket.on("close", () => aborter.abort());
    } else {
      // The client starts the container only once it has its 101, so answer first, then wait.
      socket = hijack(request, reply);
      socket.on("close", () => aborter.abort());
      try {
        stdio = await pending.socket;
      } catch (e) {
        if (!aborter.signal.aborted) request.log.warn({ err: e, id: c.Id }, "attach could not connect");
        socket.destroy();
        return;
      }
    }
    if (q.logs && c.HostConfig.LogConfig?.Type !== "none") {
      // What the container wrote before we connected, then the live stream (held by the attach
      // socket meanwhile).
      const until = Date.now() / 1000;
      const old = engine.logs(c.Id, {
        follow: false,
        stdout: q.stdout,
        stderr: q.stderr,
        until,
        signal: aborter.signal,
      });
      await copyLines(old, socket, c.Config.Tty, request, aborter.signal);
    }
    const why = await joinInteractive(socket, stdio, {
      tty: c.Config.Tty,
      stdin: q.stdin,
      stdout: q.stdout,
      stderr: q.stderr,
      stdinOnce: c.Config.StdinOnce === true,
      detachKeys: q.detachKeys,
    });
    if (why === "overrun")
      request.log.warn({ id: c.Id }, "attach client stopped reading its output; dropped it");
  }

  // The websocket form needs a websocket server; the docker CLI never uses it.
  // Refused whatever the container: the form itself is what shoal does not serve.
  app.get<IdParams>("/containers/:id/attach/ws", async (request) => {
    throw invalid(
      `attaching over a websocket (GET /containers/${request.params.id}/attach/ws) is not supported by shoal: use POST /containers/{id}/attach, as the docker CLI does`,
    );
  });

  app.post<IdParams>("/containers/:id/resize", async (request, reply) => {
    const c = engine.get(request.params.id);
    const { height, width } = parseResizeQuery(request.query);
    await engine.resize(c.Id, height, width);
    return reply.code(200).send();
  });
};
