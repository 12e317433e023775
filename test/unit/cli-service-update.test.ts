// `shoal service update`'s spec changes and the convergence display (which task a slot shows,
// when a service has converged), without a daemon.
import { describe, expect, it } from "vitest";
import { updatedServiceSpec } from "../../cli/service-spec.js";
import { progressView, waitForConvergence, type ProgressTask } from "../../cli/service-progress.js";
import type { ApiClient } from "../../cli/client.js";

const base = () => ({
  Name: "web",
  Labels: { tier: "front" },
  Mode: { Replicated: { Replicas: 2 } },
  TaskTemplate: {
    ContainerSpec: { Image: "busybox", Env: ["A=1", "B=2"] },
    Placement: { Constraints: ["node.role==worker"] },
  },
});

describe("service update flags", () => {
  it("change only what they name", () => {
    const s = updatedServiceSpec(base(), {
      image: "busybox:2",
      replicas: "3",
      envAdd: ["A=9", "C=3"],
      envRm: ["B"],
      labelAdd: ["x=y"],
      labelRm: ["tier"],
      constraintAdd: ["node.labels.zone==east"],
      constraintRm: ["node.role == worker"],
      reserveMemory: "64m",
      limitCpu: "0.5",
      restartCondition: "on-failure",
    });
    expect(s.TaskTemplate.ContainerSpec?.Image).toBe("busybox:2");
    expect(s.Mode).toEqual({ Replicated: { Replicas: 3 } });
    expect(s.TaskTemplate.ContainerSpec?.Env).toEqual(["A=9", "C=3"]);
    expect(s.Labels).toEqual({ x: "y" });
    expect(s.TaskTemplate.Placement?.Constraints).toEqual(["node.labels.zone==east"]);
    expect(s.TaskTemplate.Resources).toEqual({
      Reservations: { MemoryBytes: 64 * 1024 * 1024 },
      Limits: { NanoCPUs: 5e8 },
    });
    expect(s.TaskTemplate.RestartPolicy).toEqual({ Condition: "on-failure" });
    expect(base().TaskTemplate.ContainerSpec.Env).toEqual(["A=1", "B=2"]);
  });

  it("--force bumps ForceUpdate; bad values are usage errors", () => {
    expect(updatedServiceSpec(base(), { force: true }).TaskTemplate.ForceUpdate).toBe(1);
    const forced = updatedServiceSpec(base(), { force: true });
    expect(updatedServiceSpec(forced, { force: true }).TaskTemplate.ForceUpdate).toBe(2);
    expect(() => updatedServiceSpec(base(), { replicas: "-1" })).toThrow(/--replicas/);
    expect(() => updatedServiceSpec(base(), { restartCondition: "always" })).toThrow(/--restart-condition/);
    const global = { ...base(), Mode: { Global: {} } };
    expect(() => updatedServiceSpec(global, { replicas: "2" })).toThrow(/global/);
  });
});

describe("convergence display", () => {
  const svc = (replicas: number) => ({
    ID: "s",
    Spec: { Name: "web", Mode: { Replicated: { Replicas: replicas } } },
  });
  const nodes = [{ ID: "n1", Status: { State: "ready" } }];
  const task = (slot: number, state: string, desired = "running", err?: string): ProgressTask => ({
    ID: `${slot}-${state}-${desired}`,
    Slot: slot,
    NodeID: "n1",
    DesiredState: desired,
    Status: { State: state, ...(err ? { Err: err } : {}) },
  });

  it("one line per slot with the state, the error when there is one", () => {
    const v = progressView(
      svc(3),
      [task(1, "running"), task(2, "pending", "running", "no suitable node")],
      nodes,
    );
    expect(v.running).toBe(1);
    expect(v.desired).toBe(3);
    expect(v.converged).toBe(false);
    expect(v.lines.map((l) => [l.id, l.text.trim(), l.step])).toEqual([
      ["1/3", "running", 9],
      ["2/3", "no suitable node", 3],
      ["3/3", "", 0],
    ]);
  });

  it("a slot shows its live task, not the one shut down; all running is converged", () => {
    const v = progressView(svc(1), [task(1, "running", "shutdown"), task(1, "running")], nodes);
    expect(v.converged).toBe(true);
    expect(progressView(svc(0), [], nodes).converged).toBe(true);
  });

  it("tasks on a down node do not count", () => {
    const down = [{ ID: "n1", Status: { State: "down" } }];
    expect(progressView(svc(1), [task(1, "running")], down).running).toBe(0);
  });
});

