// GET /services/{id}/logs: the logs of a service's tasks, gathered from their containers. Lives
// in daemon/ because it needs the manager's view of the tasks and the agent's logs. Today every
// task runs on this node; remote agents will stream theirs through the dispatcher.
import type { FastifyInstance } from "fastify";
import { invalid, isShoalError, unavailable } from "../shared/errors.js";
import type { ContainerEngineApi } from "../agent/engine/container/api.js";
import type { LogLine } from "../agent/engine/container/types.js";
import { stdcopyFrame } from "../agent/api/stdcopy.js";
import { toDockerLogTime } from "../agent/api/log-time.js";
import { qBool, qString, type Query } from "../shared/query.js";
import { NOT_A_MANAGER, type SwarmHost } from "../manager/controlapi/routes.js";

export function registerServiceLogRoutes(
  app: FastifyInstance,
  host: SwarmHost,
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
    const follow = qBool(q, "follow");
    const details = qBool(q, "details");
    const timestamps = qBool(q, "timestamps");
    const tasks = control
      .listTasks({ service: [service.ID] })
      .map((t) => ({
        t,
        containerId: (t.Status as { ContainerStatus?: { ContainerID?: string } }).ContainerStatus
          ?.ContainerID,
      }))
      .filter((x): x is { t: typeof x.t; containerId: string } => !!x.containerId);

    const aborter = new AbortController();
    request.raw.on("close", () => aborter.abort());
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "Content-Type": "application/vnd.docker.multiplexed-stream" });
    res.flushHeaders();
    const write = (line: LogLine, context: string): void => {
      // The docker CLI reads the first word of a line as the task's context (details=1).
      const prefix = `${timestamps ? `${toDockerLogTime(line.time)} ` : ""}${details ? `${context} ` : ""}`;
      res.write(stdcopyFrame(line.stream, Buffer.concat([Buffer.from(prefix), line.data])));
    };
    const read = async (containerId: string, context: string, sink: (l: LogLine, c: string) => void) => {
      try {
        for await (const line of engine.logs(containerId, {
          follow,
          stdout,
          stderr,
          tail,
          signal: aborter.signal,
        }))
          sink(line, context);
      } catch (e) {
        if (!aborter.signal.aborted && !(isShoalError(e) && e.kind === "not_found"))
          request.log.warn({ err: e, container: containerId }, "a task's log stream ended with an error");
      }
    };
    const contextOf = (t: (typeof tasks)[number]["t"]): string =>
      `com.docker.swarm.node.id=${t.NodeID},com.docker.swarm.service.id=${t.ServiceID},com.docker.swarm.task.id=${t.ID}`;
    if (follow) {
      await Promise.all(tasks.map(({ t, containerId }) => read(containerId, contextOf(t), write)));
    } else {
      // Without follow the tasks' lines come merged in time order, as one log.
      const all: Array<{ line: LogLine; context: string }> = [];
      for (const { t, containerId } of tasks)
        await read(containerId, contextOf(t), (line, context) => all.push({ line, context }));
      all.sort((a, b) => (a.line.time < b.line.time ? -1 : a.line.time > b.line.time ? 1 : 0));
      for (const { line, context } of all) write(line, context);
    }
    res.end();
  });
}
