// networkState (manager/allocator/state.ts): the contract agents get, as a pure function of the
// store: networks, node endpoints with their underlay address, placed live task endpoints with
// their names and aliases (running only when running and meant to), services' VIPs and ports.
import { describe, expect, it } from "vitest";
import { ClusterStore, localProposer } from "../../manager/store/store.js";
import type { TaskObject } from "../../manager/store/types.js";
import { ControlApi } from "../../manager/controlapi/control.js";
import { ClusterNetworksApi } from "../../manager/controlapi/networks.js";
import { allocatePass } from "../../manager/allocator/loop.js";
import { networkState } from "../../manager/allocator/state.js";
import { taskSpecOf } from "../../manager/orchestrator/reconcile.js";
import { schedule } from "../../manager/scheduler/scheduler.js";

async function cluster() {
  const store = new ClusterStore();
  store.setProposer(localProposer(store));
  await store.update((tx) => {
    for (const [id, addr] of [
      ["n1", "192.168.50.1"],
      ["n2", "192.168.50.2"],
    ])
      tx.create("nodes", {
        ID: id,
        Spec: { Role: "worker", Availability: "active" },
        Description: {
          Hostname: id,
          Platform: { Architecture: "x86_64", OS: "linux" },
          Resources: { NanoCPUs: 2e9, MemoryBytes: 2 ** 32 },
        },
        Status: { State: "ready", Addr: addr },
      });
  });
  await allocatePass(store, { ensureIngress: true });
  const made = await new ClusterNetworksApi(store).create({
    Name: "appnet",
    Driver: "overlay",
    Attachable: true,
    IPAM: { Config: [{ Subnet: "10.10.0.0/24" }] },
  });
  const appnet = (await made!).Id;
  const control = new ControlApi(store);
  const { ID } = await control.createService({
    Name: "web",
    TaskTemplate: { ContainerSpec: { Image: "busybox" }, Networks: [{ Target: "appnet", Aliases: ["www"] }] },
    Mode: { Replicated: { Replicas: 2 } },
    EndpointSpec: { Ports: [{ PublishedPort: 8080, TargetPort: 80 }] },
  });
  const service = store.view((tx) => tx.get("services", ID))!;
  const tasks: string[] = [];
  await store.update((tx) => {
    for (const [slot, node, state] of [
      [1, "n1", "running"],
      [2, "n2", "starting"],
      [3, "", "pending"],
    ] as const)
      tasks.push(
        tx.create("tasks", {
          ServiceID: ID,
          ServiceName: "web",
          Slot: slot,
          NodeID: "",
          Spec: taskSpecOf(service),
          Status: { Timestamp: "", State: "new", Message: "created" },
          DesiredState: "running",
          ...(node ? { _node: node, _state: state } : {}),
        } as unknown as Omit<TaskObject, "ID" | "Meta">).ID,
      );
  });
  await allocatePass(store);
  await store.update((tx) => {
    for (const id of tasks) {
      const t = tx.get("tasks", id) as TaskObject & {
        _node?: string;
        _state?: TaskObject["Status"]["State"];
      };
      const { _node, _state, ...rest } = t;
      if (_node) tx.update("tasks", { ...rest, NodeID: _node, Status: { ...t.Status, State: _state! } });
    }
  });
  await allocatePass(store);
  return { store, appnet, serviceId: ID, tasks };
}

