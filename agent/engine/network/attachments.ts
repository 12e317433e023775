// Plain containers on the cluster's attachable overlay networks (cluster-attach.ts says how):
// at every start each such endpoint asks the leader for an attachment (its address) and waits
// until this host has applied a network state holding it; at every stop it gives it back. After
// each applied state, attachments of this node that no local container holds are given back.
import type { NetworkState } from "../../../shared/network-state.js";
import { invalid, isShoalError, messageOf, notFound, unavailable } from "../../../shared/errors.js";
import type { Logger } from "../../../shared/logging.js";
import type { ContainerRecord, EndpointSettings, NetworkSettings } from "../container/types.js";
import {
  ATTACH_WAIT_MS,
  CONNECT_WAIT_MS,
  TASK_LABEL,
  type Attachment,
  type ClusterAttacher,
} from "./cluster-attach.js";
import type { NetworkTable } from "./networks.js";
import type { OverlaySelf } from "./overlay/driver.js";
import type { OverlayState } from "./overlay-state.js";
import type { ContainersOf } from "./types.js";

/** An overlay network named while this node is in no cluster (it left, or is still joining). */
export function notInCluster(name: string): Error {
  return invalid(
    `network ${name} is a cluster overlay network and this node is not part of a cluster: join the cluster (docker swarm join) to use it, or use a local network`,
  );
}

/** A service task's container (the worker labels it): its overlay addresses come with the task. */
export function isTaskContainer(rec: ContainerRecord): boolean {
  return (rec.Config.Labels ?? {})[TASK_LABEL] !== undefined;
}

/**
 * Wait until `ready()` holds after an applied state, or `waitMs` passed; `onTimeout` then
 * settles it (resolves when it returns nothing, rejects with what it returns).
 */
function untilApplied(
  overlay: OverlayState,
  ready: () => boolean,
  waitMs: number,
  onTimeout: () => Error | undefined,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (!ready()) return;
      clearTimeout(timer);
      overlay.offApplied(check);
      resolve();
    };
    const timer = setTimeout(() => {
      overlay.offApplied(check);
      const e = onTimeout();
      if (e) reject(e);
      else resolve();
    }, waitMs);
    overlay.onApplied(check);
  });
}

export class ClusterAttachments {
  /** The leader's ResourceAllocator while this node is in a cluster (plain containers on overlays). */
  private attacher: ClusterAttacher | undefined;
  /**
   * Containers between asking for attachments and running (or giving up): the sweep of unused
   * attachments leaves theirs alone. Running ones are the overlay state's members.
   */
  private readonly attaching = new Set<string>();
  /** Attachments being given back. */
  private readonly detaching = new Set<string>();

  constructor(
    private readonly table: NetworkTable,
    private readonly overlay: OverlayState,
    private readonly containersOf: ContainersOf,
    private readonly log: Logger,
  ) {}

  /** The daemon sets this while the node is in a cluster, and clears it when it leaves. */
  set(a: ClusterAttacher | undefined): void {
    this.attacher = a;
  }

  /** Whether this node is in a cluster (it may then use attachable overlay networks). */
  get inCluster(): boolean {
    return this.attacher !== undefined;
  }

  /** The container runs (or gave up): the sweep may give back what it does not hold. */
  settled(containerId: string): void {
    this.attaching.delete(containerId);
  }

  /**
   * After settingsForCreate, for a container on attachable overlay networks: this node must be
   * connected to the cluster's leader (waiting a moment for a session being opened), or the
   * create is refused with a 503 rather than leaving a container that cannot start.
   */
  async checkReachable(settings: NetworkSettings, task = false): Promise<void> {
    if (task) return;
    const names = Object.entries(settings.Networks)
      .filter(([, ep]) => this.overlay.isClusterNetwork(ep.NetworkID))
      .map(([name]) => name);
    if (names.length === 0) return;
    const a = this.attacher;
    if (!a) throw notInCluster(names[0]);
    if (!(await a.connected(CONNECT_WAIT_MS)))
      throw unavailable(
        `cannot attach to overlay network ${names[0]}: this node has no connection to the cluster's leader, which gives the container its address; try again when the managers are reachable (docker node ls on a manager)`,
      );
  }

  /**
   * Until every one of `refs` names a network this host knows locally or from the cluster's
   * state (one made on a manager a moment ago reaches every node within milliseconds), or
   * `waitMs` passed.
   */
  async awaitNetworks(refs: string[], waitMs: number): Promise<void> {
    if (!this.attacher) return;
    const known = (): boolean =>
      refs.every((r) => {
        try {
          return this.table.find(r) !== undefined || this.overlay.clusterNetwork(r) !== undefined;
        } catch {
          return true; // ambiguous: settingsForCreate says so
        }
      });
    if (known()) return;
    await untilApplied(this.overlay, known, waitMs, () => undefined);
  }

