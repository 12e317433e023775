// The control API's logic, in the Docker swarm API's terms: services, tasks and nodes read from
// the store and changed through it. Checks that can be made up front are (names, replicas,
// constraints, reservations no node could hold), so a bad request is a 400 that names the fix.
import { conflict, invalid, notFound, unavailable } from "../../shared/errors.js";
import type { NetworkConvergence } from "./networks.js";
import { findByRef, newObjectId, type ClusterStore } from "../store/store.js";
import {
  allocateServiceEndpoint,
  resolveServiceNetworks,
  withAllocationLock,
} from "../allocator/allocator.js";
import type { ClusterObject, NodeObject, ServiceObject, StoredObject, TaskObject } from "../store/types.js";
import { constraintsOf } from "../constraint/constraint.js";
import { sameSpec, upToDate } from "../orchestrator/reconcile.js";
import { makeJoinToken } from "../ca/ca.js";
import { TERMINAL_STATES } from "../../shared/cluster.js";

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
  constraintsOf(template); // a constraint it cannot read is a 400 saying what to write
  const ports =
    (
      spec as {
        EndpointSpec?: {
          Ports?: Array<{ PublishMode?: string; TargetPort?: number; PublishedPort?: number }>;
        };
      }
    ).EndpointSpec?.Ports ?? [];
  for (const p of ports) {
    if (p.PublishMode !== undefined && p.PublishMode !== "host" && p.PublishMode !== "ingress")
      throw invalid(
        `service ${spec.Name}: invalid publish mode ${JSON.stringify(p.PublishMode)}: use ingress or host`,
      );
    if (!p.TargetPort)
      throw invalid(`service ${spec.Name}: a published port needs a target (container) port`);
    const protocol = (p as { Protocol?: string }).Protocol;
    if (protocol !== undefined && protocol !== "" && protocol !== "tcp" && protocol !== "udp")
      throw invalid(
        `service ${spec.Name}: invalid protocol ${JSON.stringify(protocol)} for a published port: use tcp or udp`,
      );
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

/** A task spec (a service's TaskTemplate, or a task's Spec) without its registry credentials. */
function templateWithoutCredentials<T extends object>(template: T): T {
  const cs = (template as { ContainerSpec?: { PullOptions?: unknown } }).ContainerSpec;
  if (!cs || typeof cs !== "object" || cs.PullOptions === undefined) return template;
  const { PullOptions: _secret, ...containerSpec } = cs;
  return { ...template, ContainerSpec: containerSpec };
}

/**
 * Registry credentials stay in the store; the API never shows them (as dockerd). Only the
 * dispatcher sends them, to the node that runs the task.
 */
function hideCredentials(s: ServiceObject): ServiceObject {
  return { ...s, Spec: { ...s.Spec, TaskTemplate: templateWithoutCredentials(s.Spec.TaskTemplate) } };
}

/** A task carries a copy of its service's template, credentials included: they are hidden too. */
function hideTaskCredentials(t: TaskObject): TaskObject {
  return { ...t, Spec: templateWithoutCredentials(t.Spec) };
}

/** How a node is named in messages: its name if it has one, else its hostname. */
function nodeName(n: NodeObject): string {
  return n.Spec.Name || n.Description.Hostname || n.ID;
}

/** The smallest majority of `n` voters. */
export function quorumOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * Why demoting `target` must be refused, or undefined when it may go ahead. The managers' Raft
 * group must keep a leader: the last manager cannot go; and, as swarmkit's CanRemoveMember,
 * demoting a reachable manager (node Status.State "ready") must leave the reachable ones a
 * majority of the managers that remain. A change of managers also needs the current group's
 * quorum to commit at all.
 */
export function demoteRefusal(nodes: NodeObject[], target: NodeObject): string | undefined {
  if (target.Spec.Role !== "manager") return undefined;
  const name = nodeName(target);
  const managers = nodes.filter((n) => n.Spec.Role === "manager");
  const reachable = managers.filter((n) => n.Status.State === "ready");
  if (managers.length <= 1)
    return `demoting node ${name} would leave the cluster without a manager (it is the only one): promote another node first with \`node promote NODE\``;
  if (reachable.length < quorumOf(managers.length))
    return `only ${reachable.length} of ${managers.length} managers are reachable, below the quorum of ${quorumOf(managers.length)}, so the cluster cannot change its managers: bring the other managers back first`;
  if (target.Status.State !== "ready") return undefined;
  const remaining = managers.length - 1;
  const left = reachable.length - 1;
  if (left < quorumOf(remaining))
    return `demoting node ${name} would leave ${left} of ${remaining} managers reachable, below the quorum of ${quorumOf(remaining)}; bring the other managers back first`;
  return undefined;
}

/** A value at a dotted path of a spec. */
function at(o: unknown, path: string): unknown {
  let v = o;
  for (const k of path.split("."))
    v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** Parts of the cluster spec shoal keeps as they are; `swarm update` may send them back unchanged. */
const FIXED_CLUSTER_FIELDS: Array<[string, string]> = [
  ["Raft.SnapshotInterval", "--snapshot-interval"],
  ["Raft.KeepOldSnapshots", "Raft.KeepOldSnapshots"],
  ["Raft.LogEntriesForSlowFollowers", "Raft.LogEntriesForSlowFollowers"],
  ["Raft.ElectionTick", "Raft.ElectionTick"],
  ["Raft.HeartbeatTick", "Raft.HeartbeatTick"],
  ["EncryptionConfig.AutoLockManagers", "--autolock"],
  ["TaskDefaults", "--log-driver"],
  ["CAConfig.ExternalCAs", "--external-ca"],
  ["CAConfig.SigningCACert", "swarm ca --rotate"],
  ["CAConfig.SigningCAKey", "swarm ca --rotate"],
  ["CAConfig.ForceRotate", "swarm ca --rotate"],
];

/** Docker's ClusterSpec fields, by part: a field outside them would be kept and never acted on. */
const CLUSTER_SPEC_FIELDS: Record<string, readonly string[] | "value"> = {
  Name: "value",
  Labels: "value",
  Orchestration: ["TaskHistoryRetentionLimit"],
  Raft: [
    "SnapshotInterval",
    "KeepOldSnapshots",
    "LogEntriesForSlowFollowers",
    "ElectionTick",
    "HeartbeatTick",
  ],
  Dispatcher: ["HeartbeatPeriod"],
  CAConfig: ["NodeCertExpiry", "ExternalCAs", "SigningCACert", "SigningCAKey", "ForceRotate"],
  TaskDefaults: ["LogDriver"],
  EncryptionConfig: ["AutoLockManagers"],
};

function refuseUnknownSpecFields(g: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(g)) {
    const known = CLUSTER_SPEC_FIELDS[key];
    if (known === undefined)
      throw invalid(`the cluster spec has no field ${key}: shoal would ignore it; leave it out`);
    if (known === "value" || value === null || typeof value !== "object" || Array.isArray(value)) continue;
    for (const sub of Object.keys(value))
      if (!known.includes(sub))
        throw invalid(`the cluster spec has no field ${key}.${sub}: shoal would ignore it; leave it out`);
  }
}

/** The cluster spec after `swarm update`: what shoal acts on is taken, the rest must not change. */
export function nextClusterSpec(current: ClusterObject["Spec"], given: unknown): ClusterObject["Spec"] {
  if (!given || typeof given !== "object" || Array.isArray(given))
    throw invalid(
      "a swarm update needs the cluster's spec as a JSON object: inspect the swarm and send its Spec back",
    );
  const g = given as Record<string, unknown>;
  refuseUnknownSpecFields(g);
  if (g.Name !== undefined && g.Name !== "" && g.Name !== current.Name)
    throw invalid(
      `the cluster is named ${current.Name} and cannot be renamed: send its Spec back with that Name`,
    );
  for (const [path, flag] of FIXED_CLUSTER_FIELDS) {
    const want = at(g, path);
    if (!sameSpec(want, at(current, path)) && !sameSpec(want, undefined))
      throw invalid(`changing the cluster's ${path} (${flag}) is not supported by shoal: leave it out`);
  }
  const next = structuredClone(current) as Record<string, unknown> & ClusterObject["Spec"];
  if (g.Labels !== undefined) {
    if (g.Labels !== null && (typeof g.Labels !== "object" || Array.isArray(g.Labels)))
      throw invalid("the cluster's Labels must be an object of strings");
    next.Labels = (g.Labels ?? {}) as Record<string, string>;
  }
  const limit = at(g, "Orchestration.TaskHistoryRetentionLimit");
  if (limit !== undefined && limit !== null) {
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0)
      throw invalid(
        `invalid task history limit ${JSON.stringify(limit)}: use a whole number of 0 or more (--task-history-limit)`,
      );
    next.Orchestration = { ...((next.Orchestration as object) ?? {}), TaskHistoryRetentionLimit: limit };
  }
  const heartbeat = at(g, "Dispatcher.HeartbeatPeriod");
  if (heartbeat !== undefined && heartbeat !== null && heartbeat !== 0) {
    if (typeof heartbeat !== "number" || !Number.isInteger(heartbeat) || heartbeat < 1e8)
      throw invalid(
        `invalid heartbeat period ${JSON.stringify(heartbeat)} ns: use at least 100ms (--dispatcher-heartbeat)`,
      );
    next.Dispatcher = { ...((next.Dispatcher as object) ?? {}), HeartbeatPeriod: heartbeat };
  }
  const expiry = at(g, "CAConfig.NodeCertExpiry");
  if (expiry !== undefined && expiry !== null && expiry !== 0) {
    if (typeof expiry !== "number" || !Number.isInteger(expiry) || expiry < 3600e9)
      throw invalid(
        `invalid node certificate expiry ${JSON.stringify(expiry)} ns: use at least 1h (--cert-expiry)`,
      );
    next.CAConfig = { ...((next.CAConfig as object) ?? {}), NodeCertExpiry: expiry };
  }
  return next;
}

