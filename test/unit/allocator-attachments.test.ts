// Attachments of plain containers to attachable overlay networks (manager/allocator/
// attachments.ts): the leader's AttachNetwork gives an address at once and its node an endpoint
// at the next pass; the network state carries it as an endpoint with the container's names;
// refusals (not attachable, ingress, unknown network or node, a taken or foreign --ip, a full
// subnet) leave nothing; DetachNetwork, `node rm`, a pass after a node vanished and `network rm`
// behave; and the addresses come back every time.
import { beforeEach, describe, expect, it } from "vitest";
import { ClusterStore, localProposer } from "../../manager/store/store.js";
import { ControlApi } from "../../manager/controlapi/control.js";
import { ClusterNetworksApi } from "../../manager/controlapi/networks.js";
import { Allocations } from "../../manager/allocator/allocator.js";
import { allocatePass } from "../../manager/allocator/loop.js";
import { attachNetwork, detachNetwork } from "../../manager/allocator/attachments.js";
import { networkState } from "../../manager/allocator/state.js";
import { nodeObject, expectError } from "../helpers/cluster-objects.js";

let store: ClusterStore;
let control: ControlApi;
let nets: ClusterNetworksApi;

const C1 = "a".repeat(64);
const C2 = "b".repeat(64);
const C3 = "c".repeat(64);

async function createNetwork(
  name: string,
  o: { subnet?: string; attachable?: boolean } = {},
): Promise<string> {
  const r = nets.create({
    Name: name,
    Driver: "overlay",
    Attachable: o.attachable,
    IPAM: o.subnet ? { Driver: "default", Config: [{ Subnet: o.subnet }] } : undefined,
  });
  if (!r) throw new Error("not an overlay create");
  return (await r).Id;
}

const attach = (nodeId: string, network: string, containerId: string, extra: { address?: string } = {}) =>
  attachNetwork(store, nodeId, {
    network,
    containerId,
    containerName: `/c-${containerId.slice(0, 2)}`,
    aliases: ["db", "db", ""],
    ...extra,
  });

const usage = () => store.view((tx) => Allocations.fromStore(tx).usage());
const attachments = () => store.view((tx) => tx.list("attachments"));
const nodeNetworks = (id: string) =>
  store.view((tx) => tx.get("nodes", id))?.Attachments?.map((a) => a.Network.Spec?.Name) ?? [];

beforeEach(async () => {
  store = new ClusterStore();
  store.setProposer(localProposer(store));
  control = new ControlApi(store, "n1");
  nets = new ClusterNetworksApi(store);
  await store.update((tx) => {
    tx.create("clusters", { ID: "c", Spec: { Name: "default" } });
    tx.create("nodes", nodeObject("n1", "ready", "host-n1"));
    tx.create("nodes", nodeObject("n2", "ready", "host-n2"));
  });
  await allocatePass(store, { ensureIngress: true });
});

