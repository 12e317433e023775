// The orchestrators' plans: slots for replicated services, one task per eligible node for
// global ones, restart policies, scaling and removal.
import { describe, expect, it } from "vitest";
import { reconcile } from "../../manager/orchestrator/reconcile.js";
import type { NodeObject, ServiceObject, TaskObject } from "../../manager/store/types.js";

const NOW = Date.parse("2026-11-28T12:00:00Z");

function service(mode: ServiceObject["Spec"]["Mode"], restart?: Record<string, unknown>): ServiceObject {
  return {
    ID: "svc",
    Meta: { Version: { Index: 1 }, CreatedAt: "", UpdatedAt: "" },
    Spec: {
      Name: "web",
      TaskTemplate: { ContainerSpec: { Image: "busybox" }, ...(restart ? { RestartPolicy: restart } : {}) },
      Mode: mode,
    },
  };
}

let n = 0;
function task(
  slot: number,
  state: TaskObject["Status"]["State"],
  desired: TaskObject["DesiredState"] = "running",
  o: { node?: string; at?: number } = {},
): TaskObject {
  n++;
  return {
    ID: `t${n}`,
    Meta: { Version: { Index: n }, CreatedAt: new Date(o.at ?? NOW - 60_000).toISOString(), UpdatedAt: "" },
    ServiceID: "svc",
    Slot: slot,
    NodeID: o.node ?? "",
    // What service() below makes its tasks from: the tasks are up to date.
    Spec: { ContainerSpec: { Image: "busybox" } },
    Status: { Timestamp: new Date(o.at ?? NOW - 60_000).toISOString(), State: state, Message: "" },
    DesiredState: desired,
  };
}

function node(
  id: string,
  o: Partial<{
    state: NodeObject["Status"]["State"];
    availability: NodeObject["Spec"]["Availability"];
    role: "manager" | "worker";
  }> = {},
): NodeObject {
  return {
    ID: id,
    Meta: { Version: { Index: 1 }, CreatedAt: "", UpdatedAt: "" },
    Spec: { Role: o.role ?? "worker", Availability: o.availability ?? "active" },
    Description: {
      Hostname: id,
      Platform: { Architecture: "x86_64", OS: "linux" },
      Resources: { NanoCPUs: 2e9, MemoryBytes: 2 ** 32 },
    },
    Status: { State: o.state ?? "ready", Addr: "" },
  };
}