export class ControlApi {
  /** `selfId`: the node this API answers on, for the name "self". */
  constructor(
    private readonly store: ClusterStore,
    private readonly selfId?: string,
    /** The Raft leader's node id as this manager knows it now (the store's copy may lag). */
    private readonly leaderNodeId?: () => string | undefined,
    /** The leader's view of which network state each node has applied, from heartbeats (dispatcher/server.ts). */
    private readonly convergence?: () => NetworkConvergence | undefined,
  ) {}

  /** shoal's addition to `node inspect`: the network state version the node has applied. */
  private withNetworkStatus<T extends object>(id: string, v: T): T & { NetworkStatus?: unknown } {
    const c = this.convergence?.();
    if (!c || c.applied.size === 0) return v;
    const applied = c.applied.get(id) ?? 0;
    return {
      ...v,
      NetworkStatus: { Version: c.version, AppliedVersion: applied, Converged: applied >= c.version },
    };
  }

  /** A node as the API shows it, with the leader flag from Raft rather than the store. */
  private nodeView(n: NodeObject) {
    if (!this.leaderNodeId || !n.ManagerStatus) return view(n);
    // No leader known (an election, or this manager just restarted): nobody is shown as leader.
    const leader = this.leaderNodeId();
    return view({ ...n, ManagerStatus: { ...n.ManagerStatus, Leader: n.ID === leader || undefined } });
  }

