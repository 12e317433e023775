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
    for (const t of tasks) {
      // One operation per task at a time; the newest assignment wins when it is this task's turn.
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
    // Containers of tasks the managers no longer list are removed.
    const known = new Set(tasks.map((t) => t.id));
    for (const c of this.engine.list({ all: true, filters: { label: [`${NODE_LABEL}=${this.nodeId}`] } })) {
      const taskId = c.Config.Labels?.[TASK_LABEL];
      if (taskId && !known.has(taskId) && c.State.Status !== "running")
        void this.engine.remove(c.Id, { force: true }).catch(() => undefined);
    }
  }

  private async handle(t: TaskAssignment): Promise<void> {
    const existing = this.containerOf(t.id);
    if (t.desiredState !== "running") {
      if (existing && (existing.State.Status === "running" || existing.State.Status === "restarting")) {
        const grace = t.spec.ContainerSpec?.StopGracePeriod;
        await this.engine
          .stop(existing.Id, { timeoutSec: grace !== undefined ? Math.ceil(grace / 1e9) : 10 })
          .catch(() => undefined);
      }
      if (!TERMINAL_STATES.has(t.state))
        await this.report({
          taskId: t.id,
          state: "shutdown",
          message: "shutdown",
          containerId: existing?.Id,
        });
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

  /** Report the container's exit once it happens. */
  private follow(t: TaskAssignment, containerId: string): void {
    if (this.watching.has(t.id)) return;
    this.watching.add(t.id);
    void this.engine
      .wait(containerId, "not-running")
      .then(async () => {
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
    this.stopWatch?.();
  }
}
