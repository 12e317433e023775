// What a node keeps of its cluster membership under <data-root>/swarm: state.json (who it is,
// its role, where it listens, the managers last heard of), certs/ (the cluster CA's certificate,
// the node's certificate and key), raft/ while it manages and worker/ for its agent.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ensureDir, readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "../../shared/fsutil.js";
import type { TlsIdentity } from "../../shared/grpc-tls.js";

export type Role = "manager" | "worker";

export interface SwarmState {
  nodeId: string;
  clusterId: string;
  role: Role;
  /** This node's Raft member id while it manages (a new one for every promotion). */
  raftId: number;
  /** What the cluster port binds, e.g. 0.0.0.0:2377. */
  listenAddr: string;
  /** host:port the other nodes use to reach this one. */
  advertiseAddr: string;
  /** Managers last heard of (a worker's way back after its restart). */
  managers: string[];
}

export class SwarmFiles {
  readonly dir: string;

  constructor(dataRoot: string) {
    this.dir = join(dataRoot, "swarm");
  }

  /** The Raft member's WAL, snapshots and members.json. */
  get raftDir(): string {
    return join(this.dir, "raft");
  }

  /** The agent's stored assignments. */
  get workerDir(): string {
    return join(this.dir, "worker");
  }

  private get certs(): string {
    return join(this.dir, "certs");
  }

  /** The membership this daemon had, if any (with its identity). */
  async read(): Promise<{ state: SwarmState; identity: TlsIdentity } | undefined> {
    const state = await readJsonIfExists<SwarmState>(join(this.dir, "state.json"));
    if (!state || !state.role) return undefined;
    const identity = {
      caPem: await readFile(join(this.certs, "ca.crt"), "utf8"),
      certPem: await readFile(join(this.certs, "node.crt"), "utf8"),
      keyPem: await readFile(join(this.certs, "node.key"), "utf8"),
    };
    return { state, identity };
  }

  async saveState(state: SwarmState): Promise<void> {
    await writeJsonAtomic(join(this.dir, "state.json"), state);
  }

  async writeCerts(identity: TlsIdentity): Promise<void> {
    const certs = await ensureDir(this.certs);
    await writeFileAtomic(join(certs, "ca.crt"), identity.caPem);
    await writeFileAtomic(join(certs, "node.crt"), identity.certPem);
    await writeFileAtomic(join(certs, "node.key"), identity.keyPem, 0o600);
  }

  async removeRaft(): Promise<void> {
    await rm(this.raftDir, { recursive: true, force: true });
  }

  /** Forget the cluster. */
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
