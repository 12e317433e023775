// Service updates in the orchestrator's plan: a task made from an older spec is replaced, a few
// running ones at a time (UpdateConfig.Parallelism); a no-op update (zero values dropped by the
// docker CLI) and a constraint change the task's node still meets replace nothing.
import { describe, expect, it } from "vitest";
import { reconcile, sameSpec, upToDate } from "../../manager/orchestrator/reconcile.js";
import type { NodeObject, ServiceObject, TaskObject } from "../../manager/store/types.js";

const NOW = Date.parse("2026-11-28T12:00:00Z");

function service(
  template: Record<string, unknown>,
  o: { replicas?: number; update?: unknown } = {},
): ServiceObject {
  return {
    ID: "svc",
    Meta: { Version: { Index: 1 }, CreatedAt: "", UpdatedAt: "" },
    Spec: {
      Name: "web",
      TaskTemplate: template,
      Mode: { Replicated: { Replicas: o.replicas ?? 3 } },
      ...(o.update !== undefined ? { UpdateConfig: o.update } : {}),
    },
  };
}

let n = 0;
function task(
  slot: number,
  spec: Record<string, unknown>,
  state: TaskObject["Status"]["State"] = "running",
  o: { desired?: TaskObject["DesiredState"]; node?: string } = {},
): TaskObject {
  n++;
  return {
    ID: `t${n}`,
    Meta: { Version: { Index: n }, CreatedAt: new Date(NOW - 60_000).toISOString(), UpdatedAt: "" },
    ServiceID: "svc",
    Slot: slot,
    NodeID: o.node ?? "a",
    Spec: structuredClone(spec),
    Status: { Timestamp: new Date(NOW - 60_000).toISOString(), State: state, Message: "" },
    DesiredState: o.desired ?? "running",
  };
}

function node(id: string, labels: Record<string, string> = {}): NodeObject {
  return {
    ID: id,
    Meta: { Version: { Index: 1 }, CreatedAt: "", UpdatedAt: "" },
    Spec: { Role: "worker", Availability: "active", Labels: labels },
    Description: {
      Hostname: id,
      Platform: { Architecture: "x86_64", OS: "linux" },
      Resources: { NanoCPUs: 2e9, MemoryBytes: 2 ** 32 },
    },
    Status: { State: "ready", Addr: "" },
  };
}

const OLD = { ContainerSpec: { Image: "busybox", Env: ["A=1"] } };
const NEW = { ContainerSpec: { Image: "busybox", Env: ["A=2"] } };
const nodes = [node("a")];