  /** The endpoints of a plain container on the cluster's overlay networks (none for a task's). */
  endpointsOf(rec: ContainerRecord, only?: string): Array<[string, EndpointSettings]> {
    if (isTaskContainer(rec)) return [];
    return Object.entries(rec.NetworkSettings?.Networks ?? {}).filter(
      ([name, ep]) => (only === undefined || name === only) && this.overlay.isClusterNetwork(ep.NetworkID),
    );
  }

  /**
   * Moby's AttachNetwork: for each endpoint, an attachment from the leader (its address), kept
   * in the endpoint; then wait until this host has applied a network state that holds every one
   * of them, with this node on the network (its bridge and VXLAN device made). Returns network
   * id → address. What was attached before a failure is in the endpoints: release gives it back.
   */
  async attach(
    rec: ContainerRecord,
    endpoints: Array<[string, EndpointSettings]>,
  ): Promise<Map<string, string>> {
    const given = new Map<string, string>();
    if (endpoints.length === 0) return given;
    const attacher = this.attacher;
    if (!attacher) throw notInCluster(endpoints[0][0]);
    // Until the container runs (wire) or gives up (release).
    this.attaching.add(rec.Id);
    const made: Array<{ name: string; a: Attachment }> = [];
    for (const [name, ep] of endpoints) {
      let a: Attachment;
      try {
        a = await attacher.attach({
          network: ep.NetworkID,
          containerId: rec.Id,
          containerName: rec.Name,
          aliases: ep.Aliases ?? [],
          address: ep.IPAMConfig?.IPv4Address || undefined,
        });
      } catch (e) {
        // The cluster no longer has the network the container was made for.
        if (isShoalError(e) && e.status === 404 && e.message.includes(ep.NetworkID))
          throw notFound(
            `network ${name} not found: it was removed from the cluster; disconnect container ${rec.Name} from it (docker network disconnect) or recreate the container`,
          );
        throw e;
      }
      ep.AttachmentID = a.attachmentId;
      made.push({ name, a });
      given.set(a.networkId, a.address.split("/")[0]);
    }
    await Promise.all(made.map(({ name, a }) => this.waitFor(rec, name, a)));
    return given;
  }

  /** Until the applied state holds the attachment and this node's endpoint on its network. */
  private async waitFor(rec: ContainerRecord, name: string, a: Attachment): Promise<void> {
    const address = a.address.split("/")[0];
    const ready = (): boolean => {
      const applied = this.overlay.current;
      if (!applied) return false;
      const { state, self } = applied;
      return (
        state.tasks.some((t) => t.taskId === a.attachmentId && t.address === address) &&
        state.nodes.some((n) => n.networkId === a.networkId && n.nodeId === self.nodeId) &&
        this.table.find(a.networkId)?.record.Driver === "overlay"
      );
    };
    if (ready()) return;
    await untilApplied(this.overlay, ready, ATTACH_WAIT_MS, () =>
      unavailable(
        `container ${rec.Name}: the managers gave it ${address} on overlay network ${name}, but this node did not get the network from them within ${ATTACH_WAIT_MS / 1000} s: check its connection to the managers (docker node ls) and start it again`,
      ),
    );
  }

  /** Give an attachment back in the background; the sweep after each state apply retries. */
  detach(attachmentId: string): void {
    const attacher = this.attacher;
    if (!attacher || this.detaching.has(attachmentId)) return;
    this.detaching.add(attachmentId);
    attacher
      .detach(attachmentId)
      .then(
        () => this.log.debug({ attachment: attachmentId }, "gave an overlay network attachment back"),
        (e: unknown) =>
          this.log.warn(
            { attachment: attachmentId, err: messageOf(e) },
            "giving an overlay network attachment back failed; trying again with the next network state",
          ),
      )
      .finally(() => this.detaching.delete(attachmentId));
  }

  /**
   * The cluster's attachments of this node that no local container holds (its container
   * stopped while the leader was unreachable, the daemon died before it could say so, an
   * answer was lost): given back, so no address leaks. Containers still asking are left alone.
   */
  detachUnused(state: NetworkState, self: OverlaySelf): void {
    if (!this.attacher) return;
    for (const t of state.tasks) {
      if (t.nodeId !== self.nodeId || !t.containerId || this.attaching.has(t.containerId)) continue;
      // Held: a running container's endpoint has it (a stopped one gave it back at exit, a
      // record left "created" by a crash mid-start never ran with it).
      const held =
        this.overlay.isMember(t.containerId) &&
        this.containersOf(t.networkId).some(
          (c) => c.id === t.containerId && c.endpoint.AttachmentID === t.taskId,
        );
      if (held) continue;
      this.log.info(
        { attachment: t.taskId, container: t.containerId.slice(0, 12), network: t.networkId },
        "giving back an overlay network attachment no local container uses",
      );
      this.detach(t.taskId);
    }
  }
}
