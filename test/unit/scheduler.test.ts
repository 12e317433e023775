// The scheduler's decisions: filters, spread, batching, and the reason a user reads when a
// task fits nowhere.
import { describe, expect, it } from "vitest";
import { schedule } from "../../manager/scheduler/scheduler.js";
import { parseConstraint } from "../../manager/constraint/constraint.js";
import type { NodeObject, TaskObject } from "../../manager/store/types.js";

const GiB = 1024 ** 3;

function node(
  id: string,
  o: Partial<{
    role: "manager" | "worker";
    state: NodeObject["Status"]["State"];
    availability: NodeObject["Spec"]["Availability"];
    cpus: number;
    memory: number;
    labels: Record<string, string>;
  }> = {},
): NodeObject {
  return {
    ID: id,
    Meta: { Version: { Index: 1 }, CreatedAt: "", UpdatedAt: "" },
    Spec: { Role: o.role ?? "worker", Availability: o.availability ?? "active", Labels: o.labels ?? {} },
    Description: {
      Hostname: `host-${id}`,
      Platform: { Architecture: "x86_64", OS: "linux" },
      Resources: { NanoCPUs: (o.cpus ?? 2) * 1e9, MemoryBytes: (o.memory ?? 4) * GiB },
    },
    Status: { State: o.state ?? "ready", Addr: "10.0.0.1" },
  };
}

let n = 0;
function task(
  serviceId: string,
  spec: Record<string, unknown> = {},
  nodeId = "",
  state: TaskObject["Status"]["State"] = "pending",
): TaskObject {
  n++;
  return {
    ID: `t${n}`,
    Meta: { Version: { Index: n }, CreatedAt: "", UpdatedAt: "" },
    ServiceID: serviceId,
    Slot: n,
    NodeID: nodeId,
    Spec: spec,
    Status: { Timestamp: "", State: state, Message: "" },
    DesiredState: "running",
  };
}

const placed = (d: ReturnType<typeof schedule>) =>
  d.map((x) => ("nodeId" in x ? x.nodeId : `pending: ${x.reason}`));

describe("scheduler", () => {
  it("spreads a service's replicas evenly, counting each placement before the next", () => {
    const nodes = [node("a"), node("b"), node("c")];
    const pending = Array.from({ length: 6 }, () => task("web"));
    const d = placed(schedule(pending, nodes, []));
    expect(d.filter((x) => x === "a")).toHaveLength(2);
    expect(d.filter((x) => x === "b")).toHaveLength(2);
    expect(d.filter((x) => x === "c")).toHaveLength(2);
  });

  it("prefers the node with fewer tasks of the service, then fewer tasks in all", () => {
    const nodes = [node("a"), node("b")];
    const running = [
      task("web", {}, "a", "running"),
      task("db", {}, "b", "running"),
      task("db", {}, "b", "running"),
    ];
    expect(placed(schedule([task("web")], nodes, running))).toEqual(["b"]);
    expect(placed(schedule([task("api")], nodes, running))).toEqual(["a"]);
  });

  it("leaves out nodes that are down, drained or paused, and says so", () => {
    const nodes = [
      node("a", { state: "down" }),
      node("b", { availability: "drain" }),
      node("c", { availability: "pause" }),
    ];
    expect(placed(schedule([task("web")], nodes, []))).toEqual([
      "pending: no suitable node: 1 is not ready, 1 is drained, 1 is paused",
    ]);
  });

  it("reserves CPU and memory, and reads like `service ps` when nothing fits", () => {
    const nodes = [node("a", { memory: 1 }), node("b", { memory: 1 }), node("c", { availability: "drain" })];
    const big = { Resources: { Reservations: { MemoryBytes: 2 * GiB } } };
    expect(placed(schedule([task("web", big)], nodes, []))).toEqual([
      "pending: no suitable node: 2 nodes lack memory, 1 is drained",
    ]);
    const half = { Resources: { Reservations: { NanoCPUs: 1.5e9 } } };
    const d = placed(
      schedule([task("cpu", half), task("cpu", half), task("cpu", half)], [node("a"), node("b")], []),
    );
    expect(d.slice(0, 2).sort()).toEqual(["a", "b"]);
    expect(d[2]).toBe("pending: no suitable node: 2 nodes lack CPU");
  });

  it("honours placement constraints on role, hostname, labels and platform", () => {
    const nodes = [node("m", { role: "manager" }), node("w", { labels: { zone: "east" } })];
    const on = (c: string) => placed(schedule([task("s", { Placement: { Constraints: [c] } })], nodes, []));
    expect(on("node.role==manager")).toEqual(["m"]);
    expect(on("node.role!=manager")).toEqual(["w"]);
    expect(on("node.labels.zone==east")).toEqual(["w"]);
    expect(on("node.hostname==host-m")).toEqual(["m"]);
    expect(on("node.platform.os==linux")).toHaveLength(1);
    expect(on("node.labels.zone==west")[0]).toContain("2 do not satisfy the constraints");
  });

  it("refuses constraint syntax it does not know, saying what to write", () => {
    expect(() => parseConstraint("node.role=manager")).toThrow(/KEY==VALUE/);
    expect(() => parseConstraint("node.colour==red")).toThrow(/unknown key node.colour/);
  });

  it("does not put two tasks publishing the same host-mode port on one node", () => {
    const spec = { Endpoint: { Ports: [{ PublishMode: "host", PublishedPort: 8080, Protocol: "tcp" }] } };
    const d = placed(
      schedule([task("web", spec), task("web", spec), task("web", spec)], [node("a"), node("b")], []),
    );
    expect(d.slice(0, 2).sort()).toEqual(["a", "b"]);
    expect(d[2]).toBe("pending: no suitable node: 2 already have the host port in use");
  });
});
