// Concurrent KV clients against a ProcessCluster, recording a history for the linearizability
// checker. Each client runs one op at a time: put, get or cas on a few shared keys, plus puts to
// keys written once (so "every acknowledged write is still there" can be checked directly).
// Call and return times come from performance.now(); an op whose outcome the client cannot know
// (timeout, broken connection, the server saying so) gets return = Infinity.
import { Agent, request } from "undici";
import type { KvOp as HistoryOp } from "../lin/checker.js";
import type { ProcessCluster } from "./process-cluster.js";
import { seededRand } from "../sim/rand.js";

export interface WorkloadOptions {
  clients: number;
  keys: string[];
  /** Per-request timeout; after it the outcome is unknown. */
  opTimeoutMs?: number;
  /** Share of ops that write a fresh write-once key. */
  uniqueShare?: number;
  seed?: number;
}

interface Reply {
  status: number;
  body: { ok?: boolean; value?: string | null; leader?: number; retry?: boolean; unknown?: boolean };
}

export interface AckedWrite {
  key: string;
  value: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Connection errors that prove the request never reached a server: safe to send elsewhere. */
function neverSent(e: unknown): boolean {
  const code =
    (e as { code?: string; cause?: { code?: string } }).code ??
    (e as { cause?: { code?: string } }).cause?.code;
  return code === "ECONNREFUSED";
}

export class Workload {
  readonly history: HistoryOp[] = [];
  /** Write-once keys whose put was acknowledged. */
  readonly acked: AckedWrite[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private leaderHint: number | undefined;
  private readonly agent = new Agent({ keepAliveTimeout: 10_000, connections: 16 });
  private readonly rand: () => number;
  private readonly opTimeoutMs: number;
  /** Successful ops per phase marker, to check the cluster made progress after a fault. */
  okCount = 0;

  constructor(
    private readonly cluster: ProcessCluster,
    readonly o: WorkloadOptions,
  ) {
    this.rand = seededRand(o.seed ?? 1);
    this.opTimeoutMs = o.opTimeoutMs ?? 2000;
  }

  start(): void {
    this.running = true;
    for (let c = 0; c < this.o.clients; c++) this.loops.push(this.clientLoop(`c${c}`));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  async close(): Promise<void> {
    await this.stop();
    await this.agent.close().catch(() => undefined);
  }

  /** Waits until `n` more ops have succeeded (the cluster is making progress). */
  async progress(n: number, what: string): Promise<void> {
    const target = this.okCount + n;
    await this.cluster.waitFor(() => this.okCount >= target, `${n} successful ops ${what}`);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)];
  }

  private async clientLoop(client: string): Promise<void> {
    let seq = 0;
    let n = 0;
    const seen = new Map<string, string | undefined>();
    while (this.running) {
      seq++;
      const r = this.rand();
      if (r < (this.o.uniqueShare ?? 0.15)) {
        const key = `u-${client}-${n++}`;
        const value = `${client}-${seq}`;
        const op: HistoryOp = { kind: "put", key, value, call: performance.now(), return: Infinity };
        this.history.push(op);
        const rep = await this.send({ client, seq, op: "put", key, value });
        if (rep?.status === 200) {
          op.return = performance.now();
          this.acked.push({ key, value });
          this.okCount++;
        }
        continue;
      }
      const key = this.pick(this.o.keys);
      const kind = r < 0.45 ? "put" : r < 0.75 ? "get" : "cas";
      const value = `${client}-${seq}`;
      const call = performance.now();
      if (kind === "put") {
        const op: HistoryOp = { kind, key, value, call, return: Infinity };
        this.history.push(op);
        const rep = await this.send({ client, seq, op: "put", key, value });
        if (rep?.status === 200) {
          op.return = performance.now();
          this.okCount++;
        }
      } else if (kind === "get") {
        const op: HistoryOp = { kind, key, call, return: Infinity };
        this.history.push(op);
        const rep = await this.send({ client, seq, op: "get", key });
        if (rep?.status === 200) {
          op.return = performance.now();
          op.result = rep.body.value ?? undefined;
          seen.set(key, op.result as string | undefined);
          this.okCount++;
        }
      } else {
        // Expect what this client last read, so a fair share of swaps succeed.
        const expected = seen.get(key);
        const op: HistoryOp = { kind, key, expected, value, call, return: Infinity };
        this.history.push(op);
        const rep = await this.send({ client, seq, op: "cas", key, value, expected: expected ?? null });
        if (rep?.status === 200) {
          op.return = performance.now();
          op.ok = rep.body.ok === true;
          this.okCount++;
        }
      }
    }
  }

  /**
   * Sends one request, following leader redirects and retrying while it is certain that no
   * server took it. Returns the final reply, or undefined when the outcome is unknown.
   */
  private async send(body: Record<string, unknown>): Promise<Reply | undefined> {
    const deadline = performance.now() + this.opTimeoutMs * 3;
    let target = this.leaderHint ?? this.pick(this.cluster.ids());
    while (performance.now() < deadline) {
      let rep: Reply;
      try {
        const res = await request(`${this.cluster.clientUrl(target)}/kv`, {
          method: "POST",
          dispatcher: this.agent,
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          headersTimeout: this.opTimeoutMs,
          bodyTimeout: this.opTimeoutMs,
        });
        rep = { status: res.statusCode, body: (await res.body.json()) as Reply["body"] };
      } catch (e) {
        if (!neverSent(e)) {
          this.leaderHint = undefined;
          return undefined;
        }
        target = this.pick(this.cluster.ids().filter((id) => id !== target));
        await sleep(10);
        continue;
      }
      if (rep.status === 200) {
        this.leaderHint = target;
        return rep;
      }
      if (rep.status === 421 && rep.body.leader !== undefined) {
        // Not the leader: nothing was proposed, try where it points.
        target = rep.body.leader;
        this.leaderHint = target;
        continue;
      }
      if (rep.status === 503 && rep.body.retry) {
        // No leader known there yet: nothing was proposed.
        this.leaderHint = undefined;
        target = this.pick(this.cluster.ids());
        await sleep(20);
        continue;
      }
      // 503/409 with unknown: the command may or may not take effect.
      this.leaderHint = undefined;
      return undefined;
    }
    return undefined;
  }

  /** Linearizable reads of `keys` through the leader (retrying until each returns), 16 at a time. */
  async readAll(keys: string[]): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    let seq = 0;
    let next = 0;
    const reader = async (): Promise<void> => {
      while (next < keys.length) {
        const key = keys[next++];
        for (;;) {
          const call = performance.now();
          const rep = await this.send({ client: "final-reader", seq: ++seq, op: "get", key });
          if (rep?.status === 200) {
            const result = rep.body.value ?? undefined;
            this.history.push({ kind: "get", key, result, call, return: performance.now() });
            out.set(key, result);
            break;
          }
          await sleep(20);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, () => reader()));
    return out;
  }
}
