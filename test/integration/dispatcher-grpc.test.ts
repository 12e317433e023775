// The dispatcher over gRPC with mutual TLS: a real manager (Raft member, store, orchestrator,
// scheduler) behind the DispatcherServer, and agents' DispatcherSessions on loopback. No engine:
// the test plays the worker, watching assignments and reporting states.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import {
  AssignmentsType,
  DispatcherClient,
  DispatcherService,
  type AssignmentsMessage,
  type SessionMessage,
} from "../../proto/gen/cluster.js";
import { DispatcherSession, type DispatcherSessionOptions } from "../../agent/worker/dispatcher-session.js";
import { ControlApi } from "../../manager/controlapi/control.js";
import { ClusterNetworksApi } from "../../manager/controlapi/networks.js";
import { DispatcherServer } from "../../manager/dispatcher/server.js";
import { Manager } from "../../manager/manager.js";
import { newObjectId } from "../../manager/store/store.js";
import type { NodeObject, ServiceObject, TaskObject } from "../../manager/store/types.js";
import type { TaskAssignment } from "../../shared/cluster.js";
import {
  channelOptions,
  clientCredentials,
  joiningCredentials,
  MANAGER_TLS_NAME,
  type TlsIdentity,
} from "../../shared/grpc-tls.js";
import { silentLogger } from "../../shared/logging.js";
import { testCa, tlsServer, type TestCa } from "../helpers/tls.js";

const log = silentLogger();
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // Clean up the rest whatever one step says.
    }
  }
});

async function waitFor<T>(what: string, fn: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

interface Cluster {
  dir: string;
  ca: TestCa;
  manager: Manager;
  managerId: string;
  managerIdentity: TlsIdentity;
  dispatcher: DispatcherServer;
  addr: string;
  control: ControlApi;
  leading: { value: boolean };
}

async function cluster(o: { periodMs?: number; missed?: number; overlay?: boolean } = {}): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), "shoal-dispatcher-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const ca = await testCa();
  const managerId = newObjectId();
  const manager = await Manager.open({
    dir: join(dir, "raft"),
    raftId: 1,
    nodeId: managerId,
    addr: "127.0.0.1:0",
    bootstrap: true,
    log,
  });
  cleanups.push(() => manager.close());
  const managerIdentity = await ca.identity(managerId, "manager");
  // Leadership as the test says, on top of the real member's.
  const leading = { value: true };
  let addr = "";
  const dispatcher = new DispatcherServer({
    store: manager.store,
    core: manager.dispatcher,
    isLeader: () => leading.value && manager.isLeader(),
    leaderAddr: () => (leading.value ? addr : undefined),
    managers: () => [{ nodeId: managerId, addr }],
    caPem: () => ca.root.certPem,
    heartbeatPeriodMs: o.periodMs,
    missedHeartbeats: o.missed,
    networkState: o.overlay ? () => manager.networkState() : undefined,
    log,
  });
  cleanups.push(() => dispatcher.close());
  const srv = await tlsServer(managerIdentity, (s) =>
    s.addService(DispatcherService, dispatcher.implementation()),
  );
  cleanups.push(() => srv.server.forceShutdown());
  addr = srv.addr;
  return {
    dir,
    ca,
    manager,
    managerId,
    managerIdentity,
    dispatcher,
    addr,
    control: new ControlApi(manager.store),
    leading,
  };
}

interface TestNode {
  id: string;
  identity: TlsIdentity;
}

async function addNode(c: Cluster, state: NodeObject["Status"]["State"] = "unknown"): Promise<TestNode> {
  const id = newObjectId();
  await c.manager.store.update((tx) => {
    tx.create("nodes", {
      ID: id,
      Spec: { Role: "worker", Availability: "active" },
      Description: {
        Hostname: "",
        Platform: { Architecture: "x86_64", OS: "linux" },
        Resources: { NanoCPUs: 4e9, MemoryBytes: 8 * 2 ** 30 },
      },
      Status: { State: state, Addr: "" },
    });
  });
  return { id, identity: await c.ca.identity(id, "worker") };
}

