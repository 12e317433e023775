// A small replicated key-value store: the state machine the Raft tests and the benchmark run
// (the cluster store is the real user later). Deterministic: the same entries in the same
// order give the same state and results on every member.
import { Packr } from "msgpackr";
import { decodeKvCommand, type KvResult } from "./commands.js";

interface ClientSession {
  seq: number;
  result: KvResult;
}

interface KvSnapshot {
  applied: number;
  data: Array<[string, string]>;
  sessions: Array<[string, ClientSession]>;
}

const packr = new Packr({ useRecords: false });

export class KvStateMachine {
  private data = new Map<string, string>();
  /** The last command applied per client, to answer a retried command without applying it again. */
  private sessions = new Map<string, ClientSession>();
  /** Index of the last entry applied; entries at or below it are ignored (exactly once). */
  applied = 0;
  /** Every (index, client, seq) applied, in order; tests compare these across members. */
  readonly trace: Array<{ index: number; client: string; seq: number }> = [];
  traceEnabled = false;

  /** Apply one committed normal entry. Empty data (a leader's no-op) changes nothing. */
  apply(index: number, data: Uint8Array): KvResult | undefined {
    if (index <= this.applied) return undefined;
    this.applied = index;
    if (data.length === 0) return undefined;
    const c = decodeKvCommand(data);
    const session = this.sessions.get(c.client);
    if (session && c.seq <= session.seq) return session.seq === c.seq ? session.result : undefined;
    const result = this.execute(c.cmd);
    this.sessions.set(c.client, { seq: c.seq, result });
    if (this.traceEnabled) this.trace.push({ index, client: c.client, seq: c.seq });
    return result;
  }

  private execute(cmd: ReturnType<typeof decodeKvCommand>["cmd"]): KvResult {
    const current = this.data.get(cmd.key) ?? null;
    switch (cmd.op) {
      case "put":
        this.data.set(cmd.key, cmd.value);
        return { ok: true, value: null };
      case "cas":
        if (current !== cmd.expected) return { ok: false, value: current };
        this.data.set(cmd.key, cmd.value);
        return { ok: true, value: current };
      case "get":
        return { ok: true, value: current };
    }
  }

  /** A read served locally, for ReadIndex reads once `applied` has reached the read index. */
  read(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  snapshot(): Uint8Array {
    const s: KvSnapshot = { applied: this.applied, data: [...this.data], sessions: [...this.sessions] };
    return packr.pack(s);
  }

  restore(bytes: Uint8Array): void {
    const s = packr.unpack(bytes) as KvSnapshot;
    this.applied = s.applied;
    this.data = new Map(s.data);
    this.sessions = new Map(s.sessions);
  }
}
