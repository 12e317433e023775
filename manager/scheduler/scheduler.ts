// The scheduler's decision, as a pure function: which node each pending task goes to, or why
// it cannot go anywhere. Filters first (ready and active, resources, constraints, host ports),
// then spread: the node with the fewest tasks of the same service, then the fewest tasks in all.
// Identical tasks (same service) are placed as one batch, each placement counted before the
// next, so six replicas spread over three nodes two by two.
import { holdsNode } from "../../shared/cluster.js";
import type { NodeObject, TaskObject } from "../store/types.js";
import { constraintsOf, satisfiesAll, type Constraint } from "../constraint/constraint.js";

/** What a task asks of a node, read from its spec. */
export interface TaskNeeds {
  nanoCpus: number;
  memoryBytes: number;
  constraints: Constraint[];
  /** Host-mode published ports, "tcp/8080". */
  hostPorts: string[];
}

interface Placement {
  spec: Record<string, unknown>;
}

/** Reads a task spec in the swarm API's shape (TaskTemplate). */
function needsOf(task: Placement): TaskNeeds {
  const spec = task.spec as {
    Resources?: { Reservations?: { NanoCPUs?: number; MemoryBytes?: number } };
    Endpoint?: { Ports?: Array<{ PublishMode?: string; PublishedPort?: number; Protocol?: string }> };
  };
  return {
    nanoCpus: spec.Resources?.Reservations?.NanoCPUs ?? 0,
    memoryBytes: spec.Resources?.Reservations?.MemoryBytes ?? 0,
    constraints: constraintsOf(spec),
    hostPorts: (spec.Endpoint?.Ports ?? [])
      .filter((p) => p.PublishMode === "host" && p.PublishedPort)
      .map((p) => `${p.Protocol ?? "tcp"}/${p.PublishedPort}`),
  };
}

interface NodeLoad {
  node: NodeObject;
  cpus: number;
  memory: number;
  ports: Set<string>;
  total: number;
  perService: Map<string, number>;
}

export type Decision = { taskId: string; nodeId: string } | { taskId: string; reason: string };

type Rejection = "down" | "drained" | "paused" | "cpu" | "memory" | "constraint" | "port";

const REJECTION_TEXT: Record<Rejection, (n: number) => string> = {
  down: (n) => `${n} ${n === 1 ? "is" : "are"} not ready`,
  drained: (n) => `${n} ${n === 1 ? "is" : "are"} drained`,
  paused: (n) => `${n} ${n === 1 ? "is" : "are"} paused`,
  cpu: (n) => `${n} ${n === 1 ? "node lacks" : "nodes lack"} CPU`,
  memory: (n) => `${n} ${n === 1 ? "node lacks" : "nodes lack"} memory`,
  constraint: (n) => `${n} ${n === 1 ? "does" : "do"} not satisfy the constraints`,
  port: (n) => `${n} already ${n === 1 ? "has" : "have"} the host port in use`,
};

function loadOf(nodes: NodeObject[], tasks: TaskObject[]): Map<string, NodeLoad> {
  const loads = new Map<string, NodeLoad>();
  for (const node of nodes)
    loads.set(node.ID, { node, cpus: 0, memory: 0, ports: new Set(), total: 0, perService: new Map() });
  for (const t of tasks) {
    const l = loads.get(t.NodeID);
    // A task being shut down no longer counts, as in swarmkit: otherwise a scale-down's stopping
    // tasks (held back while every host drops them from its rules) would steer new ones away.
    if (!l || !holdsNode(t.Status.State) || t.DesiredState !== "running") continue;
    addTask(l, t.ServiceID, needsOf({ spec: t.Spec }));
  }
  return loads;
}

function addTask(l: NodeLoad, serviceId: string, needs: TaskNeeds): void {
  l.cpus += needs.nanoCpus;
  l.memory += needs.memoryBytes;
  for (const p of needs.hostPorts) l.ports.add(p);
  l.total++;
  l.perService.set(serviceId, (l.perService.get(serviceId) ?? 0) + 1);
}

function reject(l: NodeLoad, needs: TaskNeeds): Rejection | undefined {
  const n = l.node;
  if (n.Status.State !== "ready") return "down";
  if (n.Spec.Availability === "drain") return "drained";
  if (n.Spec.Availability === "pause") return "paused";
  if (!satisfiesAll(n, needs.constraints)) return "constraint";
  if (needs.nanoCpus > 0 && l.cpus + needs.nanoCpus > n.Description.Resources.NanoCPUs) return "cpu";
  if (needs.memoryBytes > 0 && l.memory + needs.memoryBytes > n.Description.Resources.MemoryBytes)
    return "memory";
  if (needs.hostPorts.some((p) => l.ports.has(p))) return "port";
  return undefined;
}

/** "no suitable node: 2 nodes lack memory, 1 is drained", the text `service ps` shows. */
function noSuitableNode(counts: Map<Rejection, number>, nodes: number): string {
  if (nodes === 0) return "no suitable node: the cluster has no nodes";
  const parts = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([r, n]) => REJECTION_TEXT[r](n));
  return `no suitable node: ${parts.join(", ")}`;
}

/**
 * Place `pending` tasks (state pending, no node) given every node and every task the cluster
 * has. Tasks of one service are placed together, one at a time, the load updated after each.
 */
export function schedule(pending: TaskObject[], nodes: NodeObject[], tasks: TaskObject[]): Decision[] {
  const loads = loadOf(nodes, tasks);
  const decisions: Decision[] = [];
  const byService = new Map<string, TaskObject[]>();
  for (const t of pending) byService.set(t.ServiceID, [...(byService.get(t.ServiceID) ?? []), t]);
  for (const [serviceId, group] of byService) {
    for (const task of group.sort((a, b) => a.Slot - b.Slot)) {
      const needs = needsOf({ spec: task.Spec });
      const counts = new Map<Rejection, number>();
      let best: NodeLoad | undefined;
      for (const l of loads.values()) {
        const why = reject(l, needs);
        if (why) {
          counts.set(why, (counts.get(why) ?? 0) + 1);
          continue;
        }
        if (!best || better(l, best, serviceId)) best = l;
      }
      if (!best) {
        decisions.push({ taskId: task.ID, reason: noSuitableNode(counts, loads.size) });
        continue;
      }
      addTask(best, serviceId, needs);
      decisions.push({ taskId: task.ID, nodeId: best.node.ID });
    }
  }
  return decisions;
}

function better(a: NodeLoad, b: NodeLoad, serviceId: string): boolean {
  const sa = a.perService.get(serviceId) ?? 0;
  const sb = b.perService.get(serviceId) ?? 0;
  if (sa !== sb) return sa < sb;
  if (a.total !== b.total) return a.total < b.total;
  // A stable tie-break keeps decisions repeatable.
  return a.node.ID < b.node.ID;
}