describe("replicated services", () => {
  it("fill every slot, and only the missing ones", () => {
    const plan = reconcile(service({ Replicated: { Replicas: 3 } }), [task(2, "running")], [], NOW);
    expect(plan.create.map((t) => t.slot).sort()).toEqual([1, 3]);
    expect(plan.shutdown).toEqual([]);
  });

  it("scale down shuts the highest slots down; scaling up again refills them at once", () => {
    const tasks = [task(1, "running"), task(2, "running"), task(3, "running")];
    const down = reconcile(service({ Replicated: { Replicas: 1 } }), tasks, [], NOW);
    expect(down.shutdown.sort()).toEqual([tasks[1].ID, tasks[2].ID].sort());
    const stopped = [tasks[0], task(2, "shutdown", "shutdown"), task(3, "shutdown", "shutdown")];
    const up = reconcile(service({ Replicated: { Replicas: 3 } }), stopped, [], NOW);
    expect(up.create.map((t) => [t.slot, t.notBefore])).toEqual([
      [2, 0],
      [3, 0],
    ]);
  });

  it("restart a failed task after the delay, replacing it", () => {
    const failed = task(1, "failed", "running", { at: NOW - 1000 });
    const plan = reconcile(
      service({ Replicated: { Replicas: 1 } }, { Condition: "any", Delay: 5e9 }),
      [failed],
      [],
      NOW,
    );
    // Not yet due: the failed task stays as it is, the new one is planned for later.
    expect(plan.shutdown).toEqual([]);
    expect(plan.create).toHaveLength(1);
    expect(plan.create[0].notBefore).toBe(NOW - 1000 + 5000);
    const due = reconcile(
      service({ Replicated: { Replicas: 1 } }, { Condition: "any", Delay: 5e9 }),
      [failed],
      [],
      NOW + 4000,
    );
    expect(due.shutdown).toEqual([failed.ID]);
    expect(due.create.map((c) => c.notBefore)).toEqual([NOW + 4000]);
  });

  it("shuts a failed task down once its delayed replacement is live, so the slot has one live task", () => {
    const svc = service({ Replicated: { Replicas: 1 } }, { Condition: "any", Delay: 5e9 });
    const failed = { ...task(1, "failed", "running", { at: NOW - 1000 }), Spec: svc.Spec.TaskTemplate };
    const replacement = { ...task(1, "running"), Spec: svc.Spec.TaskTemplate };
    const plan = reconcile(svc, [failed, replacement], [], NOW);
    expect(plan).toEqual({ create: [], shutdown: [failed.ID] });
  });

  it("on-failure leaves a task that completed; none never restarts", () => {
    const done = task(1, "complete");
    expect(
      reconcile(service({ Replicated: { Replicas: 1 } }, { Condition: "on-failure" }), [done], [], NOW),
    ).toEqual({
      create: [],
      shutdown: [],
    });
    const failed = task(1, "failed");
    expect(
      reconcile(service({ Replicated: { Replicas: 1 } }, { Condition: "none" }), [failed], [], NOW).create,
    ).toEqual([]);
  });

  it("stop restarting after max attempts within the window", () => {
    const history = [
      task(1, "failed", "shutdown", { at: NOW - 30_000 }),
      task(1, "failed", "shutdown", { at: NOW - 20_000 }),
      task(1, "failed", "running", { at: NOW - 10_000 }),
    ];
    const policy = { Condition: "on-failure", Delay: 0, MaxAttempts: 2, Window: 60e9 };
    expect(reconcile(service({ Replicated: { Replicas: 1 } }, policy), history, [], NOW).create).toEqual([]);
    // Outside the window the old attempts no longer count.
    const shortWindow = { ...policy, Window: 15e9 };
    expect(
      reconcile(service({ Replicated: { Replicas: 1 } }, shortWindow), history, [], NOW).create,
    ).toHaveLength(1);
  });

  it("a slot with two live tasks keeps the newest", () => {
    const older = task(1, "running");
    const newer = task(1, "running");
    expect(reconcile(service({ Replicated: { Replicas: 1 } }), [older, newer], [], NOW).shutdown).toEqual([
      older.ID,
    ]);
  });
});

describe("global services and removal", () => {
  it("one task per ready, active node; a drained node's task goes", () => {
    const nodes = [node("a"), node("b", { availability: "drain" }), node("c", { state: "down" }), node("d")];
    const onB = task(0, "running", "running", { node: "b" });
    const plan = reconcile(service({ Global: {} }), [onB], nodes, NOW);
    expect(plan.create.map((t) => t.nodeId).sort()).toEqual(["a", "d"]);
    expect(plan.shutdown).toEqual([onB.ID]);
  });

  it("a removed service shuts every task down", () => {
    const tasks = [task(1, "running"), task(2, "starting"), task(3, "failed", "shutdown")];
    expect(reconcile(undefined, tasks, [], NOW).shutdown).toEqual([tasks[0].ID, tasks[1].ID]);
  });
});

describe("nodes going away", () => {
  it("a replicated task on a drained or down node is replaced at once", () => {
    const nodes = [node("a", { availability: "drain" }), node("b", { state: "down" }), node("c")];
    const onA = task(1, "running", "running", { node: "a" });
    const onB = task(2, "running", "running", { node: "b" });
    const onC = task(3, "running", "running", { node: "c" });
    const plan = reconcile(service({ Replicated: { Replicas: 3 } }), [onA, onB, onC], nodes, NOW);
    expect(plan.shutdown.sort()).toEqual([onA.ID, onB.ID].sort());
    expect(plan.create.map((t) => [t.slot, t.notBefore])).toEqual([
      [1, 0],
      [2, 0],
    ]);
  });
});