describe("attaching plain containers to attachable overlay networks", () => {
  it("an address at once (by name or id), the node's endpoint at the next pass, an endpoint with the container's names in the state", async () => {
    const app = await createNetwork("app", { subnet: "10.20.0.0/24", attachable: true });
    const { attachment, network } = await attach("n2", "app", C1);
    expect(network.ID).toBe(app);
    expect(attachment.NodeID).toBe("n2");
    // .1 is the gateway; nobody holds anything else yet.
    expect(attachment.Attachment.Addresses).toEqual(["10.20.0.2/24"]);
    const second = await attach("n2", app, C2);
    expect(second.attachment.Attachment.Addresses).toEqual(["10.20.0.3/24"]);
    expect(nodeNetworks("n2")).toEqual(["ingress"]);
    await allocatePass(store);
    expect(nodeNetworks("n2")).toEqual(["ingress", "app"]);
    expect(nodeNetworks("n1")).toEqual(["ingress"]);
    expect(usage().app).toBe(3);

    const state = store.view((tx) => networkState(tx, 1));
    const ep = state.tasks.find((t) => t.taskId === attachment.ID);
    expect(ep).toEqual({
      networkId: app,
      taskId: attachment.ID,
      serviceId: "",
      nodeId: "n2",
      hostAddr: "192.168.1.12",
      address: "10.20.0.2",
      names: ["c-aa", C1.slice(0, 12), "db"],
      running: true,
      containerId: C1,
    });
    expect(state.nodes.some((n) => n.networkId === app && n.nodeId === "n2")).toBe(true);
  });

  it("refusals leave nothing: not attachable (403 naming the fix), ingress, unknown network (404), a removed node, bad --ip, a bad container id", async () => {
    await createNetwork("closed", { subnet: "10.21.0.0/24" });
    await createNetwork("open", { subnet: "10.22.0.0/24", attachable: true });
    await expectError(
      attach("n1", "closed", C1),
      "forbidden",
      /network closed is not manually attachable: recreate it with `docker network create -d overlay --attachable closed`/,
    );
    await expectError(attach("n1", "ingress", C1), "forbidden", /not manually attachable/);
    await expectError(attach("n1", "nope", C1), "not_found", /network nope not found/);
    await expectError(attach("gone", "open", C1), "forbidden", /node gone is not .*part of the cluster/);
    await expectError(
      attach("n1", "open", C1, { address: "10.99.0.5" }),
      "invalid",
      /not in network open's subnet 10\.22\.0\.0\/24/,
    );
    await expectError(attach("n1", "open", "not-an-id"), "invalid", /invalid container id/);
    expect(attachments()).toEqual([]);
    expect(usage().open).toBe(0);
    expect(usage().closed).toBe(0);
  });

  it("--ip: a free address is given, a taken one is a 409", async () => {
    await createNetwork("app", { subnet: "10.23.0.0/24", attachable: true });
    const a = await attach("n1", "app", C1, { address: "10.23.0.50" });
    expect(a.attachment.Attachment.Addresses).toEqual(["10.23.0.50/24"]);
    await expectError(attach("n2", "app", C2, { address: "10.23.0.50" }), "conflict", /already in use/);
    await expectError(attach("n2", "app", C2, { address: "10.23.0.1" }), "conflict", /already in use/);
    expect(attachments()).toHaveLength(1);
  });

  it("a full subnet is a 409, and leaves an address for each ready node's own endpoint", async () => {
    // A /29: .0 network, .1 gateway, .7 broadcast; .2-.6 to hand out. Two ready nodes without an
    // endpoint keep two of them: three containers fit.
    await createNetwork("tiny", { subnet: "10.24.0.0/29", attachable: true });
    for (const c of [C1, C2, C3]) await attach("n1", "tiny", c);
    await expectError(attach("n1", "tiny", "d".repeat(64)), "conflict", /no free address in tiny/);
    await allocatePass(store);
    // n1 took its endpoint; one is still kept for n2.
    expect(usage().tiny).toBe(4);
    await expectError(attach("n1", "tiny", "d".repeat(64)), "conflict", /no free address in tiny/);
    expect(attachments()).toHaveLength(3);
  });

  it("detach frees the address at once; the node leaves the network at the next pass; only the owner may detach", async () => {
    await createNetwork("app", { subnet: "10.25.0.0/24", attachable: true });
    const { attachment } = await attach("n2", "app", C1);
    await allocatePass(store);
    expect(usage().app).toBe(2);
    await expectError(detachNetwork(store, "n1", attachment.ID), "forbidden", /belongs to node n2/);
    await detachNetwork(store, "n2", attachment.ID);
    await expectError(detachNetwork(store, "n2", attachment.ID), "not_found", /not found/);
    expect(usage().app).toBe(1);
    await allocatePass(store);
    expect(usage().app).toBe(0);
    expect(nodeNetworks("n2")).toEqual(["ingress"]);
    // The address is handed out again.
    expect((await attach("n1", "app", C2)).attachment.Attachment.Addresses).toEqual(["10.25.0.2/24"]);
  });

  it("node rm deletes the node's attachments; a pass deletes those of a node that vanished otherwise", async () => {
    await createNetwork("app", { subnet: "10.26.0.0/24", attachable: true });
    await attach("n2", "app", C1);
    await attach("n1", "app", C2);
    await allocatePass(store);
    await control.removeNode("n2", true);
    expect(attachments().map((a) => a.NodeID)).toEqual(["n1"]);
    await store.update((tx) => tx.delete("nodes", "n1"));
    const r = await allocatePass(store);
    expect(r.attachmentsRemoved).toBe(1);
    expect(attachments()).toEqual([]);
    expect(usage().app).toBe(0);
  });

  it("network rm is a 409 naming the attached containers, and works once they are detached", async () => {
    await createNetwork("app", { subnet: "10.27.0.0/24", attachable: true });
    const { attachment } = await attach("n2", "app", C1);
    await expectError(
      nets.remove("app"),
      "conflict",
      /network app has active endpoints: container c-aa \(on host-n2\)/,
    );
    await detachNetwork(store, "n2", attachment.ID);
    expect(await nets.remove("app")).toBe(true);
  });

  it("no leaks: many attaches and detaches leave the pool as it was", async () => {
    await createNetwork("app", { subnet: "10.28.0.0/28", attachable: true });
    for (let round = 0; round < 20; round++) {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const c = `${round.toString(16).padStart(2, "0")}${i}`.padEnd(64, "e");
        ids.push((await attach(round % 2 ? "n1" : "n2", "app", c)).attachment.ID);
      }
      await allocatePass(store);
      for (const id of ids) await detachNetwork(store, round % 2 ? "n1" : "n2", id);
      await allocatePass(store);
    }
    expect(usage().app).toBe(0);
    expect(attachments()).toEqual([]);
  });
});
