// The cluster store: transactions, optimistic concurrency checked at apply, unique names,
// watch events, snapshots, and that every member applying the same log ends in the same state.
import { describe, expect, it } from "vitest";
import { ClusterStore, encodeBatch, localProposer } from "../../manager/store/store.js";
import type { ServiceObject, StoreEvent, TaskObject } from "../../manager/store/types.js";
import { isShoalError } from "../../shared/errors.js";

function store(): ClusterStore {
  const s = new ClusterStore();
  s.setProposer(localProposer(s));
  return s;
}

const serviceSpec = (name: string, replicas = 1): ServiceObject["Spec"] => ({
  Name: name,
  TaskTemplate: { ContainerSpec: { Image: "busybox" } },
  Mode: { Replicated: { Replicas: replicas } },
});

function task(
  serviceId: string,
  slot: number,
  state: TaskObject["Status"]["State"],
  desired: TaskObject["DesiredState"],
) {
  return {
    ServiceID: serviceId,
    Slot: slot,
    NodeID: "n1",
    Spec: {},
    Status: { Timestamp: "", State: state, Message: "" },
    DesiredState: desired,
  };
}

async function refusal(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isShoalError(e)) return { status: e.status, message: e.message };
    throw e;
  }
  throw new Error("expected the write to be refused");
}

