// The allocator on the leader: after every store change (coalesced) and on a timer, one pass
// makes sure the ingress network exists, gives services their VIPs, new tasks their addresses
// and moves them to pending (the scheduler's), all of a pass's tasks in one transaction, or
// leaves them new with the reason they wait ("no free address in <network>"), gives nodes their
// own endpoints (where they hold a task or a plain container's attachment), and deletes
// attachments whose node or network is gone. Addresses of ended tasks, removed services and
// networks go back by themselves, since what is taken is read from the store's objects at
// every pass.
import type { Logger } from "../../shared/logging.js";
import { isShoalError } from "../../shared/errors.js";
import { TERMINAL_STATES } from "../../shared/cluster.js";
import type { ClusterStore } from "../store/store.js";
import type { NetworkAttachment, NodeObject, ServiceEndpoint } from "../store/types.js";
import { CoalescedPass } from "../coalesced-pass.js";
import type { LeaderTerm, StoreWriter } from "../leadership.js";
import {
  Allocations,
  endpointSpecOf,
  ensureIngress,
  usesIngress,
  wantsNetworks,
  withAllocationLock,
} from "./allocator.js";
import { orphanedAttachments } from "./attachments.js";

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** What one pass changed (tests read it). */
export interface PassResult {
  ingressCreated: boolean;
  services: number;
  /** New tasks moved to pending, with their addresses. */
  tasks: number;
  /** New tasks left waiting for an address. */
  waiting: number;
  nodes: number;
  /** Attachments deleted because their node or network was gone. */
  attachmentsRemoved: number;
}

/** What a task moved to pending says, as swarmkit's allocator writes it. */
const PENDING_MESSAGE = "pending task scheduling";

/**
 * One allocation pass: services, then tasks, then nodes, each in its own transaction, written
 * through `o.writer` (a leader term's fenced writer; the store itself when not given).
 */
export async function allocatePass(
  store: ClusterStore,
  o: { ensureIngress?: boolean; writer?: StoreWriter } = {},
): Promise<PassResult> {
  const writer = o.writer ?? store;
  const result: PassResult = {
    ingressCreated: false,
    services: 0,
    tasks: 0,
    waiting: 0,
    nodes: 0,
    attachmentsRemoved: 0,
  };
  // Attachments of a removed node or network: nobody is left to detach them.
  if (store.view((tx) => orphanedAttachments(tx).length > 0))
    await writer.update((tx) => {
      for (const att of orphanedAttachments(tx)) {
        tx.delete("attachments", att.ID, att.Meta.Version.Index);
        result.attachmentsRemoved++;
      }
    });
  await withAllocationLock(store, async () => {
    await writer.update((tx) => {
      const a = Allocations.fromStore(tx);
      const services = tx.list("services").sort((x, y) => x.Meta.Version.Index - y.Meta.Version.Index);
      // Ingress is made at a leader's first pass, and again whenever a service publishes through
      // the routing mesh while there is none (the user removed it).
      if (o.ensureIngress || services.some((s) => usesIngress(endpointSpecOf(s.Spec))))
        result.ingressCreated = ensureIngress(tx, a);
      for (const s of services) {
        let endpoint: ServiceEndpoint;
        try {
          endpoint = a.serviceEndpoint(s).endpoint;
        } catch {
          // A port clash the control API let through (an old leader's write): left as it is.
          continue;
        }
        if (same(endpoint, s.Endpoint)) continue;
        tx.update("services", { ...s, Endpoint: endpoint });
        result.services++;
      }
    });
  });
  await withAllocationLock(store, async () => {
    await writer.update((tx) => {
      const fresh = tx
        .list("tasks", (t) => t.Status.State === "new" && t.DesiredState === "running")
        .sort((x, y) => x.Meta.CreatedAt.localeCompare(y.Meta.CreatedAt) || x.Slot - y.Slot);
      if (fresh.length === 0) return;
      // What is taken is read only when a task asks for addresses (a scale-up of tasks without
      // networks goes to pending without it).
      let a: Allocations | undefined;
      const now = new Date().toISOString();
      for (const t of fresh) {
        const r = wantsNetworks(t)
          ? (a ??= Allocations.fromStore(tx)).taskAttachments(t)
          : { attachments: [] };
        if ("reason" in r) {
          result.waiting++;
          if (t.Status.Err === r.reason) continue;
          tx.update("tasks", { ...t, Status: { ...t.Status, Err: r.reason, Timestamp: now } });
          continue;
        }
        // Mesh ports without an ingress network (made at the services' step): wait for it.
        if (r.attachments.length === 0 && wantsNetworks(t)) continue;
        tx.update("tasks", {
          ...t,
          ...(r.attachments.length > 0 ? { NetworksAttachments: r.attachments } : {}),
          Status: { Timestamp: now, State: "pending", Message: PENDING_MESSAGE },
        });
        result.tasks++;
      }
    });
  });
  await withAllocationLock(store, async () => {
    await writer.update((tx) => {
      const a = Allocations.fromStore(tx);
      const ingressId = a.ingress()?.ID;
      const onNode = new Map<string, Set<string>>();
      for (const t of tx.list("tasks", (x) => x.NodeID !== "" && !TERMINAL_STATES.has(x.Status.State))) {
        const set = onNode.get(t.NodeID) ?? new Set<string>();
        for (const att of t.NetworksAttachments ?? [])
          if (att.Network.ID !== ingressId) set.add(att.Network.ID);
        onNode.set(t.NodeID, set);
      }
      // A node with a plain container on an attachable network takes part in it too.
      for (const att of tx.list("attachments")) {
        const set = onNode.get(att.NodeID) ?? new Set<string>();
        set.add(att.Attachment.Network.ID);
        onNode.set(att.NodeID, set);
      }
      for (const node of tx.list("nodes")) {
        const wanted = [...(onNode.get(node.ID) ?? [])].sort();
        // Every ready node is on ingress (the mesh answers on every node), and keeps its address
        // there while it is in the cluster, so a node coming back keeps the same one.
        const hasIngress = (node.Attachments ?? []).some((x) => x.Network.ID === ingressId);
        if (ingressId && (node.Status.State === "ready" || hasIngress)) wanted.unshift(ingressId);
        const next = a.nodeAttachments(node, wanted);
        if (sameAttachments(next, node.Attachments)) continue;
        tx.update("nodes", { ...node, Attachments: next.length > 0 ? next : undefined } as NodeObject);
        result.nodes++;
      }
    });
  });
  return result;
}