  private findService(ref: string): ServiceObject {
    const s = this.store.view((tx) => findByRef(tx, "services", ref));
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
    // Networks resolved to ids, and the endpoint (mesh ports, VIPs) given in the same
    // transaction, so a port another service publishes is a 409 here.
    await withAllocationLock(this.store, () =>
      this.store.update((tx) => {
        const resolved = resolveServiceNetworks(tx, valid);
        const ID = newObjectId();
        const endpoint = allocateServiceEndpoint(tx, { ID, Spec: resolved });
        id = tx.create("services", { ID, Spec: resolved, Endpoint: endpoint }).ID;
      }),
    );
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

  /**
   * `POST /services/{id}/update?version=N`: the whole new spec. A changed task template (image,
   * env, resources, ForceUpdate...) makes the orchestrator replace the tasks, a few at a time.
   * `rollback: "previous"` (`docker service rollback`) goes back to the PreviousSpec instead.
   */
  async updateService(
    ref: string,
    version: number,
    given: ServiceObject["Spec"],
    o: { rollback?: string } = {},
  ): Promise<{ Warnings: string[] }> {
    const current = this.findService(ref);
    let spec = given;
    if (o.rollback !== undefined && o.rollback !== "" && o.rollback !== "none") {
      if (o.rollback !== "previous") throw invalid(`invalid rollback "${o.rollback}": use rollback=previous`);
      if (!current.PreviousSpec)
        throw invalid(
          `service ${current.Spec.Name} has no previous spec to roll back to: it was never updated`,
        );
      spec = structuredClone(current.PreviousSpec);
    }
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
    await withAllocationLock(this.store, () =>
      this.store.update((tx) => {
        const resolved = resolveServiceNetworks(tx, valid);
        const latest = tx.get("services", current.ID) ?? current;
        const endpoint = allocateServiceEndpoint(tx, { ...latest, Spec: resolved });
        tx.update("services", {
          ...current,
          Endpoint: endpoint,
          PreviousSpec: hideCredentials(current).Spec,
          Spec: resolved,
        });
      }),
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
    // `_up-to-date` (the docker CLI's progress asks for it): only tasks made from their
    // service's current spec.
    const upToDateOnly = (filters["_up-to-date"] ?? []).some((v) => v !== "false" && v !== "0");
    const nodes = upToDateOnly ? this.store.view((tx) => tx.list("nodes")) : [];
    return this.store
      .view((tx) => tx.list("tasks"))
      .filter((t: TaskObject) => !serviceIds || serviceIds.includes(t.ServiceID))
      .filter((t) => {
        if (!upToDateOnly) return true;
        const s = services.get(t.ServiceID);
        return s !== undefined && upToDate(s, t, nodes);
      })
      .filter((t) => !nodeIds || nodeIds.includes(t.NodeID))
      .filter((t) => !filters["desired-state"] || filters["desired-state"].includes(t.DesiredState))
      .filter((t) => !filters.id || filters.id.some((p) => t.ID.startsWith(p)))
      .map((t) => ({ ...view(hideTaskCredentials(t)), Labels: {} }));
  }

  inspectTask(id: string) {
    const t = this.store.view((tx) => tx.get("tasks", id) ?? tx.list("tasks", (x) => x.ID.startsWith(id))[0]);
    if (!t) throw notFound(`task ${id} not found`);
    return { ...view(hideTaskCredentials(t)), Labels: {} };
  }

  listNodes() {
    return this.store.view((tx) => tx.list("nodes")).map((n) => this.nodeView(n));
  }

  inspectNode(ref: string) {
    const n = this.findNode(ref);
    return this.withNetworkStatus(n.ID, this.nodeView(n));
  }

  /**
   * `POST /nodes/{id}/update`: availability, labels and the role. A role change (promote,
   * demote) is written as the node's desired role in Spec.Role; the node's daemon reacts by
   * joining or leaving the managers' Raft group. A demotion that would cost the cluster its
   * last manager or its quorum is refused.
   */
  async updateNode(ref: string, version: number, spec: NodeObject["Spec"]): Promise<void> {
    const n = this.findNode(ref);
    if (!spec || typeof spec !== "object")
      throw invalid(
        `a node update needs the node's spec: inspect node ${nodeName(n)} and send its Spec back`,
      );
    if (n.Meta.Version.Index !== version)
      throw conflict(
        `update out of sequence: node ${nodeName(n)} is at version ${n.Meta.Version.Index}, not ${version}: inspect it again and retry`,
      );
    if (!["active", "pause", "drain"].includes(spec.Availability))
      throw invalid(`invalid availability "${spec.Availability}": use active, pause or drain`);
    if (spec.Role !== "manager" && spec.Role !== "worker")
      throw invalid(`invalid role "${String(spec.Role)}" for node ${nodeName(n)}: use manager or worker`);
    if (spec.Role === "worker" && n.Spec.Role === "manager") {
      const nodes = this.store.view((tx) => tx.list("nodes"));
      const refusal = demoteRefusal(nodes, n);
      if (refusal) throw invalid(refusal);
    }
    await this.store.update((tx) => tx.update("nodes", { ...n, Spec: { ...spec } }));
  }

  /**
   * `DELETE /nodes/{id}?force=`: a worker that is down (or any worker, with force) leaves the
   * cluster's books. Its tasks are marked orphaned in the same transaction, so the orchestrator
   * puts replacements on other nodes at once.
   */
  async removeNode(ref: string, force: boolean): Promise<void> {
    const n = this.findNode(ref);
    const name = nodeName(n);
    if (n.Spec.Role === "manager") {
      const managers = this.store.view((tx) => tx.list("nodes", (x) => x.Spec.Role === "manager")).length;
      throw invalid(
        managers <= 1
          ? `node ${name} is a manager and cannot be removed: demote it first with \`node demote ${name}\` (it is the only manager, so promote another node first, or end the cluster with \`swarm leave --force\` on it)`
          : `node ${name} is a manager and cannot be removed: demote it first with \`node demote ${name}\``,
      );
    }
    if (n.ManagerStatus)
      throw invalid(
        `node ${name} is still leaving the managers' Raft group: wait until \`node ls\` shows no manager status for it, then remove it`,
      );
    if (!force && n.Status.State !== "down")
      throw invalid(
        `node ${name} is not down and can't be removed: stop its daemon (or have it leave the cluster) or use --force`,
      );
    const now = new Date().toISOString();
    await this.store.update((tx) => {
      tx.delete("nodes", n.ID, n.Meta.Version.Index);
      // Its plain containers' addresses on attachable networks go back with it.
      for (const a of tx.list("attachments", (x) => x.NodeID === n.ID)) tx.delete("attachments", a.ID);
      for (const t of tx.tasksOfNode(n.ID)) {
        if (TERMINAL_STATES.has(t.Status.State) && t.DesiredState !== "running") continue;
        tx.update("tasks", {
          ...t,
          DesiredState: "shutdown",
          Status: TERMINAL_STATES.has(t.Status.State)
            ? t.Status
            : {
                ...t.Status,
                State: "orphaned",
                Message: `node ${name} was removed from the cluster`,
                Timestamp: now,
              },
        });
      }
    });
  }

  /** The cluster object (one per cluster). */
  private cluster(): ClusterObject {
    const c = this.store.view((tx) => tx.list("clusters"))[0];
    if (!c) throw unavailable("this manager has no cluster object yet: wait for it to catch up and retry");
    return c;
  }

  /**
   * `POST /swarm/update?version=N&rotateWorkerToken=&rotateManagerToken=`: the cluster's spec
   * (what shoal acts on: labels, task history limit, heartbeat period, certificate expiry) and
   * join token rotation. A rotated token no longer admits new nodes; joined ones stay.
   */
  async updateCluster(
    version: number,
    spec: unknown,
    o: { rotateWorkerToken?: boolean; rotateManagerToken?: boolean; rotateManagerUnlockKey?: boolean } = {},
  ): Promise<void> {
    const c = this.cluster();
    if (c.Meta.Version.Index !== version)
      throw conflict(
        `update out of sequence: the cluster is at version ${c.Meta.Version.Index}, not ${version}: inspect it again (swarm inspect) and retry`,
      );
    if (o.rotateManagerUnlockKey)
      throw invalid(
        "this cluster is not locked (shoal has no autolock), so there is no unlock key to rotate",
      );
    const next = nextClusterSpec(c.Spec, spec);
    const ca = c.RootCA?.CACert;
    if ((o.rotateWorkerToken || o.rotateManagerToken) && !ca)
      throw unavailable("the cluster has no CA yet, so its join tokens cannot be rotated");
    const tokens = c.JoinTokens ?? { Worker: "", Manager: "" };
    await this.store.update((tx) =>
      tx.update("clusters", {
        ...c,
        Spec: next,
        JoinTokens: {
          Worker: o.rotateWorkerToken && ca ? makeJoinToken(ca) : tokens.Worker,
          Manager: o.rotateManagerToken && ca ? makeJoinToken(ca) : tokens.Manager,
        },
      }),
    );
  }
}
