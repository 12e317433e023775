// The agent's worker: runs the tasks its managers assign to this node on the local engine and
// reports every change of their state. A task's container carries the task id as a label, so
// after a daemon restart the worker finds its containers again and leaves healthy ones running.
import type {
  AssignmentChannel,
  ImagePuller,
  TaskAssignment,
  TaskStatusReport,
} from "../../shared/cluster.js";
import { TERMINAL_STATES } from "../../shared/cluster.js";
import { isShoalError, messageOf } from "../../shared/errors.js";
import type { Logger } from "../../shared/logging.js";
import type { ContainerEngineApi } from "../engine/container/api.js";
import type { ContainerRecord } from "../engine/container/types.js";
import { TASK_LABEL } from "../engine/network/cluster-attach.js";

const SERVICE_LABEL = "com.docker.swarm.service.id";
const SERVICE_NAME_LABEL = "com.docker.swarm.service.name";
const NODE_LABEL = "com.docker.swarm.node.id";
/** A stop that failed is tried again after 1 s, then twice as long each time, up to 30 s. */
const STOP_RETRY_FIRST_MS = 1000;
const STOP_RETRY_MAX_MS = 30_000;

/** States in which a container's processes may still run. */
const STOPPABLE = new Set(["running", "restarting", "paused"]);

interface StopRetry {
  attempt: number;
  timer: NodeJS.Timeout;
  /** Try again now (the container exited by itself, or the timer fired). */
  run: () => void;
}

/** Host-mode published ports as the engine's PortBindings ("80/tcp" → this node's port). */
function hostPorts(t: TaskAssignment): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of t.spec.Endpoint?.Ports ?? []) {
    if (p.PublishMode !== "host" || !p.TargetPort) continue;
    const key = `${p.TargetPort}/${p.Protocol ?? "tcp"}`;
    (out[key] ??= []).push({ HostIp: "", HostPort: p.PublishedPort ? String(p.PublishedPort) : "" });
  }
  return out;
}