describe("waitForConvergence", () => {
  const service = { ID: "s", Spec: { Name: "web", Mode: { Replicated: { Replicas: 2 } } } };
  const nodes = [{ ID: "n1", Status: { State: "ready" } }];
  /** A client whose /tasks answers come from `rounds`, one per poll (the last one repeats). */
  function fakeClient(rounds: ProgressTask[][]) {
    let i = 0;
    return {
      json: async (_method: string, path: string) => {
        if (path.startsWith("/services/")) return service;
        if (path === "/nodes") return nodes;
        return rounds[Math.min(i++, rounds.length - 1)];
      },
    } as unknown as ApiClient;
  }
  const t = (id: string, slot: number, state: string, err?: string): ProgressTask => ({
    ID: id,
    Slot: slot,
    NodeID: "n1",
    DesiredState: "running",
    Status: { State: state, ...(err ? { Err: err } : {}) },
  });
  const output = (isTTY: boolean) => ({
    text: "",
    isTTY,
    write(s: string) {
      this.text += s;
    },
  });

  it("on a terminal, redraws the slots in place with bars and ends converged", async () => {
    const out = output(true);
    const client = fakeClient([[t("a", 1, "pending")], [t("a", 1, "running"), t("b", 2, "running")]]);
    await waitForConvergence(client, "s", { out, pollMs: 1, monitorMs: 0 });
    expect(out.text).toContain("overall progress: 0 out of 2 tasks\n");
    expect(out.text).toContain("1/2: pending   [================>   ");
    expect(out.text).toContain("2/2: \n");
    expect(out.text).toContain("\x1b[");
    expect(out.text).toContain("verify: Service converged");
  });

  it("off a terminal, plain lines, each change once", async () => {
    const out = output(false);
    const client = fakeClient([
      [t("a", 1, "pending")],
      [t("a", 1, "pending")],
      [t("a", 1, "running"), t("b", 2, "running")],
    ]);
    await waitForConvergence(client, "s", { out, pollMs: 1, monitorMs: 0 });
    expect(out.text).toBe(
      [
        "overall progress: 0 out of 2 tasks",
        "1/2: pending",
        "overall progress: 2 out of 2 tasks",
        "1/2: running",
        "2/2: running",
        "verify: Service converged",
        "",
      ].join("\n"),
    );
  });

  it("gives up after repeated failures with the task's error, or at the timeout", async () => {
    const failing = fakeClient([
      [t("a", 1, "failed", "task: non-zero exit (3)")],
      [t("a", 1, "failed", "task: non-zero exit (3)"), t("b", 1, "failed", "task: non-zero exit (3)")],
      [t("b", 1, "failed"), t("c", 1, "failed", "task: non-zero exit (3)")],
    ]);
    await expect(waitForConvergence(failing, "s", { out: output(false), pollMs: 1 })).rejects.toThrow(
      "service web is not converging: 3 of its tasks failed, the last (web.1) with: task: non-zero exit (3)",
    );
    const stuck = fakeClient([[t("a", 1, "pending", "no suitable node")]]);
    await expect(
      waitForConvergence(stuck, "s", { out: output(false), pollMs: 1, timeoutMs: 20 }),
    ).rejects.toThrow(/did not converge within 0s: see `shoal service ps --no-trunc web`/);
  });
});