interface Agent {
  session: DispatcherSession;
  sets: TaskAssignment[][];
  latest(): TaskAssignment[];
}

async function agent(c: Cluster, node: TestNode, o: Partial<DispatcherSessionOptions> = {}): Promise<Agent> {
  const sets: TaskAssignment[][] = [];
  const session = await DispatcherSession.open({
    nodeId: node.id,
    managers: [c.addr],
    identity: () => node.identity,
    description: {
      hostname: `host-${node.id.slice(0, 6)}`,
      os: "linux",
      architecture: "x86_64",
      nanoCpus: 4e9,
      memoryBytes: 8 * 2 ** 30,
      addr: "127.0.0.1",
    },
    listenAddr: "127.0.0.1:4242",
    stateDir: join(c.dir, `agent-${node.id}`),
    log,
    ...o,
  });
  cleanups.push(() => session.close());
  session.watch(node.id, (tasks) => sets.push(tasks));
  return { session, sets, latest: () => sets.at(-1) ?? [] };
}

const live = (tasks: TaskAssignment[]): TaskAssignment[] => tasks.filter((t) => t.desiredState === "running");
const nodeOf = (c: Cluster, id: string): NodeObject | undefined =>
  c.manager.store.view((tx) => tx.get("nodes", id));
const taskOf = (c: Cluster, id: string): TaskObject | undefined =>
  c.manager.store.view((tx) => tx.get("tasks", id));

async function createService(c: Cluster, name: string, replicas: number): Promise<string> {
  const { ID } = await c.control.createService({
    Name: name,
    TaskTemplate: { ContainerSpec: { Image: "busybox", Command: ["sleep", "1000"] } },
    Mode: { Replicated: { Replicas: replicas } },
  });
  return ID;
}

async function scale(c: Cluster, id: string, replicas: number): Promise<void> {
  const s = c.manager.store.view((tx) => tx.get("services", id)) as ServiceObject;
  await c.control.updateService(id, s.Meta.Version.Index, {
    ...s.Spec,
    Mode: { Replicated: { Replicas: replicas } },
  });
}

function rawClient(addr: string, credentials: grpc.ChannelCredentials): DispatcherClient {
  const client = new DispatcherClient(addr, credentials, channelOptions(MANAGER_TLS_NAME));
  cleanups.push(() => client.close());
  return client;
}

/** A session opened by hand (no DispatcherSession): the client and the session's first message. */
async function rawSession(
  c: Cluster,
  node: TestNode,
): Promise<{ client: DispatcherClient; hello: SessionMessage }> {
  const client = rawClient(c.addr, clientCredentials(node.identity));
  const session = client.session({ description: undefined, listenAddr: "127.0.0.1:1" });
  cleanups.push(() => session.cancel());
  session.on("error", () => undefined);
  return { client, hello: await firstOf(session) };
}

/** The first message of a server stream, or the error that ended it. */
function firstOf<T>(call: grpc.ClientReadableStream<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    call.once("data", resolve);
    call.once("error", reject);
  });
}

function errorOf(p: Promise<unknown>): Promise<grpc.ServiceError> {
  return p.then(
    () => {
      throw new Error("the call succeeded; it should have been refused");
    },
    (e: grpc.ServiceError) => e,
  );
}