describe("networkState", () => {
  it("turns the store into the agents' contract", async () => {
    const { store, appnet, serviceId, tasks } = await cluster();
    const s = store.view((tx) => networkState(tx, 42));
    const ingress = s.networks.find((n) => n.ingress)!;
    expect(s.version).toBe(42);
    expect(s.networks).toEqual(
      expect.arrayContaining([
        { id: appnet, name: "appnet", vni: 4097, subnet: "10.10.0.0/24", ingress: false, attachable: true },
        {
          id: ingress.id,
          name: "ingress",
          vni: 4096,
          subnet: "10.0.0.0/24",
          ingress: true,
          attachable: false,
        },
      ]),
    );
    // Both nodes on ingress, both on appnet (each holds a task there), with their underlay address.
    expect(
      s.nodes.map((n) => [n.networkId === appnet ? "appnet" : "ingress", n.nodeId, n.hostAddr]).sort(),
    ).toEqual([
      ["appnet", "n1", "192.168.50.1"],
      ["appnet", "n2", "192.168.50.2"],
      ["ingress", "n1", "192.168.50.1"],
      ["ingress", "n2", "192.168.50.2"],
    ]);
    expect(s.nodes.every((n) => /^10\.(10|0)\.0\.\d+$/.test(n.address))).toBe(true);
    // The unplaced task has addresses but lives nowhere yet: not in the state.
    const onAppnet = s.tasks.filter((t) => t.networkId === appnet);
    expect(onAppnet.map((t) => t.taskId).sort()).toEqual([tasks[0], tasks[1]].sort());
    const t1 = onAppnet.find((t) => t.taskId === tasks[0])!;
    expect(t1).toMatchObject({
      serviceId,
      nodeId: "n1",
      hostAddr: "192.168.50.1",
      names: [`web.1.${tasks[0]}`, "www"],
      running: true,
    });
    expect(t1.address).toMatch(/^10\.10\.0\.\d+$/);
    expect(onAppnet.find((t) => t.taskId === tasks[1])!.running).toBe(false);
    expect(s.tasks.filter((t) => t.networkId === ingress.id).map((t) => t.names)).toEqual(
      expect.arrayContaining([[`web.1.${tasks[0]}`]]),
    );
    // Every address is unique per network.
    for (const n of s.networks) {
      const addrs = [
        ...s.nodes.filter((x) => x.networkId === n.id).map((x) => x.address),
        ...s.tasks.filter((x) => x.networkId === n.id).map((x) => x.address),
        ...s.services.flatMap((x) => x.vips.filter((v) => v.networkId === n.id).map((v) => v.address)),
      ];
      expect(new Set(addrs).size).toBe(addrs.length);
    }
    expect(s.services).toEqual([
      {
        id: serviceId,
        name: "web",
        mode: "vip",
        vips: [
          { networkId: appnet, address: "10.10.0.2" },
          { networkId: ingress.id, address: expect.stringMatching(/^10\.0\.0\.\d+$/) },
        ],
        ports: [{ protocol: "tcp", publishedPort: 8080, targetPort: 80 }],
      },
    ]);
    // An ended task leaves the state (its address may be given again).
    await store.update((tx) => {
      const t = tx.get("tasks", tasks[0])!;
      tx.update("tasks", { ...t, Status: { ...t.Status, State: "failed" } });
    });
    expect(store.view((tx) => networkState(tx, 43)).tasks.some((t) => t.taskId === tasks[0])).toBe(false);
  });
});

describe("the allocator alone moves new tasks to pending", () => {
  it("addresses given: pending, in one transaction for the pass, networkless tasks too; none left: new with the reason; the scheduler places what is pending", async () => {
    const store = new ClusterStore();
    const local = localProposer(store);
    let proposals = 0;
    store.setProposer((command) => {
      proposals++;
      return local(command);
    });
    const node = {
      ID: "n1",
      Spec: { Role: "worker" as const, Availability: "active" as const },
      Description: {
        Hostname: "n1",
        Platform: { Architecture: "x86_64", OS: "linux" },
        Resources: { NanoCPUs: 2e9, MemoryBytes: 2 ** 32 },
      },
      Status: { State: "ready" as const, Addr: "" },
    };
    await store.update((tx) => void tx.create("nodes", node));
    await allocatePass(store, { ensureIngress: true });
    const made = await new ClusterNetworksApi(store).create({
      Name: "net1",
      Driver: "overlay",
      IPAM: { Config: [{ Subnet: "10.20.0.0/29" }] },
    });
    const net1 = (await made!).Id;
    // A /29 has .2 to .6: one is left for the node's own endpoint, so four tasks get one.
    const ids: string[] = [];
    await store.update((tx) => {
      for (let slot = 1; slot <= 6; slot++)
        ids.push(
          tx.create("tasks", {
            ServiceID: "s",
            Slot: slot,
            NodeID: "",
            Spec: slot === 6 ? {} : { Networks: [{ Target: net1 }] },
            Status: {
              Timestamp: new Date(Date.now() + slot).toISOString(),
              State: "new",
              Message: "created",
            },
            DesiredState: "running",
          }).ID,
        );
    });
    const before = proposals;
    const r = await allocatePass(store);
    expect(proposals - before).toBe(1);
    expect(r).toMatchObject({ tasks: 5, waiting: 1 });
    const tasks = store.view((tx) => ids.map((id) => tx.get("tasks", id)!));
    expect(tasks.map((t) => t.Status.State)).toEqual([
      "pending",
      "pending",
      "pending",
      "pending",
      "new",
      "pending",
    ]);
    expect(tasks[0].Status.Message).toBe("pending task scheduling");
    expect(tasks[0].NetworksAttachments?.[0].Addresses).toEqual(["10.20.0.2/29"]);
    expect(tasks[4].Status.Err).toBe("no free address in net1");
    expect(tasks[4].NetworksAttachments).toBeUndefined();
    expect(tasks[5].NetworksAttachments).toBeUndefined();
    // The scheduler places whatever pending task it is given.
    const pending = tasks.filter((t) => t.Status.State === "pending");
    const nodes = store.view((tx) => tx.list("nodes"));
    expect(schedule(pending, nodes, [])).toEqual(pending.map((t) => ({ taskId: t.ID, nodeId: "n1" })));
  });
});