export class Worker {
  private readonly busy = new Map<string, Promise<void>>();
  private readonly watching = new Set<string>();
  /** The newest desired state per task: an exit caused by a shutdown is reported as the shutdown. */
  private readonly desired = new Map<string, string>();
  /** Tasks whose container would not stop: a shutdown is reported only once it has stopped. */
  private readonly stopRetries = new Map<string, StopRetry>();
  private stopWatch: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly nodeId: string,
    private readonly channel: AssignmentChannel,
    private readonly engine: ContainerEngineApi,
    private readonly log: Logger,
    private readonly pull?: ImagePuller,
  ) {}

  start(): void {
    this.stopWatch = this.channel.watch(this.nodeId, (tasks) => this.onAssignments(tasks));
  }

  private containerOf(taskId: string): ContainerRecord | undefined {
    return this.engine
      .list({ all: true, filters: { label: [`${TASK_LABEL}=${taskId}`] } })
      .find((c) => c.Config.Labels?.[TASK_LABEL] === taskId);
  }

  private report(r: TaskStatusReport): Promise<void> {
    return this.channel.report(this.nodeId, [r]).catch((e: unknown) => {
      this.log.warn({ task: r.taskId, state: r.state, err: messageOf(e) }, "reporting a task's state failed");
    });
  }

  private onAssignments(tasks: TaskAssignment[]): void {
    if (this.closed) return;
    this.desired.clear();
    for (const t of tasks) this.desired.set(t.id, t.desiredState);
    for (const t of tasks) this.enqueue(t);
    // Containers of tasks the managers no longer list are removed.
    const known = new Set(tasks.map((t) => t.id));
    for (const c of this.engine.list({ all: true, filters: { label: [`${NODE_LABEL}=${this.nodeId}`] } })) {
      const taskId = c.Config.Labels?.[TASK_LABEL];
      if (taskId && !known.has(taskId) && c.State.Status !== "running")
        void this.engine.remove(c.Id, { force: true }).catch(() => undefined);
    }
  }

  /** One operation per task at a time; the newest assignment wins when it is this task's turn. */
  private enqueue(t: TaskAssignment): void {
    const prev = this.busy.get(t.id) ?? Promise.resolve();
    const next = prev
      .then(() => this.handle(t))
      .catch((e: unknown) => {
        this.log.error({ task: t.id, err: messageOf(e) }, "handling a task failed");
      });
    this.busy.set(t.id, next);
    void next.finally(() => {
      if (this.busy.get(t.id) === next) this.busy.delete(t.id);
    });
  }

  private async handle(t: TaskAssignment): Promise<void> {
    const existing = this.containerOf(t.id);
    if (t.desiredState !== "running") {
      await this.shutDown(t, existing);
      return;
    }
    if (TERMINAL_STATES.has(t.state)) return;
    if (existing) {
      // After a restart of this daemon: a running container is kept as it is.
      if (existing.State.Status === "running") {
        if (t.state !== "running")
          await this.report({ taskId: t.id, state: "running", message: "started", containerId: existing.Id });
        this.follow(t, existing.Id);
        return;
      }
      if (existing.State.Status === "exited") {
        await this.reportExit(t, existing);
        return;
      }
    }
    await this.report({ taskId: t.id, state: "preparing", message: "preparing" });
    const cs = t.spec.ContainerSpec ?? {};
    const image = cs.Image;
    if (!image) {
      await this.report({
        taskId: t.id,
        state: "rejected",
        message: "rejected",
        err: "the task has no image",
      });
      return;
    }
    const create = async (): Promise<string> => {
      const limits = t.spec.Resources?.Limits;
      const created = await this.engine.create({
        name: `${t.serviceName}.${t.slot > 0 ? t.slot : this.nodeId}.${t.id}`,
        config: {
          Image: image,
          Entrypoint: cs.Command && cs.Command.length > 0 ? cs.Command : null,
          Cmd: cs.Args && cs.Args.length > 0 ? cs.Args : null,
          Env: cs.Env ?? [],
          WorkingDir: cs.Dir ?? "",
          User: cs.User ?? "",
          Hostname: cs.Hostname ?? "",
          ...(cs.StopSignal ? { StopSignal: cs.StopSignal } : {}),
          Labels: {
            ...(cs.Labels ?? {}),
            [TASK_LABEL]: t.id,
            [SERVICE_LABEL]: t.serviceId,
            [SERVICE_NAME_LABEL]: t.serviceName,
            [NODE_LABEL]: this.nodeId,
          },
        },
        hostConfig: {
          NanoCpus: limits?.NanoCPUs ?? 0,
          Memory: limits?.MemoryBytes ?? 0,
          PortBindings: hostPorts(t),
          // On overlay networks the task's first network is its primary one, as in swarm.
          ...(t.networks?.[0] ? { NetworkMode: t.networks[0].networkName } : {}),
        },
        ...(t.networks
          ? {
              networkingConfig: {
                EndpointsConfig: Object.fromEntries(
                  t.networks.map((n) => [
                    n.networkName,
                    { IPAMConfig: { IPv4Address: n.address.split("/")[0] }, Aliases: n.aliases },
                  ]),
                ),
              },
            }
          : {}),
      });
      return created.Id;
    };
    let id: string;
    try {
      try {
        id = await this.createWhenNetworksExist(t, create);
      } catch (e) {
        // The image is not on this node: fetch it, with the service's credentials, then retry.
        if (!this.pull || !isShoalError(e) || e.status !== 404 || !/No such image/.test(e.message)) throw e;
        await this.report({ taskId: t.id, state: "preparing", message: `pulling ${image}` });
        await this.pull(image, cs.PullOptions?.RegistryAuth);
        id = await create();
      }
    } catch (e) {
      await this.report({ taskId: t.id, state: "rejected", message: "rejected", err: messageOf(e) });
      return;
    }
    await this.report({ taskId: t.id, state: "starting", message: "starting", containerId: id });
    try {
      await this.engine.start(id);
    } catch (e) {
      await this.report({
        taskId: t.id,
        state: "failed",
        message: "starting container failed",
        err: messageOf(e),
        containerId: id,
      });
      return;
    }
    await this.report({ taskId: t.id, state: "running", message: "started", containerId: id });
    this.follow(t, id);
  }

  /**
   * The task's overlay networks appear on this host when the managers' network state naming
   * this node on them arrives, which may come a moment after the task itself: wait for them
   * (up to 30 s) rather than reject the task.
   */
  private async createWhenNetworksExist(t: TaskAssignment, create: () => Promise<string>): Promise<string> {
    const until = Date.now() + 30_000;
    for (;;) {
      try {
        return await create();
      } catch (e) {
        const missingNetwork =
          t.networks !== undefined &&
          isShoalError(e) &&
          e.status === 404 &&
          /^network .* not found/.test(e.message);
        if (!missingNetwork || Date.now() > until || this.closed) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /**
   * Stop the task's container and report `shutdown` once the engine says it no longer runs.
   * Until then the task keeps the state it had (so its address stays allocated to it, and no
   * replacement is told the container is gone), and the stop is tried again with backoff.
   */
  private async shutDown(t: TaskAssignment, existing: ContainerRecord | undefined): Promise<void> {
    let failure: string | undefined;
    if (existing && STOPPABLE.has(existing.State.Status)) {
      const grace = t.spec.ContainerSpec?.StopGracePeriod;
      try {
        await this.engine.stop(existing.Id, {
          timeoutSec: grace !== undefined ? Math.ceil(grace / 1e9) : 10,
        });
      } catch (e) {
        failure = messageOf(e);
      }
    }
    const now = this.containerOf(t.id);
    if (now && STOPPABLE.has(now.State.Status)) {
      this.retryStop(t, now, failure ?? `the container is still ${now.State.Status} after the stop`);
      return;
    }
    this.cancelStopRetry(t.id);
    if (!TERMINAL_STATES.has(t.state))
      await this.report({
        taskId: t.id,
        state: "shutdown",
        message: "shutdown",
        containerId: existing?.Id,
      });
  }

  private retryStop(t: TaskAssignment, c: ContainerRecord, reason: string): void {
    const prev = this.stopRetries.get(t.id);
    if (prev) clearTimeout(prev.timer);
    const attempt = (prev?.attempt ?? 0) + 1;
    const delayMs = Math.min(STOP_RETRY_MAX_MS, STOP_RETRY_FIRST_MS * 2 ** (attempt - 1));
    this.log.warn(
      { task: t.id, container: c.Id, attempt, retryInMs: delayMs, err: reason },
      "stopping a task's container failed; the task keeps its state until it stops, retrying",
    );
    const run = (): void => {
      const r = this.stopRetries.get(t.id);
      if (!r || r.run !== run) return;
      clearTimeout(r.timer);
      if (!this.closed) this.enqueue(t);
    };
    this.stopRetries.set(t.id, { attempt, timer: setTimeout(run, delayMs), run });
  }

  private cancelStopRetry(taskId: string): void {
    const r = this.stopRetries.get(taskId);
    if (r) clearTimeout(r.timer);
    this.stopRetries.delete(taskId);
  }

  /** Report the container's exit once it happens. */
  private follow(t: TaskAssignment, containerId: string): void {
    if (this.watching.has(t.id)) return;
    this.watching.add(t.id);
    void this.engine
      .wait(containerId, "not-running")
      .then(async () => {
        // A container that would not stop and now exited: its shutdown can be told at once.
        this.stopRetries.get(t.id)?.run();
        const c = this.containerOf(t.id);
        if (c && !this.closed) await this.reportExit(t, c);
      })
      .catch(() => undefined)
      .finally(() => this.watching.delete(t.id));
  }

  private async reportExit(t: TaskAssignment, c: ContainerRecord): Promise<void> {
    if (this.desired.get(t.id) !== "running") return;
    const code = c.State.ExitCode;
    await this.report(
      code === 0
        ? { taskId: t.id, state: "complete", message: "finished", containerId: c.Id, exitCode: 0 }
        : {
            taskId: t.id,
            state: "failed",
            message: "task: non-zero exit",
            err: `task: non-zero exit (${code})`,
            containerId: c.Id,
            exitCode: code,
          },
    );
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.stopRetries.keys()]) this.cancelStopRetry(id);
    this.stopWatch?.();
  }
}
