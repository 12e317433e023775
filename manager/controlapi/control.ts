// The control API's logic, in the Docker swarm API's terms: services, tasks and nodes read from
// the store and changed through it. Checks that can be made up front are (names, replicas,
// constraints, reservations no node could hold), so a bad request is a 400 that names the fix.
import { conflict, invalid, notFound } from "../../shared/errors.js";
import type { ClusterStore } from "../store/store.js";
import type { NodeObject, ServiceObject, StoredObject, TaskObject } from "../store/types.js";
import { parseConstraint } from "../scheduler/constraints.js";

const NAME_RULE = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

/** The API's object shape: Meta flattened into Version/CreatedAt/UpdatedAt. */
export function view<T extends StoredObject>(
  o: T,
): Omit<T, "Meta"> & { Version: { Index: number }; CreatedAt: string; UpdatedAt: string } {
  const { Meta, ...rest } = o;
  return { ...rest, Version: Meta.Version, CreatedAt: Meta.CreatedAt, UpdatedAt: Meta.UpdatedAt };
}

function validateServiceSpec(
  spec: ServiceObject["Spec"] | undefined,
  nodes: NodeObject[],
): ServiceObject["Spec"] {
  if (!spec || typeof spec !== "object") throw invalid("a service needs a spec");
  if (typeof spec.Name !== "string" || spec.Name === "") throw invalid("a service needs a name: pass --name");
  if (!NAME_RULE.test(spec.Name))
    throw invalid(
      `invalid service name "${spec.Name}": use letters, digits and dashes, at most 63, not starting or ending with a dash`,
    );
  const template = (spec.TaskTemplate ?? {}) as {
    ContainerSpec?: { Image?: string };
    Placement?: { Constraints?: string[] };
    Resources?: { Reservations?: { NanoCPUs?: number; MemoryBytes?: number } };
  };
  if (!template.ContainerSpec?.Image)
    throw invalid(`service ${spec.Name} needs an image: give one after the options`);
  const mode = spec.Mode ?? { Replicated: { Replicas: 1 } };
  if (mode.Global === undefined) {
    const replicas = mode.Replicated?.Replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 0)
      throw invalid(
        `invalid replicas ${String(replicas)} for service ${spec.Name}: use a whole number of 0 or more`,
      );
  }
  for (const c of template.Placement?.Constraints ?? []) parseConstraint(c);
  const ports =
    (
      spec as {
        EndpointSpec?: {
          Ports?: Array<{ PublishMode?: string; TargetPort?: number; PublishedPort?: number }>;
        };
      }
    ).EndpointSpec?.Ports ?? [];
  for (const p of ports) {
    if (p.PublishMode !== "host")
      throw invalid(
        `service ${spec.Name} publishes port ${p.PublishedPort ?? ""}:${p.TargetPort ?? ""} through the routing mesh, which comes with overlay networks: publish with mode=host for now (--publish mode=host,published=${p.PublishedPort ?? p.TargetPort ?? 8080},target=${p.TargetPort ?? 80})`,
      );
    if (!p.TargetPort)
      throw invalid(`service ${spec.Name}: a published port needs a target (container) port`);
  }
  const r = template.Resources?.Reservations;
  if (r && nodes.length > 0) {
    const cpus = r.NanoCPUs ?? 0;
    const memory = r.MemoryBytes ?? 0;
    if (cpus > 0 && nodes.every((n) => n.Description.Resources.NanoCPUs < cpus))
      throw invalid(
        `service ${spec.Name} reserves ${cpus / 1e9} CPUs, more than any node has: lower --reserve-cpu`,
      );
    if (memory > 0 && nodes.every((n) => n.Description.Resources.MemoryBytes < memory))
      throw invalid(
        `service ${spec.Name} reserves ${memory} bytes of memory, more than any node has: lower --reserve-memory`,
      );
  }
  return {
    ...spec,
    Mode:
      mode.Global !== undefined
        ? { Global: {} }
        : { Replicated: { Replicas: mode.Replicated?.Replicas ?? 1 } },
  };
}

