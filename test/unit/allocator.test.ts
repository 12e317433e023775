// The allocator (manager/allocator): VXLAN ids and subnets unique, an overlapping --subnet
// refused naming the network, VIPs and routing-mesh ports, exhaustion (the task waits with "no
// free address in <network>" and gets one once a task ends), node endpoints, and no leaks after
// many creates, scales and removals. Against a store with a local proposer; tasks are written
// as the orchestrator writes them.
import { beforeEach, describe, expect, it } from "vitest";
import { ClusterStore, localProposer } from "../../manager/store/store.js";
import type { ServiceObject, TaskObject } from "../../manager/store/types.js";
import { ControlApi } from "../../manager/controlapi/control.js";
import { ClusterNetworksApi } from "../../manager/controlapi/networks.js";
import { Allocations, noFreeAddress } from "../../manager/allocator/allocator.js";
import { allocatePass } from "../../manager/allocator/loop.js";
import { taskSpecOf } from "../../manager/orchestrator/reconcile.js";
import { nodeObject, expectError } from "../helpers/cluster-objects.js";

let store: ClusterStore;
let control: ControlApi;
let nets: ClusterNetworksApi;

async function createNetwork(
  name: string,
  o: { subnet?: string; attachable?: boolean } = {},
): Promise<string> {
  const r = await nets.create({
    Name: name,
    Driver: "overlay",
    Attachable: o.attachable,
    IPAM: o.subnet ? { Driver: "default", Config: [{ Subnet: o.subnet }] } : undefined,
  });
  if (!r) throw new Error("not an overlay create");
  return (await r).Id;
}

async function createService(
  name: string,
  o: {
    networks?: string[];
    replicas?: number;
    publish?: Array<[number, number]>;
    mode?: "vip" | "dnsrr";
  } = {},
): Promise<ServiceObject> {
  const { ID } = await control.createService({
    Name: name,
    TaskTemplate: {
      ContainerSpec: { Image: "busybox" },
      ...(o.networks ? { Networks: o.networks.map((n) => ({ Target: n, Aliases: [`${name}-alias`] })) } : {}),
    },
    Mode: { Replicated: { Replicas: o.replicas ?? 1 } },
    ...(o.publish || o.mode
      ? {
          EndpointSpec: {
            ...(o.mode ? { Mode: o.mode } : {}),
            ...(o.publish ? { Ports: o.publish.map(([p, t]) => ({ PublishedPort: p, TargetPort: t })) } : {}),
          },
        }
      : {}),
  });
  return store.view((tx) => tx.get("services", ID)) as ServiceObject;
}

/** Tasks as the orchestrator makes them: new, the service's spec. */
async function makeTasks(service: ServiceObject, slots: number[]): Promise<string[]> {
  const ids: string[] = [];
  await store.update((tx) => {
    for (const slot of slots)
      ids.push(
        tx.create("tasks", {
          ServiceID: service.ID,
          ServiceName: service.Spec.Name,
          Slot: slot,
          NodeID: "",
          Spec: taskSpecOf(service),
          Status: {
            Timestamp: new Date().toISOString(),
            State: "new",
            Message: "created",
          },
          DesiredState: "running",
        }).ID,
      );
  });
  return ids;
}

async function setTask(id: string, change: Partial<TaskObject> & { state?: TaskObject["Status"]["State"] }) {
  await store.update((tx) => {
    const t = tx.get("tasks", id) as TaskObject;
    const { state, ...rest } = change;
    tx.update("tasks", { ...t, ...rest, Status: { ...t.Status, ...(state ? { State: state } : {}) } });
  });
}

const task = (id: string) => store.view((tx) => tx.get("tasks", id)) as TaskObject;
const network = (name: string) => store.view((tx) => tx.byName("networks", name))!;
const usage = () => store.view((tx) => Allocations.fromStore(tx).usage());

beforeEach(async () => {
  store = new ClusterStore();
  store.setProposer(localProposer(store));
  control = new ControlApi(store, "n1");
  nets = new ClusterNetworksApi(store);
  await store.update((tx) => {
    tx.create("clusters", { ID: "c", Spec: { Name: "default" } });
    tx.create("nodes", nodeObject("n1"));
    tx.create("nodes", nodeObject("n2"));
  });
});

