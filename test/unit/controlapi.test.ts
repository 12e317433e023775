// The control API's membership rules: the quorum rule for demotions, node removal (its tasks
// orphaned so they are replaced), join token rotation and `swarm update`'s spec, and a service
// rollback, against a store with a local proposer.
import { beforeEach, describe, expect, it } from "vitest";
import { ControlApi, demoteRefusal, nextClusterSpec, quorumOf } from "../../manager/controlapi/control.js";
import { ClusterStore, localProposer } from "../../manager/store/store.js";
import type { NodeObject } from "../../manager/store/types.js";
import { createRootCA, roleForToken } from "../../manager/ca/ca.js";

function node(
  id: string,
  role: "manager" | "worker",
  state: NodeObject["Status"]["State"] = "ready",
): NodeObject {
  return {
    ID: id,
    Meta: { Version: { Index: 1 }, CreatedAt: "", UpdatedAt: "" },
    Spec: { Role: role, Availability: "active" },
    Description: {
      Hostname: id,
      Platform: { Architecture: "x86_64", OS: "linux" },
      Resources: { NanoCPUs: 2e9, MemoryBytes: 2 ** 32 },
    },
    Status: { State: state, Addr: "" },
    ...(role === "manager" ? { ManagerStatus: { Reachability: "reachable" as const, Addr: "" } } : {}),
  };
}

describe("the quorum rule for demotions", () => {
  it("quorum is a majority", () => {
    expect([1, 2, 3, 4, 5].map(quorumOf)).toEqual([1, 2, 2, 3, 3]);
  });

  it("refuses the last manager", () => {
    const m = node("m1", "manager");
    expect(demoteRefusal([m, node("w", "worker")], m)).toContain("without a manager");
  });

  it("three managers all ready: one may go", () => {
    const ms = [node("m1", "manager"), node("m2", "manager"), node("m3", "manager")];
    expect(demoteRefusal(ms, ms[0])).toBeUndefined();
  });

  it("three managers, one down: demoting a ready one leaves 1 of 2 reachable, refused", () => {
    const ms = [node("m1", "manager"), node("m2", "manager"), node("m3", "manager", "down")];
    expect(demoteRefusal(ms, ms[0])).toBe(
      "demoting node m1 would leave 1 of 2 managers reachable, below the quorum of 2; bring the other managers back first",
    );
    // Demoting the down one is fine: 2 of 2 left reachable.
    expect(demoteRefusal(ms, ms[2])).toBeUndefined();
  });

  it("two managers ready: one may go (1 of 1 left)", () => {
    const ms = [node("m1", "manager"), node("m2", "manager")];
    expect(demoteRefusal(ms, ms[1])).toBeUndefined();
  });

  it("a group that lost its quorum cannot change its managers at all", () => {
    const ms = [node("m1", "manager"), node("m2", "manager", "down"), node("m3", "manager", "down")];
    expect(demoteRefusal(ms, ms[2])).toContain("only 1 of 3 managers are reachable, below the quorum of 2");
  });

  it("five managers, two down: a ready one cannot go (2 of 4), a down one can", () => {
    const ms = [
      node("m1", "manager"),
      node("m2", "manager"),
      node("m3", "manager"),
      node("m4", "manager", "down"),
      node("m5", "manager", "down"),
    ];
    expect(demoteRefusal(ms, ms[0])).toContain("2 of 4 managers reachable, below the quorum of 3");
    expect(demoteRefusal(ms, ms[4])).toBeUndefined();
  });

  it("a worker is not a demotion", () => {
    expect(demoteRefusal([node("w", "worker")], node("w", "worker"))).toBeUndefined();
  });
});

describe("swarm update's spec", () => {
  const current = { Name: "default", Orchestration: { TaskHistoryRetentionLimit: 5 } };

  it("takes the history limit, heartbeat, labels and cert expiry; zero values sent back change nothing", () => {
    const next = nextClusterSpec(current, {
      Name: "default",
      Labels: { a: "b" },
      Orchestration: { TaskHistoryRetentionLimit: 10 },
      Raft: { ElectionTick: 0, HeartbeatTick: 0 },
      Dispatcher: { HeartbeatPeriod: 2e9 },
      CAConfig: { NodeCertExpiry: 24 * 3600e9 },
      TaskDefaults: {},
      EncryptionConfig: { AutoLockManagers: false },
    });
    expect(next).toEqual({
      Name: "default",
      Labels: { a: "b" },
      Orchestration: { TaskHistoryRetentionLimit: 10 },
      Dispatcher: { HeartbeatPeriod: 2e9 },
      CAConfig: { NodeCertExpiry: 24 * 3600e9 },
    });
  });

  it("refuses what shoal does not do, naming it", () => {
    expect(() => nextClusterSpec(current, { EncryptionConfig: { AutoLockManagers: true } })).toThrow(
      /AutoLockManagers \(--autolock\) is not supported/,
    );
    expect(() => nextClusterSpec(current, { Raft: { SnapshotInterval: 5000 } })).toThrow(
      /--snapshot-interval/,
    );
    expect(() => nextClusterSpec(current, { Orchestration: { TaskHistoryRetentionLimit: -1 } })).toThrow(
      /task history limit/,
    );
    expect(() => nextClusterSpec(current, { Name: "other" })).toThrow(/cannot be renamed/);
  });

  it("refuses fields a cluster spec does not have instead of keeping and ignoring them", () => {
    expect(() => nextClusterSpec(current, { Bogus: 1 })).toThrow(/no field Bogus/);
    expect(() => nextClusterSpec(current, { Dispatcher: { HeartbeatPeriod: 2e9, Jitter: 1 } })).toThrow(
      /no field Dispatcher\.Jitter/,
    );
    // The docker CLI's swarm update body (every part, zero values included) still passes.
    expect(() =>
      nextClusterSpec(current, {
        Name: "default",
        Labels: null,
        Orchestration: {},
        Raft: { ElectionTick: 0, HeartbeatTick: 0 },
        Dispatcher: {},
        CAConfig: {},
        TaskDefaults: {},
        EncryptionConfig: { AutoLockManagers: false },
      }),
    ).not.toThrow();
  });
});

