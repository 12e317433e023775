// A Raft cluster of real processes: each member is `node dist/test/raft/kv/server.js` with its
// own WAL folder, talking gRPC on loopback. Every directed link i → j may go through a TcpProxy
// (member i is given the proxy's address for j), so tests can cut links; members can be killed
// (SIGKILL), restarted on the same folder, and paused (SIGSTOP / SIGCONT).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Agent, request } from "undici";
import { TcpProxy, type LinkMode } from "./process-proxy.js";

export const SERVER_JS = resolve(import.meta.dirname, "../../../dist/test/raft/kv/server.js");

export interface ClusterOptions {
  size: number;
  tickMs?: number;
  electionTicks?: number;
  snapshotEntries?: number;
  catchUpEntries?: number;
  /** Put a proxy on every directed link (needed for partition()). */
  proxied?: boolean;
}

export interface MemberStatus {
  id: number;
  term: number;
  lead: number;
  role: "follower" | "pre_candidate" | "candidate" | "leader";
  commit: number;
  applied: number;
}

interface Member {
  id: number;
  raftPort: number;
  clientPort: number;
  dir: string;
  proc?: ChildProcess;
  exited?: Promise<void>;
  paused: boolean;
  /** Joined a running cluster (started without --bootstrap). */
  joined: boolean;
  /** Removed from the raft membership and stopped: no longer one of ids(). */
  retired: boolean;
  /** The last lines of its stderr, shown when a test fails. */
  log: string[];
}