/** Registry credentials stay in the store; the API never shows them (as dockerd). */
function hideCredentials(s: ServiceObject): ServiceObject {
  const template = s.Spec.TaskTemplate as { ContainerSpec?: { PullOptions?: unknown } };
  if (!template.ContainerSpec?.PullOptions) return s;
  const { PullOptions: _secret, ...containerSpec } = template.ContainerSpec;
  return {
    ...s,
    Spec: { ...s.Spec, TaskTemplate: { ...s.Spec.TaskTemplate, ContainerSpec: containerSpec } },
  };
}

export class ControlApi {
  /** `selfId`: the node this API answers on, for the name "self". */
  constructor(
    private readonly store: ClusterStore,
    private readonly selfId?: string,
  ) {}

  private findService(ref: string): ServiceObject {
    const s = this.store.view((tx) => {
      const byId = tx.get("services", ref);
      if (byId) return byId;
      const byName = tx.byName("services", ref);
      if (byName) return byName;
      const prefixed = tx.list("services", (x) => x.ID.startsWith(ref));
      return prefixed.length === 1 ? prefixed[0] : undefined;
    });
    if (!s) throw notFound(`service ${ref} not found`);
    return s;
  }

  private findNode(name: string): NodeObject {
    const ref = name === "self" && this.selfId ? this.selfId : name;
    const n = this.store.view((tx) => {
      const byId = tx.get("nodes", ref);
      if (byId) return byId;
      const byName = tx.list("nodes", (x) => x.Description.Hostname === ref || x.Spec.Name === ref);
      if (byName.length === 1) return byName[0];
      const prefixed = tx.list("nodes", (x) => x.ID.startsWith(ref));
      return prefixed.length === 1 ? prefixed[0] : undefined;
    });
    if (!n) throw notFound(`node ${ref} not found`);
    return n;
  }

  async createService(spec: ServiceObject["Spec"]): Promise<{ ID: string; Warnings: string[] }> {
    const nodes = this.store.view((tx) => tx.list("nodes"));
    const valid = validateServiceSpec(spec, nodes);
    if (this.store.view((tx) => tx.byName("services", valid.Name)))
      throw conflict(`service ${valid.Name} already exists: choose another name or update it`);
    let id = "";
    await this.store.update((tx) => {
      id = tx.create("services", { Spec: valid }).ID;
    });
    return { ID: id, Warnings: [] };
  }

  inspectService(ref: string) {
    return view(hideCredentials(this.findService(ref)));
  }

  listServices(filters: Record<string, string[]> = {}) {
    const services = this.store.view((tx) => tx.list("services"));
    return services
      .filter((s) => !filters.name || filters.name.some((n) => s.Spec.Name.includes(n)))
      .filter((s) => !filters.id || filters.id.some((n) => s.ID.startsWith(n)))
      .map((s) => view(hideCredentials(s)));
  }

  /** Running and desired task counts, as `GET /services?status=true` gives them. */
  serviceStatus(serviceId: string): { RunningTasks: number; DesiredTasks: number; CompletedTasks: number } {
    return this.store.view((tx) => {
      const s = tx.get("services", serviceId);
      const tasks = tx.tasksOfService(serviceId);
      const running = tasks.filter(
        (t) => t.Status.State === "running" && t.DesiredState === "running",
      ).length;
      const desired =
        s?.Spec.Mode.Global !== undefined
          ? tasks.filter((t) => t.DesiredState === "running").length
          : (s?.Spec.Mode.Replicated?.Replicas ?? 0);
      return {
        RunningTasks: running,
        DesiredTasks: desired,
        CompletedTasks: tasks.filter((t) => t.Status.State === "complete").length,
      };
    });
  }