describe("rolling updates", () => {
  it("replaces one running task per pass by default, and waits until the new one runs", () => {
    const tasks = [task(1, OLD), task(2, OLD), task(3, OLD)];
    const first = reconcile(service(NEW), tasks, nodes, NOW);
    expect(first.shutdown).toEqual([tasks[0].ID]);
    expect(first.create.map((c) => [c.slot, c.notBefore])).toEqual([[1, 0]]);
    expect(first.create[0].spec).toEqual(NEW);
    // The replacement is starting: nothing else moves yet.
    const starting = [
      task(1, OLD, "shutdown", { desired: "shutdown" }),
      task(1, NEW, "starting"),
      tasks[1],
      tasks[2],
    ];
    expect(reconcile(service(NEW), starting, nodes, NOW)).toEqual({ create: [], shutdown: [] });
    // It runs: the next slot goes.
    const running = [starting[0], task(1, NEW, "running"), tasks[1], tasks[2]];
    const next = reconcile(service(NEW), running, nodes, NOW);
    expect(next.shutdown).toEqual([tasks[1].ID]);
    expect(next.create.map((c) => c.slot)).toEqual([2]);
  });

  it("a failing new task that will be restarted holds the update back", () => {
    const tasks = [task(1, NEW, "failed"), task(2, OLD), task(3, OLD)];
    const plan = reconcile(service({ ...NEW }), tasks, nodes, NOW);
    expect(plan.shutdown).not.toContain(tasks[1].ID);
    expect(plan.shutdown).not.toContain(tasks[2].ID);
  });

  it("Parallelism 2 replaces two at once; 0 replaces all", () => {
    const tasks = [task(1, OLD), task(2, OLD), task(3, OLD)];
    expect(reconcile(service(NEW, { update: { Parallelism: 2 } }), tasks, nodes, NOW).shutdown).toHaveLength(
      2,
    );
    expect(reconcile(service(NEW, { update: { Parallelism: 0 } }), tasks, nodes, NOW).shutdown).toHaveLength(
      3,
    );
  });

  it("tasks not running yet are replaced at once, whatever the parallelism", () => {
    const tasks = [task(1, OLD, "pending"), task(2, OLD, "pending"), task(3, OLD)];
    const plan = reconcile(service(NEW), tasks, nodes, NOW);
    expect(plan.shutdown.sort()).toEqual([tasks[0].ID, tasks[1].ID, tasks[2].ID].sort());
  });

  it("ForceUpdate changes the spec, so every task is replaced", () => {
    const tasks = [task(1, OLD, "running")];
    const plan = reconcile(service({ ...OLD, ForceUpdate: 1 }, { replicas: 1 }), tasks, nodes, NOW);
    expect(plan.shutdown).toEqual([tasks[0].ID]);
  });

  it("an update that changes nothing but zero values and key order replaces nothing", () => {
    const created = {
      ContainerSpec: { Image: "busybox", Env: [], Labels: {} },
      RestartPolicy: { Condition: "any" },
      Placement: { Constraints: [] },
    };
    const sentBack = {
      RestartPolicy: { Condition: "any", MaxAttempts: 0 },
      ContainerSpec: { Image: "busybox" },
    };
    expect(sameSpec(created, sentBack)).toBe(true);
    const tasks = [task(1, created)];
    expect(reconcile(service(sentBack, { replicas: 1 }), tasks, nodes, NOW)).toEqual({
      create: [],
      shutdown: [],
    });
  });

  it("a new placement constraint the task's node meets leaves the task; one it does not, replaces it", () => {
    const east = [node("a", { zone: "east" })];
    const t = task(1, OLD);
    const meets = service(
      { ...OLD, Placement: { Constraints: ["node.labels.zone==east"] } },
      { replicas: 1 },
    );
    expect(upToDate(meets, t, east)).toBe(true);
    const fails = service(
      { ...OLD, Placement: { Constraints: ["node.labels.zone==west"] } },
      { replicas: 1 },
    );
    expect(upToDate(fails, t, east)).toBe(false);
    expect(reconcile(fails, [t], east, NOW).shutdown).toEqual([t.ID]);
  });

  it("a changed published port replaces the task (the task carries the endpoint)", () => {
    const svc = service(OLD, { replicas: 1 });
    svc.Spec.EndpointSpec = { Ports: [{ PublishMode: "host", TargetPort: 80, PublishedPort: 8080 }] };
    const t = task(1, {
      ...OLD,
      Endpoint: { Ports: [{ PublishMode: "host", TargetPort: 80, PublishedPort: 8081 }] },
    });
    expect(reconcile(svc, [t], nodes, NOW).shutdown).toEqual([t.ID]);
  });
});

describe("a removed node", () => {
  it("its orphaned tasks are replaced elsewhere at once", () => {
    const gone = task(1, OLD, "orphaned", { desired: "shutdown", node: "removed" });
    const plan = reconcile(service(OLD, { replicas: 1 }), [gone], nodes, NOW);
    expect(plan.create.map((c) => [c.slot, c.notBefore])).toEqual([[1, 0]]);
  });

  it("a live task on a node missing from the store is moved too", () => {
    const t = task(1, OLD, "running", { node: "removed" });
    const plan = reconcile(service(OLD, { replicas: 1 }), [t], nodes, NOW);
    expect(plan.shutdown).toEqual([t.ID]);
    expect(plan.create).toHaveLength(1);
  });
});