describe("networks: subnets and VXLAN ids", () => {
  it("a leader's first pass makes ingress: 10.0.0.0/24, VXLAN id 4096; other networks get 4097 up and the next free /24", async () => {
    const r = await allocatePass(store, { ensureIngress: true });
    expect(r.ingressCreated).toBe(true);
    const ingress = network("ingress");
    expect(ingress.Spec.Ingress).toBe(true);
    expect(ingress.IPAMOptions?.Configs).toEqual([{ Subnet: "10.0.0.0/24", Gateway: "10.0.0.1" }]);
    expect(ingress.DriverState?.Options?.["com.docker.network.driver.overlay.vxlanid_list"]).toBe("4096");
    expect((await allocatePass(store, { ensureIngress: true })).ingressCreated).toBe(false);

    await createNetwork("a");
    await createNetwork("b");
    await createNetwork("c", { subnet: "10.0.3.0/24" });
    await createNetwork("d");
    const info = ["a", "b", "c", "d"].map((n) => [
      network(n).IPAMOptions?.Configs[0].Subnet,
      network(n).DriverState?.Options?.["com.docker.network.driver.overlay.vxlanid_list"],
    ]);
    expect(info).toEqual([
      ["10.0.1.0/24", "4097"],
      ["10.0.2.0/24", "4098"],
      ["10.0.3.0/24", "4099"],
      ["10.0.4.0/24", "4100"],
    ]);
    // A removed network's subnet and id are free again.
    expect(await nets.remove("b")).toBe(true);
    await createNetwork("e");
    expect(network("e").IPAMOptions?.Configs[0].Subnet).toBe("10.0.2.0/24");
    expect(network("e").DriverState?.Options?.["com.docker.network.driver.overlay.vxlanid_list"]).toBe(
      "4098",
    );
  });

  it("an overlapping --subnet is a 409 naming the network; a duplicate name a 409; bad input a 400", async () => {
    await createNetwork("appnet", { subnet: "10.10.0.0/16" });
    await expectError(
      createNetwork("other", { subnet: "10.10.5.0/24" }),
      "conflict",
      /overlaps network appnet \(10\.10\.0\.0\/16\)/,
    );
    await expectError(createNetwork("wide", { subnet: "10.0.0.0/8" }), "conflict", /overlaps network appnet/);
    await expectError(createNetwork("appnet"), "conflict", /already exists/);
    await expectError(
      createNetwork("bad", { subnet: "10.20.0.1/24" }),
      "invalid",
      /host bits set; the network is 10\.20\.0\.0\/24/,
    );
    await expectError(createNetwork("bad", { subnet: "nonsense" }), "invalid", /IPv4 CIDR/);
    // Ingress's subnet is kept for it even before it exists.
    await createNetwork("auto");
    expect(network("auto").IPAMOptions?.Configs[0].Subnet).toBe("10.0.1.0/24");
    await allocatePass(store, { ensureIngress: true });
    expect(network("ingress").IPAMOptions?.Configs[0].Subnet).toBe("10.0.0.0/24");
  });
});