describe("ControlApi membership and updates", () => {
  let store: ClusterStore;
  let api: ControlApi;
  let caPem: string;

  beforeEach(async () => {
    store = new ClusterStore();
    store.setProposer(localProposer(store));
    api = new ControlApi(store, "m1");
    caPem ??= (await createRootCA()).certPem;
    await store.update((tx) => {
      tx.create("clusters", {
        ID: "c",
        Spec: { Name: "default" },
        JoinTokens: { Worker: "SWMTKN-1-old-worker", Manager: "SWMTKN-1-old-manager" },
        RootCA: { CACert: caPem },
      });
      for (const n of [node("m1", "manager"), node("w1", "worker"), node("w2", "worker", "down")]) {
        const { ID, Meta: _m, ...rest } = n;
        tx.create("nodes", { ID, ...rest });
      }
    });
  });

  it("rotates the worker token only, and the old one no longer admits", async () => {
    const c = store.view((tx) => tx.get("clusters", "c"));
    await api.updateCluster(c?.Meta.Version.Index ?? 0, c?.Spec, { rotateWorkerToken: true });
    const after = store.view((tx) => tx.get("clusters", "c"));
    expect(after?.JoinTokens?.Worker).not.toBe("SWMTKN-1-old-worker");
    expect(after?.JoinTokens?.Worker).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    expect(after?.JoinTokens?.Manager).toBe("SWMTKN-1-old-manager");
    const tokens = after?.JoinTokens ?? { Worker: "", Manager: "" };
    expect(roleForToken(tokens.Worker, caPem, tokens)).toBe("worker");
    const older = `SWMTKN-1-${tokens.Worker.split("-")[2]}-${"0".repeat(25)}`;
    expect(() => roleForToken(older, caPem, tokens)).toThrow(/rotated/);
    // The version read before is stale now.
    await expect(api.updateCluster(c?.Meta.Version.Index ?? 0, c?.Spec)).rejects.toMatchObject({
      status: 409,
    });
  });

  it("promotes a worker, refuses demoting the only manager", async () => {
    const w1 = api.inspectNode("w1");
    await api.updateNode("w1", w1.Version.Index, { ...w1.Spec, Role: "manager" });
    expect(api.inspectNode("w1").Spec.Role).toBe("manager");
    const self = api.inspectNode("self");
    expect(self.ID).toBe("m1");
    // Two managers now, both ready: the first may be demoted.
    await api.updateNode("self", self.Version.Index, { ...self.Spec, Role: "worker" });
    expect(api.inspectNode("m1").Spec.Role).toBe("worker");
    const last = api.inspectNode("w1");
    await expect(
      api.updateNode("w1", last.Version.Index, { ...last.Spec, Role: "worker" }),
    ).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("without a manager"),
    });
  });

  it("node rm: a manager and a ready node are refused; a down node goes and its tasks are orphaned", async () => {
    await expect(api.removeNode("self", false)).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("demote it first with `node demote m1`"),
    });
    await expect(api.removeNode("w1", false)).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("is not down and can't be removed"),
    });
    await expect(api.removeNode("nope", false)).rejects.toMatchObject({ status: 404 });
    await store.update((tx) => {
      tx.create("tasks", {
        ID: "t1",
        ServiceID: "s",
        Slot: 1,
        NodeID: "w2",
        Spec: {},
        Status: { Timestamp: "", State: "running", Message: "" },
        DesiredState: "running",
      });
    });
    await api.removeNode("w2", false);
    expect(store.view((tx) => tx.get("nodes", "w2"))).toBeUndefined();
    const t = store.view((tx) => tx.get("tasks", "t1"));
    expect(t?.DesiredState).toBe("shutdown");
    expect(t?.Status.State).toBe("orphaned");
    expect(t?.Status.Message).toBe("node w2 was removed from the cluster");
    // --force removes a live worker.
    await api.removeNode("w1", true);
    expect(api.listNodes().map((n) => n.ID)).toEqual(["m1"]);
  });

  it("service rollback goes back to the previous spec; without one it is refused", async () => {
    const spec = {
      Name: "web",
      TaskTemplate: { ContainerSpec: { Image: "busybox:1" } },
      Mode: { Replicated: { Replicas: 1 } },
    };
    await api.createService(spec);
    let s = api.inspectService("web");
    await expect(api.updateService("web", s.Version.Index, s.Spec, { rollback: "previous" })).rejects.toThrow(
      /no previous spec/,
    );
    await api.updateService("web", s.Version.Index, {
      ...s.Spec,
      TaskTemplate: { ContainerSpec: { Image: "busybox:2" } },
    });
    s = api.inspectService("web");
    expect(s.PreviousSpec?.TaskTemplate).toEqual({ ContainerSpec: { Image: "busybox:1" } });
    await api.updateService("web", s.Version.Index, s.Spec, { rollback: "previous" });
    expect(api.inspectService("web").Spec.TaskTemplate).toEqual({ ContainerSpec: { Image: "busybox:1" } });
  });
});
