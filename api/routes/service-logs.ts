// GET /services/{id}/logs: the logs of a service's tasks, gathered from their containers wherever
// they run (registered inside api/cluster.ts, so a worker sends it to a manager, which knows the
// tasks). Tasks on this node are read from the local engine; tasks on other nodes through that
// node's Node service (api/logs/remote.ts). Without follow the lines come merged in time order.
//
// A node that cannot be reached is skipped with a warning; without follow the stream then ends
// the way Docker's does, with a system-error frame naming what is missing ("warning: incomplete
// log stream. some logs could not be retrieved for the following reasons: node X is not
// available"), which the docker CLI prints as "error from daemon in stream: ...".
import type { FastifyPluginAsync } from "fastify";
import { isShoalError, messageOf } from "../../shared/errors.js";
import { encodeFrame, stdcopyFrame, SYSTEMERR } from "../../shared/stdcopy.js";
import type { Query } from "../../shared/query.js";
import type { ContainerEngineApi } from "../../agent/engine/container/api.js";
import type { LogLine } from "../../agent/engine/container/types.js";
import { controlOf } from "../control.js";
import type { ServiceLogHost } from "../deps.js";
import { parseLogQuery } from "../logs/query.js";
import { NodeUnavailableError, remoteContainerLogs } from "../logs/remote.js";
import { logTimeKey, toDockerLogTime } from "../logs/time.js";
import { startStream } from "../stream/response.js";

export interface ServiceLogRoutesOptions {
  host: ServiceLogHost;
  /** This node's engine, for the tasks that run here. */
  engine: ContainerEngineApi;
}

export const serviceLogRoutes: FastifyPluginAsync<ServiceLogRoutesOptions> = async (
  app,
  { host, engine },
) => {
  app.get<{ Params: { id: string }; Querystring: Query }>("/services/:id/logs", async (request, reply) => {
    const control = controlOf(host);
    const service = control.inspectService(request.params.id);
    const { follow, stdout, stderr, tail, since, timestamps, details } = parseLogQuery(request.query);
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
    const res = startStream(reply, "application/vnd.docker.multiplexed-stream");
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
};