describe("dispatcher over gRPC", () => {
  it("gives an agent its whole assignment set, then every change", async () => {
    const c = await cluster();
    const node = await addNode(c);
    const a = await agent(c, node);
    await waitFor("the node to be ready", () => nodeOf(c, node.id)?.Status.State === "ready");
    expect(nodeOf(c, node.id)?.Description.Hostname).toBe(`host-${node.id.slice(0, 6)}`);
    expect(nodeOf(c, node.id)?.Status.Addr).toBe("127.0.0.1");

    const svc = await createService(c, "web", 2);
    const two = await waitFor("two tasks", () =>
      live(a.latest()).length === 2 ? live(a.latest()) : undefined,
    );
    expect(two.every((t) => t.serviceId === svc && t.serviceName === "web")).toBe(true);
    expect(two[0].spec.ContainerSpec?.Image).toBe("busybox");
    expect(new Set(two.map((t) => t.slot))).toEqual(new Set([1, 2]));

    await scale(c, svc, 4);
    const four = await waitFor("four tasks", () =>
      live(a.latest()).length === 4 ? live(a.latest()) : undefined,
    );
    // The first tasks are kept, not replaced.
    for (const t of two) expect(four.map((x) => x.id)).toContain(t.id);

    await scale(c, svc, 1);
    await waitFor("three tasks told to shut down", () => live(a.latest()).length === 1);
    const stopping = a.latest().filter((t) => t.desiredState === "shutdown");
    expect(stopping).toHaveLength(3);
    // Once the node says they stopped, they leave its set.
    await a.session.report(
      node.id,
      stopping.map((t) => ({ taskId: t.id, state: "shutdown" as const, message: "shutdown" })),
    );
    await waitFor("the stopped tasks to leave the set", () => a.latest().length === 1);
    expect(a.latest()[0].id).toBe(live(four).find((t) => t.slot === 1)?.id);
  });

  it("streams a complete set first, then only what changed", async () => {
    const c = await cluster();
    const node = await addNode(c);
    const { client, hello } = await rawSession(c, node);
    expect(hello.role).toBe("worker");
    expect(hello.managers).toEqual([{ nodeId: c.managerId, addr: c.addr }]);
    expect(hello.heartbeatPeriodMs).toBe(1000);

    const svc = await createService(c, "api", 1);
    await waitFor("a task on the node", () => c.manager.dispatcher.assignments(node.id).length === 1);
    const messages: AssignmentsMessage[] = [];
    const stream = client.assignments({ sessionId: hello.sessionId });
    cleanups.push(() => stream.cancel());
    stream.on("error", () => undefined);
    stream.on("data", (m: AssignmentsMessage) => messages.push(m));
    await waitFor("the complete set", () => messages.length === 1);
    expect(messages[0].type).toBe(AssignmentsType.ASSIGNMENTS_TYPE_COMPLETE);
    const first = messages[0].update.map((u) => u.id);
    expect(first).toHaveLength(1);

    await scale(c, svc, 3);
    await waitFor(
      "two more tasks",
      () => new Set(messages.slice(1).flatMap((m) => m.update.map((u) => u.id))).size === 2,
    );
    for (const m of messages.slice(1)) {
      expect(m.type).toBe(AssignmentsType.ASSIGNMENTS_TYPE_INCREMENTAL);
      // The task that did not change is not sent again.
      expect(m.update.map((u) => u.id)).not.toContain(first[0]);
      expect(m.remove).toEqual([]);
    }
    const spec = JSON.parse(Buffer.from(messages[1].update[0].specJson).toString()) as TaskAssignment["spec"];
    expect(spec.ContainerSpec?.Image).toBe("busybox");
  });

  it("writes the states agents report into the store, and tells them again to a new leader", async () => {
    const c = await cluster();
    const node = await addNode(c);
    const a = await agent(c, node);
    await createService(c, "db", 1);
    const [task] = await waitFor("a task", () => (a.latest().length === 1 ? a.latest() : undefined));
    await a.session.report(node.id, [
      { taskId: task.id, state: "running", message: "started", containerId: "c1" },
    ]);
    await waitFor("the task to run", () => taskOf(c, task.id)?.Status.State === "running");
    expect(taskOf(c, task.id)?.Status.ContainerStatus?.ContainerID).toBe("c1");
    await waitFor("the agent to see it running", () => a.latest()[0]?.state === "running");

    // A failover to a manager that never heard of it: the agent's next session tells it again.
    const failover = async (): Promise<void> => {
      c.leading.value = false;
      await waitFor("the session to end", () => a.session.manager === undefined);
      await c.manager.store.update((tx) => {
        const t = tx.get("tasks", task.id) as TaskObject;
        tx.update("tasks", { ...t, Status: { ...t.Status, State: "assigned", Message: "assigned" } });
      });
    };
    await failover();
    c.leading.value = true;
    await waitFor("the state told again", () => taskOf(c, task.id)?.Status.State === "running");
    expect(taskOf(c, task.id)?.Status.Message).toBe("started");

    // Reported while no manager leads: kept, and sent once one does.
    await failover();
    await a.session.report(node.id, [{ taskId: task.id, state: "running", message: "still running" }]);
    c.leading.value = true;
    await waitFor("the queued state", () => taskOf(c, task.id)?.Status.State === "running");
    expect(taskOf(c, task.id)?.Status.Message).toBe("still running");
  });

  it("tells the agent when its role changes", async () => {
    const c = await cluster();
    const node = await addNode(c);
    const roles: string[] = [];
    await agent(c, node, { onRole: (r) => roles.push(r) });
    await waitFor("the first role", () => roles.length === 1);
    expect(roles).toEqual(["worker"]);
    // The leader's own passes write the node too (its ingress endpoint): retry a lost race.
    for (let attempt = 1; ; attempt++) {
      try {
        await c.manager.store.update((tx) => {
          const n = tx.get("nodes", node.id) as NodeObject;
          tx.update("nodes", { ...n, Spec: { ...n.Spec, Role: "manager" } });
        });
        break;
      } catch (e) {
        if (attempt >= 5 || !/out of sequence/.test(String(e))) throw e;
      }
    }
    await waitFor("the new role", () => roles.length === 2);
    expect(roles).toEqual(["worker", "manager"]);
  });

  it("marks a node that stops heartbeating down and moves its tasks", async () => {
    const c = await cluster({ periodMs: 200, missed: 3 });
    const [n1, n2] = [await addNode(c), await addNode(c)];
    const a1 = await agent(c, n1);
    const a2 = await agent(c, n2);
    await waitFor("both nodes ready", () => [n1, n2].every((n) => nodeOf(c, n.id)?.Status.State === "ready"));
    await createService(c, "spread", 2);
    await waitFor(
      "a task on each node",
      () => live(a1.latest()).length === 1 && live(a2.latest()).length === 1,
    );

    await a1.session.close();
    const down = await waitFor("node 1 down", () =>
      nodeOf(c, n1.id)?.Status.State === "down" ? nodeOf(c, n1.id) : undefined,
    );
    expect(down?.Status.Message).toBe("heartbeat failure");
    await waitFor("node 2 to run both slots", () => new Set(live(a2.latest()).map((t) => t.slot)).size === 2);
    expect(nodeOf(c, n2.id)?.Status.State).toBe("ready");
  });

  it("gives every node a fresh deadline when it starts leading", async () => {
    const c = await cluster({ periodMs: 1000, missed: 5 });
    c.leading.value = false;
    const node = await addNode(c, "ready");
    // A follower marks nothing down, however long the node is silent.
    await sleep(1500);
    expect(nodeOf(c, node.id)?.Status.State).toBe("ready");
    c.leading.value = true;
    c.dispatcher.leadershipChanged(true);
    await sleep(500);
    expect(nodeOf(c, node.id)?.Status.State).toBe("ready");
    // No session ever comes: after the whole timeout it is down.
    await waitFor("the silent node down", () => nodeOf(c, node.id)?.Status.State === "down", 15_000);
  });

  it("refuses callers without a certificate of the cluster, and removed nodes", async () => {
    const c = await cluster();
    const node = await addNode(c);
    const anonymous = rawClient(c.addr, joiningCredentials(c.ca.root.certPem));
    const e1 = await errorOf(
      new Promise((resolve, reject) =>
        anonymous.heartbeat({ sessionId: "x", networkVersion: 0 }, (e, r) => (e ? reject(e) : resolve(r))),
      ),
    );
    expect(e1.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(e1.details).toContain("no client certificate from this cluster's CA");

    const other = await testCa();
    const stranger = await other.identity(node.id, "worker");
    const foreign = rawClient(
      c.addr,
      grpc.credentials.createSsl(
        Buffer.from(c.ca.root.certPem),
        Buffer.from(stranger.keyPem),
        Buffer.from(stranger.certPem),
      ),
    );
    const e2 = await errorOf(firstOf(foreign.session({ description: undefined, listenAddr: "" })));
    expect(e2.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(e2.details).toContain("no client certificate from this cluster's CA");
    expect(nodeOf(c, node.id)?.Status.State).toBe("unknown");

    await c.manager.store.update((tx) => tx.delete("nodes", node.id));
    const removed = rawClient(c.addr, clientCredentials(node.identity));
    const e3 = await errorOf(firstOf(removed.session({ description: undefined, listenAddr: "" })));
    expect(e3.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(e3.details).toContain(`node ${node.id} was removed from the cluster`);
  });

  it("sends agents from a follower to the leader", async () => {
    const c = await cluster();
    const follower = new DispatcherServer({
      store: c.manager.store,
      core: c.manager.dispatcher,
      isLeader: () => false,
      leaderAddr: () => c.addr,
      managers: () => [],
      caPem: () => c.ca.root.certPem,
      log,
    });
    cleanups.push(() => follower.close());
    const f = await tlsServer(c.managerIdentity, (s) =>
      s.addService(DispatcherService, follower.implementation()),
    );
    cleanups.push(() => f.server.forceShutdown());
    const node = await addNode(c);

    const raw = rawClient(f.addr, clientCredentials(node.identity));
    const e = await errorOf(firstOf(raw.session({ description: undefined, listenAddr: "" })));
    expect(e.code).toBe(grpc.status.UNAVAILABLE);
    expect(e.details).toBe("not the leader");
    expect(e.metadata.get("shoal-leader")).toEqual([c.addr]);

    const told: string[][] = [];
    const a = await agent(c, node, {
      managers: [f.addr],
      onManagers: (m) => told.push(m.map((x) => x.addr)),
    });
    await waitFor("a session with the leader", () => a.session.manager === c.addr);
    expect(told.at(-1)).toEqual([c.addr]);
    await createService(c, "redirected", 1);
    await waitFor("the task", () => a.latest().length === 1);
  });

  it("reconnects with a renewed certificate", async () => {
    const c = await cluster();
    const node = await addNode(c);
    const a = await agent(c, node);
    await waitFor("a session", () => a.session.manager === c.addr);
    const original = node.identity;
    // A certificate the manager refuses shows the new one is what the agent now presents.
    node.identity = await (await testCa()).identity(node.id, "worker");
    await waitFor("the session to end", () => a.session.manager === undefined);
    node.identity = await c.ca.identity(node.id, "worker");
    expect(node.identity.certPem).not.toBe(original.certPem);
    await waitFor("a session again", () => a.session.manager === c.addr);
  });

  it("keeps the assignments on disk for a restart with no manager reachable", async () => {
    const c = await cluster();
    const node = await addNode(c);
    const stateDir = join(c.dir, "agent-state");
    const a = await agent(c, node, { stateDir });
    await createService(c, "kept", 2);
    await waitFor("two tasks", () => a.latest().length === 2);
    const ids = a
      .latest()
      .map((t) => t.id)
      .sort();
    await a.session.close();
    const stored = JSON.parse(await readFile(join(stateDir, "assignments.json"), "utf8")) as {
      tasks: TaskAssignment[];
    };
    expect(stored.tasks.map((t) => t.id).sort()).toEqual(ids);

    // Port 1 on loopback: nothing listens, as when every manager is down.
    const b = await agent(c, node, { stateDir, managers: ["127.0.0.1:1"] });
    expect(b.sets).toHaveLength(1);
    expect(
      b
        .latest()
        .map((t) => t.id)
        .sort(),
    ).toEqual(ids);
    expect(b.latest()[0].spec.ContainerSpec?.Image).toBe("busybox");
    expect(b.session.manager).toBeUndefined();

    // shoald's order: the worker watches first, then the session starts.
    const late = new DispatcherSession({
      nodeId: node.id,
      managers: ["127.0.0.1:1"],
      identity: () => node.identity,
      description: { hostname: "", os: "", architecture: "", nanoCpus: 0, memoryBytes: 0, addr: "" },
      listenAddr: "",
      stateDir,
      log,
    });
    cleanups.push(() => late.close());
    const seen: TaskAssignment[][] = [];
    late.watch(node.id, (tasks) => seen.push(tasks));
    expect(seen).toEqual([]);
    await late.start();
    expect(seen.map((set) => set.map((t) => t.id).sort())).toEqual([ids]);
  });

  it("tells a node to stop an overlay task only once every other node has applied a network state without it", async () => {
    const c = await cluster({ overlay: true });
    const holder = await addNode(c);
    const other = await addNode(c);
    // The holder applies every network state at once; the other node acks only when told.
    const h = await agent(c, holder, {
      onNetworkState: (state) => {
        h.session.networkApplied = state.version;
      },
    });
    let otherSees = 0;
    const o = await agent(c, other, {
      onNetworkState: (state) => {
        otherSees = state.version;
      },
    });
    const ack = (): void => {
      o.session.networkApplied = otherSees;
    };
    await waitFor("both nodes ready", () =>
      [holder, other].every((n) => nodeOf(c, n.id)?.Status.State === "ready"),
    );
    await new ClusterNetworksApi(c.manager.store).create({ Name: "appnet", Driver: "overlay" });
    const { ID: svc } = await c.control.createService({
      Name: "web",
      TaskTemplate: {
        ContainerSpec: { Image: "busybox", Command: ["httpd", "-f"] },
        Networks: [{ Target: "appnet" }],
        Placement: { Constraints: [`node.id==${holder.id}`] },
      },
      Mode: { Replicated: { Replicas: 2 } },
    });
    const two = await waitFor("two tasks on the holder, with their network", () => {
      const ts = live(h.latest());
      return ts.length === 2 && ts.every((t) => (t.networks ?? []).length === 1) ? ts : undefined;
    });
    await h.session.report(
      holder.id,
      two.map((t) => ({ taskId: t.id, state: "running" as const, message: "started" })),
    );
    const running = (id: string): boolean =>
      c.manager.networkState().tasks.some((t) => t.taskId === id && t.running);
    await waitFor("both tasks in the network state", () => two.every((t) => running(t.id)));
    await waitFor("the other node to hear of them", () => otherSees >= c.manager.networkState().version);
    ack();

    await scale(c, svc, 1);
    const victim = await waitFor("one task out of the network state", () => {
      const gone = two.filter((t) => !running(t.id));
      return gone.length === 1 ? gone[0] : undefined;
    });
    const stopping = (): boolean =>
      h.latest().some((t) => t.id === victim.id && t.desiredState !== "running");
    // The other node has the state without the task but has not said it applied it: the holder
    // keeps running the task (its set still says so) while that lasts.
    await waitFor(
      "the other node to receive the new state",
      () => otherSees >= c.manager.networkState().version,
    );
    await sleep(600);
    expect(stopping()).toBe(false);
    ack();
    await waitFor("the holder told to stop the task", stopping);

    // A node that never applies the state holds a stop up for 2 s at most, not for ever.
    await h.session.report(holder.id, [{ taskId: victim.id, state: "shutdown", message: "stopped" }]);
    const [last] = live(h.latest());
    const scaledAt = Date.now();
    await scale(c, svc, 0);
    await waitFor("the last task out of the network state", () => !running(last.id));
    await waitFor(
      "the holder told to stop the last task",
      () => h.latest().some((t) => t.id === last.id && t.desiredState !== "running"),
      10_000,
    );
    expect(Date.now() - scaledAt).toBeGreaterThanOrEqual(1900);
  });

  it("tells agents the cluster's heartbeat period (swarm update --dispatcher-heartbeat) and waits three of them before marking a node down", async () => {
    const c = await cluster();
    await c.manager.store.update((tx) => {
      tx.create("clusters", {
        ID: newObjectId(),
        Spec: { Name: "default", Dispatcher: { HeartbeatPeriod: 1e9 } },
      });
    });
    const node = await addNode(c);
    const { client, hello } = await rawSession(c, node);
    expect(hello.heartbeatPeriodMs).toBe(1000);
    const beat = (): Promise<number> =>
      new Promise((resolve, reject) =>
        client.heartbeat({ sessionId: hello.sessionId, networkVersion: 0 }, (e, r) =>
          e ? reject(e) : resolve(r.periodMs),
        ),
      );
    expect(await beat()).toBe(1000);

    const cl = c.manager.store.view((tx) => tx.list("clusters")[0]);
    await c.control.updateCluster(cl.Meta.Version.Index, {
      ...cl.Spec,
      Dispatcher: { HeartbeatPeriod: 2e9 },
    });
    expect(await beat()).toBe(2000);
    // Silent for longer than three of the old periods: with the new one the node is still up.
    await sleep(3500);
    expect(nodeOf(c, node.id)?.Status.State).toBe("ready");
    await waitFor(
      "the node marked down after three of the new periods",
      () => nodeOf(c, node.id)?.Status.State === "down",
    );
  });
});

describe("a node's address", () => {
  const description = (addr: string) => ({
    hostname: "h",
    os: "linux",
    architecture: "x86_64",
    nanoCpus: 1e9,
    memoryBytes: 2 ** 30,
    addr,
  });

  it("is refused when it carries a command for the other hosts' bridge -batch, which never hear of it", async () => {
    const c = await cluster({ overlay: true });
    const honest = await addNode(c);
    const heard: string[] = [];
    const h = await agent(c, honest, {
      onNetworkState: (state) => {
        heard.push(JSON.stringify(state));
        h.session.networkApplied = state.version;
      },
    });
    await waitFor("the honest node ready", () => nodeOf(c, honest.id)?.Status.State === "ready");

    // A worker with a valid certificate reports an address with a second line in it: were it
    // written into another host's `bridge -batch` input, that host would run the fdb command.
    const attacker = await addNode(c);
    const planted = "00:11:22:33:44:55";
    const hostile = `10.0.0.1\nfdb add ${planted} dev vx-any dst 10.9.9.9`;
    const client = rawClient(c.addr, clientCredentials(attacker.identity));
    const e = await errorOf(firstOf(client.session({ description: description(hostile), listenAddr: "" })));
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.details).toContain(`node ${attacker.id}`);
    expect(e.details).toContain(JSON.stringify(hostile));
    expect(e.details).toContain("is not an IPv4 address");
    expect(nodeOf(c, attacker.id)?.Status).toMatchObject({ State: "unknown", Addr: "" });

    // A global service on an overlay: every ready node gets a task and an endpoint, and every
    // other node's forwarding entries are written from that endpoint's host address.
    await new ClusterNetworksApi(c.manager.store).create({ Name: "appnet", Driver: "overlay" });
    await c.control.createService({
      Name: "everywhere",
      TaskTemplate: {
        ContainerSpec: { Image: "busybox", Command: ["sleep", "1000"] },
        Networks: [{ Target: "appnet" }],
      },
      Mode: { Global: {} },
    });
    await waitFor("the honest node's endpoint in the network state", () =>
      c.manager.networkState().nodes.some((n) => n.nodeId === honest.id),
    );
    await waitFor("the honest node to hear of it", () => heard.some((s) => s.includes(honest.id)));
    const sent = JSON.stringify(c.manager.networkState());
    expect(sent).not.toContain(planted);
    expect(sent).not.toContain(attacker.id);
    for (const s of heard) expect(s).not.toContain(planted);
  });

  it("is the reported one, checked, when the connection comes over loopback; IPv6 and names are refused", async () => {
    const c = await cluster();
    const node = await addNode(c);
    const session = (addr: string) =>
      firstOf(
        rawClient(c.addr, clientCredentials(node.identity)).session({
          description: description(addr),
          listenAddr: "",
        }),
      );
    for (const bad of ["2001:db8::7", "worker1.example", "10.0.0.1:2377"]) {
      const e = await errorOf(session(bad));
      expect(e.code, bad).toBe(grpc.status.INVALID_ARGUMENT);
    }
    expect(nodeOf(c, node.id)?.Status.Addr).toBe("");
    await session("192.168.77.5");
    await waitFor("the node ready", () => nodeOf(c, node.id)?.Status.State === "ready");
    expect(nodeOf(c, node.id)?.Status.Addr).toBe("192.168.77.5");
  });
});