describe("cluster store", () => {
  it("creates objects with ids and versions, finds them by id and by name", async () => {
    const s = store();
    let id = "";
    const index = await s.update((tx) => {
      id = tx.create("services", { Spec: serviceSpec("web", 3) }).ID;
    });
    expect(id).toMatch(/^[a-z0-9]{25}$/);
    const web = s.view((tx) => tx.byName("services", "web"));
    expect(web?.ID).toBe(id);
    expect(web?.Meta.Version.Index).toBe(index);
    expect(web?.Spec.Mode.Replicated?.Replicas).toBe(3);
    // Reads are copies: changing one changes nothing in the store.
    if (web) web.Spec.Name = "changed";
    expect(s.view((tx) => tx.get("services", id))?.Spec.Name).toBe("web");
  });

  it("a writer with a stale version is refused with 409 and its whole batch is dropped", async () => {
    const s = store();
    await s.update((tx) => void tx.create("services", { Spec: serviceSpec("web") }));
    const read1 = s.view((tx) => tx.byName("services", "web")) as ServiceObject;
    const read2 = structuredClone(read1);
    read1.Spec.Mode = { Replicated: { Replicas: 5 } };
    await s.update((tx) => tx.update("services", read1));
    read2.Spec.Mode = { Replicated: { Replicas: 9 } };
    const r = await refusal(
      s.update((tx) => {
        tx.create("networks", { Spec: { Name: "side-effect" } });
        tx.update("services", read2);
      }),
    );
    expect(r.status).toBe(409);
    expect(r.message).toMatch(/out of sequence.*read it again/);
    expect(s.view((tx) => tx.byName("services", "web"))?.Spec.Mode.Replicated?.Replicas).toBe(5);
    expect(s.view((tx) => tx.byName("networks", "side-effect"))).toBeUndefined();
  });

  it("names are unique per table, and a removed or renamed object frees its name", async () => {
    const s = store();
    await s.update((tx) => void tx.create("services", { Spec: serviceSpec("web") }));
    const dup = await refusal(s.update((tx) => void tx.create("services", { Spec: serviceSpec("web") })));
    expect(dup.status).toBe(409);
    expect(dup.message).toContain("web");
    // The same name in another table is fine.
    await s.update((tx) => void tx.create("networks", { Spec: { Name: "web" } }));
    const web = s.view((tx) => tx.byName("services", "web")) as ServiceObject;
    web.Spec.Name = "web2";
    await s.update((tx) => tx.update("services", web));
    await s.update((tx) => void tx.create("services", { Spec: serviceSpec("web") }));
    const again = s.view((tx) => tx.byName("services", "web")) as ServiceObject;
    await s.update((tx) => tx.delete("services", again.ID, again.Meta.Version.Index));
    expect(s.view((tx) => tx.list("services")).map((x) => x.Spec.Name)).toEqual(["web2"]);
  });

  it("reads inside a transaction see its own writes", async () => {
    const s = store();
    await s.update((tx) => {
      const svc = tx.create("services", { Spec: serviceSpec("api", 2) });
      tx.create("tasks", task(svc.ID, 1, "new", "running"));
      tx.create("tasks", task(svc.ID, 2, "new", "running"));
      expect(tx.tasksOfService(svc.ID)).toHaveLength(2);
    });
    const svc = s.view((tx) => tx.byName("services", "api")) as ServiceObject;
    expect(
      s
        .view((tx) => tx.tasksOfService(svc.ID))
        .map((t) => t.Slot)
        .sort(),
    ).toEqual([1, 2]);
    expect(s.view((tx) => tx.tasksOfNode("n1"))).toHaveLength(2);
  });

  it("watchers get every batch's events in order; a refused batch sends none", async () => {
    const s = store();
    const seen: StoreEvent[][] = [];
    const stop = s.subscribe((events) => seen.push(events));
    await s.update((tx) => void tx.create("services", { Spec: serviceSpec("web") }));
    const web = s.view((tx) => tx.byName("services", "web")) as ServiceObject;
    const stale = structuredClone(web);
    web.Spec.Mode = { Replicated: { Replicas: 2 } };
    await s.update((tx) => tx.update("services", web));
    await refusal(s.update((tx) => tx.update("services", stale)));
    await s.update((tx) => tx.delete("services", web.ID));
    stop();
    expect(seen.map((b) => b.map((e) => `${e.op}:${e.table}`))).toEqual([
      ["create:services"],
      ["update:services"],
      ["delete:services"],
    ]);
    expect((seen[1][0].old as ServiceObject).Spec.Mode.Replicated?.Replicas).toBe(1);
    expect(seen[1][0].index).toBeGreaterThan(seen[0][0].index);
  });

  it("snapshot and restore give the same state, and watchers are told to read again", async () => {
    const a = store();
    await a.update((tx) => {
      const svc = tx.create("services", { Spec: serviceSpec("web") });
      tx.create("tasks", task(svc.ID, 1, "running", "running"));
      tx.create("nodes", {
        Spec: { Role: "manager", Availability: "active" },
        Description: {
          Hostname: "m1",
          Platform: { Architecture: "x86_64", OS: "linux" },
          Resources: { NanoCPUs: 2e9, MemoryBytes: 1 << 30 },
        },
        Status: { State: "ready", Addr: "10.0.0.1" },
      });
    });
    const b = new ClusterStore();
    const seen: StoreEvent[][] = [];
    b.subscribe((e) => seen.push(e));
    b.restore(a.snapshot());
    expect(seen).toEqual([[]]);
    expect(b.index).toBe(a.index);
    expect(Buffer.from(b.snapshot())).toEqual(Buffer.from(a.snapshot()));
    expect(b.view((tx) => tx.byName("services", "web"))?.ID).toBe(
      a.view((tx) => tx.byName("services", "web"))?.ID,
    );
  });

  it("members applying the same log, refusals included, end in the same state", async () => {
    const leader = store();
    const log: Uint8Array[] = [];
    leader.setProposer(async (command) => {
      log.push(command);
      return leader.apply(log.length, command);
    });
    await leader.update((tx) => void tx.create("services", { Spec: serviceSpec("a") }));
    const a = leader.view((tx) => tx.byName("services", "a")) as ServiceObject;
    const stale = structuredClone(a);
    a.Spec.Mode = { Replicated: { Replicas: 4 } };
    await leader.update((tx) => tx.update("services", a));
    await refusal(leader.update((tx) => tx.update("services", stale)));
    await refusal(leader.update((tx) => void tx.create("services", { Spec: serviceSpec("a") })));
    await leader.update((tx) => void tx.create("configs", { Spec: { Name: "c", Data: "eA==" } }));
    const follower = new ClusterStore();
    log.forEach((command, i) => follower.apply(i + 1, command));
    expect(Buffer.from(follower.snapshot())).toEqual(Buffer.from(leader.snapshot()));
    // An empty command (a new leader's no-op entry) changes nothing.
    expect(follower.apply(log.length + 1, new Uint8Array(0))).toBeUndefined();
  });

  it("a batch that deletes and recreates a name in one go is applied whole", async () => {
    const s = store();
    await s.update((tx) => void tx.create("networks", { Spec: { Name: "net" } }));
    const old = s.view((tx) => tx.byName("networks", "net"));
    await s.update((tx) => {
      tx.delete("networks", old?.ID as string);
      tx.create("networks", { Spec: { Name: "net" } });
    });
    const now = s.view((tx) => tx.byName("networks", "net"));
    expect(now?.ID).not.toBe(old?.ID);
    expect(encodeBatch([]).length).toBeGreaterThan(0);
  });

  it("keeps a bounded task history per slot", async () => {
    const s = store();
    let svcId = "";
    await s.update((tx) => {
      svcId = tx.create("services", { Spec: serviceSpec("web") }).ID;
    });
    for (let i = 0; i < 6; i++)
      await s.update((tx) => void tx.create("tasks", task(svcId, 1, "failed", "shutdown")));
    await s.update((tx) => void tx.create("tasks", task(svcId, 1, "running", "running")));
    await s.update((tx) => void tx.create("tasks", task(svcId, 2, "running", "running")));
    const prune = s.tasksBeyondHistory(5);
    // Slot 1: one live + 6 dead; keeping 5 in all leaves 4 dead, so the 2 oldest go.
    expect(prune).toHaveLength(2);
    const all = s
      .view((tx) => tx.tasksOfService(svcId))
      .sort((x, y) => x.Meta.Version.Index - y.Meta.Version.Index);
    expect(prune).toEqual([all[0].ID, all[1].ID]);
  });
});