/** Ports this process handed out: the OS may offer a closed one again before its user binds it. */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (;;) {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ProcessCluster {
  readonly members = new Map<number, Member>();
  /** links.get(i).get(j): the proxy member i uses to reach member j. */
  private readonly links = new Map<number, Map<number, TcpProxy>>();
  private readonly agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  /** Every (term → leader) any member claimed, to catch two leaders in one term. */
  readonly leadersByTerm = new Map<number, Set<number>>();
  private watching: Promise<void> | undefined;
  private stopped = false;

  private constructor(
    readonly root: string,
    readonly o: Required<Omit<ClusterOptions, "snapshotEntries" | "catchUpEntries">> &
      Pick<ClusterOptions, "snapshotEntries" | "catchUpEntries">,
  ) {}

  static async start(opts: ClusterOptions): Promise<ProcessCluster> {
    if (!existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run npm run build first`);
    const root = await mkdtemp(join(tmpdir(), "shoal-raft-proc-"));
    const c = new ProcessCluster(root, {
      tickMs: 20,
      electionTicks: 10,
      proxied: false,
      ...opts,
    });
    try {
      for (let id = 1; id <= opts.size; id++) {
        c.members.set(id, {
          id,
          raftPort: await freePort(),
          clientPort: await freePort(),
          dir: join(root, `m${id}`),
          paused: false,
          joined: false,
          retired: false,
          log: [],
        });
      }
      if (c.o.proxied) {
        for (const i of c.members.keys()) {
          const row = new Map<number, TcpProxy>();
          for (const [j, mj] of c.members) {
            if (i === j) continue;
            const p = new TcpProxy(await freePort(), mj.raftPort);
            await p.start();
            row.set(j, p);
          }
          c.links.set(i, row);
        }
      }
      for (const id of c.members.keys()) c.spawn(id);
      c.watching = c.watchLeaders();
      await c.waitForLeader();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  /** The members that are part of the cluster (not retired). */
  ids(): number[] {
    return [...this.members.values()].filter((m) => !m.retired).map((m) => m.id);
  }

  raftAddr(id: number): string {
    return `127.0.0.1:${this.member(id).raftPort}`;
  }

  /**
   * Starts a new member process on an empty folder without --bootstrap (it knows the others'
   * addresses, but is in no configuration until the leader adds it). Needs an unproxied cluster.
   */
  async startJoiner(): Promise<number> {
    if (this.o.proxied) throw new Error("startJoiner() needs an unproxied cluster");
    const id = Math.max(...this.members.keys()) + 1;
    this.members.set(id, {
      id,
      raftPort: await freePort(),
      clientPort: await freePort(),
      dir: join(this.root, `m${id}`),
      paused: false,
      joined: true,
      retired: false,
      log: [],
    });
    this.spawn(id);
    await this.waitFor(async () => (await this.status(id)) !== undefined, `member ${id} to serve`);
    return id;
  }

  /** Kills a member that was removed from the membership; it no longer counts as one. */
  async retire(id: number): Promise<void> {
    await this.kill(id);
    this.member(id).retired = true;
  }

  /**
   * POSTs an admin request to the leader (following 421 redirects, retrying while there is no
   * leader) and returns its answer.
   */
  async admin(
    path: string,
    body: Record<string, unknown>,
    timeoutMs = 30_000,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const deadline = Date.now() + timeoutMs;
    let target = (await this.leader()) ?? this.ids()[0];
    for (;;) {
      let status: number;
      let out: Record<string, unknown> = {};
      try {
        const res = await request(`${this.clientUrl(target)}${path}`, {
          method: "POST",
          dispatcher: this.agent,
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        status = res.statusCode;
        out = (await res.body.json()) as Record<string, unknown>;
      } catch {
        status = 0;
      }
      if (status === 421 && typeof out.leader === "number") target = out.leader;
      else if (status === 0 || (status === 503 && out.retry === true)) {
        if (Date.now() > deadline) throw new Error(`admin ${path}: no leader answered\n${this.logs()}`);
        await sleep(50);
        target = (await this.leader()) ?? this.ids()[0];
      } else return { status, body: out };
    }
  }

  /** The sha256 of a member's state machine and the index it has applied. */
  async digest(id: number): Promise<{ applied: number; digest: string }> {
    const res = await request(`${this.clientUrl(id)}/admin/digest`, { dispatcher: this.agent });
    return (await res.body.json()) as { applied: number; digest: string };
  }

  clientUrl(id: number): string {
    return `http://127.0.0.1:${this.member(id).clientPort}`;
  }

  private member(id: number): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  private spawn(id: number): void {
    const m = this.member(id);
    const peers = [...this.members.values()]
      .map((p) => {
        const port = p.id === id || !this.o.proxied ? p.raftPort : this.links.get(id)?.get(p.id)?.listenPort;
        return `${p.id}=127.0.0.1:${port}`;
      })
      .join(",");
    const clientPeers = [...this.members.values()].map((p) => `${p.id}=127.0.0.1:${p.clientPort}`).join(",");
    const args = [
      SERVER_JS,
      ...["--id", String(id), "--peers", peers, "--client-peers", clientPeers],
      ...(m.joined ? [] : ["--bootstrap"]),
      ...["--dir", m.dir, "--client-port", String(m.clientPort)],
      ...["--tick-ms", String(this.o.tickMs), "--election-ticks", String(this.o.electionTicks)],
      // Short enough that a proposal lost with a leader is reported unknown well within a test.
      ...["--propose-timeout-ms", String(this.o.tickMs * this.o.electionTicks * 5)],
    ];
    if (this.o.snapshotEntries) args.push("--snapshot-entries", String(this.o.snapshotEntries));
    if (this.o.catchUpEntries) args.push("--catch-up-entries", String(this.o.catchUpEntries));
    const proc = spawn(process.execPath, args, {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, SHOAL_LOG_LEVEL: process.env.SHOAL_LOG_LEVEL ?? "info" },
    });
    m.proc = proc;
    m.paused = false;
    m.exited = new Promise((r) => proc.once("exit", () => r()));
    let partial = "";
    proc.stderr?.on("data", (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      m.log.push(...lines);
      if (m.log.length > 200) m.log.splice(0, m.log.length - 200);
    });
  }

  isUp(id: number): boolean {
    const p = this.member(id).proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** kill -9: no chance to flush anything that was not fsynced. */
  async kill(id: number): Promise<void> {
    const m = this.member(id);
    if (!this.isUp(id)) return;
    m.proc?.kill("SIGKILL");
    await m.exited;
    m.paused = false;
  }

  /** Starts a killed member again on the same folder (same WAL and snapshots). */
  async restart(id: number): Promise<void> {
    if (this.isUp(id)) throw new Error(`member ${id} is still running`);
    this.spawn(id);
    await this.waitFor(async () => (await this.status(id)) !== undefined, `member ${id} to serve again`);
  }

  pause(id: number): void {
    const m = this.member(id);
    m.proc?.kill("SIGSTOP");
    m.paused = true;
  }

  resume(id: number): void {
    const m = this.member(id);
    m.proc?.kill("SIGCONT");
    m.paused = false;
  }

  /** Cuts (or restores) the links from and to `id`; mode applies to both directions. */
  isolate(id: number, mode: LinkMode): void {
    if (!this.o.proxied) throw new Error("isolate() needs a proxied cluster");
    for (const [i, row] of this.links) for (const [j, p] of row) if (i === id || j === id) p.setMode(mode);
  }

  /** Splits the members into groups that cannot talk to each other. */
  partition(groups: number[][], mode: LinkMode): void {
    if (!this.o.proxied) throw new Error("partition() needs a proxied cluster");
    const group = new Map<number, number>();
    groups.forEach((g, k) => g.forEach((id) => group.set(id, k)));
    for (const [i, row] of this.links)
      for (const [j, p] of row) p.setMode(group.get(i) === group.get(j) ? "pass" : mode);
  }

  /** Sets the links between i and j, both directions (a partial partition when only some are cut). */
  link(i: number, j: number, mode: LinkMode): void {
    const a = this.links.get(i)?.get(j);
    const b = this.links.get(j)?.get(i);
    if (!a || !b) throw new Error(`no proxied link between ${i} and ${j}`);
    a.setMode(mode);
    b.setMode(mode);
  }

  heal(): void {
    for (const row of this.links.values()) for (const p of row.values()) p.setMode("pass");
  }

  async status(id: number, timeoutMs = 1000): Promise<MemberStatus | undefined> {
    if (!this.isUp(id) || this.member(id).paused) return undefined;
    try {
      const res = await request(`${this.clientUrl(id)}/status`, {
        dispatcher: this.agent,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return undefined;
      }
      return (await res.body.json()) as MemberStatus;
    } catch {
      return undefined;
    }
  }

  /** The member that is leader and whose leadership every other reachable member agrees with. */
  async leader(exclude: number[] = []): Promise<number | undefined> {
    const all = await Promise.all(this.ids().map((id) => this.status(id)));
    const live = all.filter((s): s is MemberStatus => s !== undefined && !exclude.includes(s.id));
    const leaders = live.filter((s) => s.role === "leader");
    if (leaders.length === 0) return undefined;
    const top = leaders.reduce((a, b) => (b.term > a.term ? b : a));
    const agree = live.filter((s) => s.lead === top.id && s.term === top.term).length;
    return agree > this.ids().length / 2 ? top.id : undefined;
  }

  async waitForLeader(exclude: number[] = []): Promise<number> {
    let found: number | undefined;
    await this.waitFor(async () => (found = await this.leader(exclude)) !== undefined, "a leader");
    return found as number;
  }

  /** Liveness deadline only (generous, never a performance assertion). */
  async waitFor(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await cond()) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${this.logs()}`);
      await sleep(25);
    }
  }

  /** Waits until every running member has applied the same index (it caught up after a fault). */
  async waitConverged(): Promise<void> {
    await this.waitFor(async () => {
      const running = this.ids().filter((id) => this.isUp(id) && !this.member(id).paused);
      const st = await Promise.all(running.map((id) => this.status(id)));
      if (st.some((s) => s === undefined)) return false;
      const applied = new Set(st.map((s) => (s as MemberStatus).applied));
      const commit = new Set(st.map((s) => (s as MemberStatus).commit));
      return applied.size === 1 && commit.size === 1;
    }, "every member to apply the same log");
  }

  /** Polls every member's status in the background and records who claimed leadership of which term. */
  private async watchLeaders(): Promise<void> {
    while (!this.stopped) {
      const all = await Promise.all(this.ids().map((id) => this.status(id, 500)));
      for (const s of all) {
        if (s?.role !== "leader") continue;
        let set = this.leadersByTerm.get(s.term);
        if (!set) this.leadersByTerm.set(s.term, (set = new Set()));
        set.add(s.id);
      }
      await sleep(10);
    }
  }

  /** Terms in which more than one member said it was leader (must be none). */
  splitBrains(): Array<{ term: number; leaders: number[] }> {
    return [...this.leadersByTerm]
      .filter(([, s]) => s.size > 1)
      .map(([term, s]) => ({ term, leaders: [...s] }));
  }

  /** Whether any member's retained log lines contain `text`. */
  logged(text: string): boolean {
    return [...this.members.values()].some((m) => m.log.some((l) => l.includes(text)));
  }

  logs(): string {
    return [...this.members.values()]
      .map((m) => `--- member ${m.id} (last lines) ---\n${m.log.slice(-15).join("\n")}`)
      .join("\n");
  }

  /** Kills every process (paused ones too), closes the proxies, removes the folders. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const m of this.members.values()) {
      if (m.proc && m.proc.exitCode === null && m.proc.signalCode === null) {
        m.proc.kill("SIGKILL");
        await m.exited;
      }
    }
    await this.watching?.catch(() => undefined);
    for (const row of this.links.values()) for (const p of row.values()) await p.stop();
    await this.agent.close().catch(() => undefined);
    await rm(this.root, { recursive: true, force: true });
  }
}