  async updateService(
    ref: string,
    version: number,
    spec: ServiceObject["Spec"],
  ): Promise<{ Warnings: string[] }> {
    const current = this.findService(ref);
    if (!Number.isInteger(version))
      throw invalid("an update needs the version it was made from: pass ?version=N");
    if (current.Meta.Version.Index !== version)
      throw conflict(
        `update out of sequence: service ${current.Spec.Name} is at version ${current.Meta.Version.Index}, not ${version}: inspect it again and retry`,
      );
    const nodes = this.store.view((tx) => tx.list("nodes"));
    const valid = validateServiceSpec(spec, nodes);
    if (valid.Name !== current.Spec.Name) throw invalid(`service ${current.Spec.Name} cannot be renamed`);
    if ((valid.Mode.Global !== undefined) !== (current.Spec.Mode.Global !== undefined))
      throw invalid(`service ${current.Spec.Name}: the mode (replicated or global) cannot be changed`);
    // An update made from inspect's output (which hides credentials) keeps the stored ones.
    const stored = (current.Spec.TaskTemplate as { ContainerSpec?: { PullOptions?: unknown } }).ContainerSpec
      ?.PullOptions;
    const next = valid.TaskTemplate as { ContainerSpec?: Record<string, unknown> };
    if (stored && next.ContainerSpec && next.ContainerSpec.PullOptions === undefined)
      next.ContainerSpec = { ...next.ContainerSpec, PullOptions: stored };
    await this.store.update((tx) =>
      tx.update("services", { ...current, PreviousSpec: hideCredentials(current).Spec, Spec: valid }),
    );
    return { Warnings: [] };
  }

  async removeService(ref: string): Promise<void> {
    const s = this.findService(ref);
    await this.store.update((tx) => tx.delete("services", s.ID));
  }

  listTasks(filters: Record<string, string[]> = {}) {
    const services = new Map(this.store.view((tx) => tx.list("services")).map((s) => [s.ID, s]));
    const serviceIds = filters.service?.map((ref) => {
      const byId = services.get(ref);
      if (byId) return byId.ID;
      return [...services.values()].find((s) => s.Spec.Name === ref || s.ID.startsWith(ref))?.ID ?? ref;
    });
    const nodeIds = filters.node?.map((ref) => {
      try {
        return this.findNode(ref).ID;
      } catch {
        return ref;
      }
    });
    return this.store
      .view((tx) => tx.list("tasks"))
      .filter((t: TaskObject) => !serviceIds || serviceIds.includes(t.ServiceID))
      .filter((t) => !nodeIds || nodeIds.includes(t.NodeID))
      .filter((t) => !filters["desired-state"] || filters["desired-state"].includes(t.DesiredState))
      .filter((t) => !filters.id || filters.id.some((p) => t.ID.startsWith(p)))
      .map((t) => ({ ...view(t), Labels: {} }));
  }

  inspectTask(id: string) {
    const t = this.store.view((tx) => tx.get("tasks", id) ?? tx.list("tasks", (x) => x.ID.startsWith(id))[0]);
    if (!t) throw notFound(`task ${id} not found`);
    return { ...view(t), Labels: {} };
  }

  listNodes() {
    return this.store.view((tx) => tx.list("nodes")).map((n) => view(n));
  }

  inspectNode(ref: string) {
    return view(this.findNode(ref));
  }

  async updateNode(ref: string, version: number, spec: NodeObject["Spec"]): Promise<void> {
    const n = this.findNode(ref);
    if (n.Meta.Version.Index !== version)
      throw conflict(
        `update out of sequence: node ${n.Description.Hostname} is at version ${n.Meta.Version.Index}, not ${version}: inspect it again and retry`,
      );
    if (!["active", "pause", "drain"].includes(spec.Availability))
      throw invalid(`invalid availability "${spec.Availability}": use active, pause or drain`);
    if (spec.Role !== n.Spec.Role) {
      const managers = this.store.view((tx) => tx.list("nodes", (x) => x.Spec.Role === "manager")).length;
      if (spec.Role === "worker" && managers <= 1)
        throw invalid(
          `demoting node ${n.Description.Hostname} would leave the cluster without a manager (1 of 1, no quorum left): promote another node first`,
        );
      throw invalid(
        `changing node ${n.Description.Hostname}'s role needs joined nodes, which this cluster has not yet`,
      );
    }
    await this.store.update((tx) => tx.update("nodes", { ...n, Spec: { ...spec } }));
  }
}