function sameAttachments(a: NetworkAttachment[], b: NetworkAttachment[] | undefined): boolean {
  const key = (l: NetworkAttachment[] | undefined) =>
    (l ?? []).map((x) => ({ id: x.Network.ID, addrs: x.Addresses, v: x.Network.DriverState }));
  return same(key(a), key(b));
}

const loops = new WeakMap<ClusterStore, Allocator>();

/**
 * The allocator's leader loop. One per store: starting another stops the one before. It stops
 * itself once its leader term is over (a lost election, a closed manager), so the manager only
 * has to start it when it starts leading. Without a term (tests), it runs until stopped.
 */
export class Allocator {
  private readonly passes: CoalescedPass;
  private readonly unsubscribe: () => void;
  private readonly timer: NodeJS.Timeout;
  private first = true;
  private stopped = false;

  private readonly writer: StoreWriter;
  private readonly leading: () => boolean;

  constructor(
    private readonly store: ClusterStore,
    private readonly log: Logger,
    leader?: LeaderTerm,
    periodMs = 1000,
  ) {
    this.writer = leader ? leader.writer(store) : store;
    this.leading = leader ? () => leader.current : () => true;
    loops.get(store)?.stop();
    loops.set(store, this);
    this.passes = new CoalescedPass(() => this.pass(), log, "allocator");
    // Any change may need or free something (a node turning ready needs its ingress endpoint).
    this.unsubscribe = store.subscribe(() => this.kick());
    this.timer = setInterval(() => this.kick(), periodMs);
    this.kick();
  }

  kick(): void {
    if (this.stopped) return;
    if (!this.leading()) {
      this.stop();
      return;
    }
    this.passes.kick();
  }

  private async pass(): Promise<void> {
    if (!this.leading()) return this.stop();
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await allocatePass(this.store, { ensureIngress: this.first, writer: this.writer });
        this.first = false;
        if (r.ingressCreated) this.log.info("created the ingress network (routing mesh)");
        return;
      } catch (e) {
        // Another writer changed an object first: read again.
        if (attempt < 3 && isShoalError(e) && e.kind === "conflict") continue;
        throw e;
      }
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.passes.stop();
    clearInterval(this.timer);
    this.unsubscribe();
    if (loops.get(this.store) === this) loops.delete(this.store);
  }
}

/** Starts the allocator for a leader term (manager.ts calls it once the term's marker is applied). */
export function startAllocator(store: ClusterStore, leader: LeaderTerm, log: Logger): Allocator {
  return new Allocator(store, log, leader);
}