describe("services: VIPs and routing-mesh ports", () => {
  beforeEach(async () => {
    await allocatePass(store, { ensureIngress: true });
  });

  it("a VIP per network (from .2, after the nodes' endpoints) and one on ingress for a published port", async () => {
    const appnet = await createNetwork("appnet", { subnet: "10.10.0.0/24" });
    const s = await createService("web", { networks: ["appnet"], publish: [[8080, 80]] });
    const ingress = network("ingress").ID;
    expect(s.Spec.TaskTemplate.Networks).toEqual([{ Target: appnet, Aliases: ["web-alias"] }]);
    expect(s.Endpoint?.Ports).toEqual([
      { Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress" },
    ]);
    expect(s.Endpoint?.VirtualIPs).toEqual([
      { NetworkID: appnet, Addr: "10.10.0.2/24" },
      { NetworkID: ingress, Addr: expect.stringMatching(/^10\.0\.0\.\d+\/24$/) },
    ]);
    // The loop leaves a service it has nothing to add to as it is.
    expect((await allocatePass(store)).services).toBe(0);
  });

  it("port 0 gets the next free from 30000; a port another service publishes is a 409 naming it", async () => {
    const a = await createService("a", { publish: [[0, 80]] });
    const b = await createService("b", {
      publish: [
        [0, 80],
        [0, 81],
      ],
    });
    expect(a.Endpoint?.Ports?.[0].PublishedPort).toBe(30000);
    expect(b.Endpoint?.Ports?.map((p) => p.PublishedPort)).toEqual([30001, 30002]);
    await createService("c", { publish: [[8080, 80]] });
    await expectError(
      createService("d", { publish: [[8080, 80]] }),
      "conflict",
      /port '8080' is already in use by service 'c' \(\w+\) as an ingress port/,
    );
    expect(store.view((tx) => tx.byName("services", "d"))).toBeUndefined();
    // An update keeps the port it was given.
    await control.updateService(a.ID, a.Meta.Version.Index, { ...a.Spec, Labels: { x: "y" } });
    const a2 = store.view((tx) => tx.get("services", a.ID))!;
    expect(a2.Endpoint?.Ports?.[0].PublishedPort).toBe(30000);
    expect(a2.Endpoint?.VirtualIPs).toEqual(a.Endpoint?.VirtualIPs);
    // Removed services give their ports back.
    await control.removeService("c");
    await createService("d", { publish: [[8080, 80]] });
  });

  it("dnsrr has no VIP; dnsrr with a mesh port is a 400; an unknown network a 404; ingress cannot be named", async () => {
    await createNetwork("appnet");
    const s = await createService("rr", { networks: ["appnet"], mode: "dnsrr" });
    expect(s.Endpoint?.VirtualIPs).toBeUndefined();
    await expectError(createService("x", { mode: "dnsrr", publish: [[80, 80]] }), "invalid", /dnsrr/);
    await expectError(createService("y", { networks: ["nope"] }), "not_found", /network nope not found/);
    await expectError(createService("z", { networks: ["ingress"] }), "invalid", /ingress/);
  });

  it("network rm: refused while a service uses it (409 listing them), or a task still runs on it; ingress while ports are published", async () => {
    await createNetwork("appnet");
    await createService("web", { networks: ["appnet"] });
    const api = await createService("api", { networks: ["appnet"], publish: [[8080, 80]] });
    await expectError(nets.remove("appnet"), "conflict", /network appnet is in use by services api, web/);
    await expectError(
      nets.remove("ingress"),
      "conflict",
      /ingress network ingress cannot be removed because service api publishes/,
    );
    const [t] = await makeTasks(api, [1]);
    await allocatePass(store);
    await control.removeService("web");
    await control.removeService("api");
    await expectError(nets.remove("appnet"), "conflict", /in use by task api\.1\./);
    await setTask(t, { state: "shutdown", DesiredState: "shutdown" });
    expect(await nets.remove("appnet")).toBe(true);
    expect(await nets.remove("appnet")).toBe(false);
    expect(await nets.remove("ingress")).toBe(true);
  });
});

describe("tasks and nodes", () => {
  beforeEach(async () => {
    await allocatePass(store, { ensureIngress: true });
  });

  it("an exhausted subnet: the task waits with 'no free address in <network>', and gets one when a task ends", async () => {
    // A /29: .2 to .6 are free (5): one VIP, one left for each of the two ready nodes' own
    // endpoints (without it a node never makes the network and its tasks wait forever), two tasks.
    await createNetwork("small", { subnet: "10.30.0.0/29" });
    const s = await createService("web", { networks: ["small"], replicas: 5 });
    expect(s.Endpoint?.VirtualIPs?.[0].Addr).toBe("10.30.0.2/29");
    const ids = await makeTasks(s, [1, 2, 3, 4, 5]);
    const r = await allocatePass(store);
    expect(r.tasks).toBe(2);
    expect(r.waiting).toBe(3);
    const addrs = ids.map((id) => task(id).NetworksAttachments?.[0]?.Addresses[0]);
    expect(addrs.slice(0, 2)).toEqual(["10.30.0.3/29", "10.30.0.4/29"]);
    expect(task(ids[2]).NetworksAttachments).toBeUndefined();
    expect(task(ids[2]).Status.Err).toBe(noFreeAddress("small"));
    expect(task(ids[2]).Status.State).toBe("new");
    // A scale down: the task in slot 2 ends; the first waiting task gets its address.
    await setTask(ids[1], { state: "shutdown", DesiredState: "shutdown" });
    await allocatePass(store);
    expect(task(ids[2]).NetworksAttachments?.[0].Addresses).toEqual(["10.30.0.4/29"]);
    expect(task(ids[2]).NetworksAttachments?.[0].Aliases).toEqual(["web-alias"]);
    expect(task(ids[2]).Status.Err).toBeUndefined();
  });

  it("a task publishing through the mesh is on ingress too; nodes get their own endpoints: ingress for every ready node, others where a task is", async () => {
    const appnet = await createNetwork("appnet", { subnet: "10.10.0.0/24" });
    const ingress = network("ingress").ID;
    const s = await createService("web", { networks: ["appnet"], publish: [[8080, 80]] });
    const [t] = await makeTasks(s, [1]);
    await allocatePass(store);
    expect(task(t).NetworksAttachments?.map((a) => a.Network.ID)).toEqual([appnet, ingress]);
    const nodes = () => store.view((tx) => tx.list("nodes"));
    expect(nodes().map((n) => n.Attachments?.map((a) => a.Network.ID))).toEqual([[ingress], [ingress]]);
    await setTask(t, { NodeID: "n2", state: "assigned" });
    await allocatePass(store);
    const n2 = nodes().find((n) => n.ID === "n2")!;
    expect(n2.Attachments?.map((a) => a.Network.ID)).toEqual([ingress, appnet]);
    const ingressAddrs = nodes().map((n) => n.Attachments?.[0].Addresses[0]);
    expect(new Set(ingressAddrs).size).toBe(2);
    // The task ends: the node leaves appnet, keeps ingress.
    await setTask(t, { state: "complete" });
    await allocatePass(store);
    expect(
      nodes()
        .find((n) => n.ID === "n2")!
        .Attachments?.map((a) => a.Network.ID),
    ).toEqual([ingress]);
  });

  it("no leaks: many creates, scales and removals leave every pool empty but the nodes' ingress endpoints", async () => {
    for (let round = 0; round < 15; round++) {
      const netName = `net${round}`;
      await createNetwork(netName, round % 3 === 0 ? { subnet: `10.${100 + round}.0.0/28` } : {});
      const s = await createService(`svc${round}`, {
        networks: [netName],
        replicas: 6,
        publish: round % 2 === 0 ? [[0, 80]] : undefined,
      });
      const ids = await makeTasks(s, [1, 2, 3, 4, 5, 6]);
      await allocatePass(store);
      // Place some, scale down some, fail one.
      await setTask(ids[0], { NodeID: "n1", state: "running" });
      await setTask(ids[1], { NodeID: "n2", state: "running" });
      await setTask(ids[2], { state: "shutdown", DesiredState: "shutdown" });
      await setTask(ids[3], { NodeID: "n1", state: "failed" });
      await allocatePass(store);
      const more = await makeTasks(s, [7, 8]);
      await allocatePass(store);
      await control.removeService(s.ID);
      // The orchestrator shuts its tasks down; the reaper deletes some.
      for (const id of [...ids, ...more]) await setTask(id, { state: "shutdown", DesiredState: "shutdown" });
      await store.update((tx) => {
        for (const id of ids.slice(0, 3)) tx.delete("tasks", id);
      });
      await allocatePass(store);
      expect(await nets.remove(netName)).toBe(true);
      await allocatePass(store);
    }
    expect(usage()).toEqual({ ingress: 2 });
    const a = store.view((tx) => Allocations.fromStore(tx));
    expect([...a.vnis.keys()]).toEqual([4096]);
    expect(a.ports.size).toBe(0);
    expect(store.view((tx) => tx.list("nodes")).map((n) => n.Attachments?.length)).toEqual([1, 1]);
  });
});
