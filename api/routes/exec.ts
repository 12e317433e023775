// `docker exec`: POST /containers/{id}/exec, POST /exec/{id}/start, GET /exec/{id}/json,
// POST /exec/{id}/resize. A start that streams hijacks the connection as dockerd does (101
// UPGRADED when asked), raw bytes with a TTY and stdcopy frames without one, and ends once the
// process's output did; the docker CLI then reads the exit code from GET /exec/{id}/json.
import type { FastifyPluginAsync } from "fastify";
import type { Socket } from "node:net";
import type { EngineApiDeps } from "../deps.js";
import type { ExecRun } from "../../agent/engine/exec/api.js";
import { parseExecStart } from "../../agent/engine/exec/validate.js";
import { messageOf } from "../../shared/errors.js";
import { stdcopyFrame } from "../../shared/stdcopy.js";
import type { Query } from "../../shared/query.js";
import { hijack } from "../stream/hijack.js";
import { joinInteractive } from "../stream/interactive.js";
import { parseDetachKeys } from "../stream/detach-keys.js";
import { parseResizeQuery } from "../stream/resize.js";

type IdParams = { Params: { id: string }; Querystring: Query; Body: unknown };

export type ExecRoutesOptions = Pick<EngineApiDeps, "containers">;

/** dockerd writes a start's error into the stream it already hijacked, then closes it. */
function writeStreamError(socket: Socket, tty: boolean, e: unknown): void {
  const text = Buffer.from(`${messageOf(e)}\r\n`);
  closeStream(socket, tty ? text : stdcopyFrame("stdout", text));
}

/** End a hijacked stream for good: the hijack took Node's own end handling away. */
function closeStream(socket: Socket, last?: Buffer): void {
  socket.resume();
  socket.once("finish", () => socket.destroy());
  if (last) socket.end(last);
  else socket.end();
}

export const execRoutes: FastifyPluginAsync<ExecRoutesOptions> = async (app, deps) => {
  const exec = deps.containers.exec;

  app.post<IdParams>("/containers/:id/exec", async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    // Checked here (the parser lives with the streams): dockerd refuses bad keys at create.
    if (typeof body.DetachKeys === "string" && body.DetachKeys !== "") parseDetachKeys(body.DetachKeys);
    const created = await exec.create(request.params.id, body);
    return reply.code(201).send(created);
  });

  app.get<IdParams>("/exec/:id/json", async (request) => {
    const info = await exec.inspect(request.params.id);
    const keys = exec.detachKeys(request.params.id);
    // Go's []byte: base64 in JSON.
    return { ...info, DetachKeys: keys ? parseDetachKeys(keys).toString("base64") : null };
  });

  app.post<IdParams>("/exec/:id/resize", async (request, reply) => {
    const { height, width } = parseResizeQuery(request.query);
    await exec.resize(request.params.id, height, width);
    return reply.code(200).send();
  });

  app.post<IdParams>("/exec/:id/start", async (request, reply) => {
    const id = request.params.id;
    const options = parseExecStart(request.body);
    // 404 and 409 go out as HTTP errors, before the connection is taken over.
    exec.checkStart(id);
    if (options.Detach) {
      await exec.start(id, options);
      return reply.code(200).send();
    }
    const info = await exec.inspect(id);
    const detachKeys = parseDetachKeys(exec.detachKeys(id) || undefined);
    const socket = hijack(request, reply);
    // The client may send its input (and end it) while the process is being started: hold it
    // until joinInteractive listens, or its end would be missed.
    socket.pause();
    let run: ExecRun;
    try {
      run = await exec.start(id, options);
    } catch (e) {
      writeStreamError(socket, options.Tty, e);
      return;
    }
    if (!run.socket) {
      closeStream(socket);
      return;
    }
    // conmon closes the attach socket once the output is drained, a moment before it hands
    // the exit code over; an inspect in that moment waits for the code (exec/engine.ts).
    const why = await joinInteractive(socket, run.socket, {
      tty: options.Tty,
      stdin: info.OpenStdin,
      stdout: info.OpenStdout,
      stderr: info.OpenStderr,
      // dockerd's exec closes the process's stdin when the client's input ends.
      stdinOnce: true,
      detachKeys,
    });
    if (why === "detached") exec.detached(id);
  });
};
