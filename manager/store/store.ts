// The cluster store (manager/store): every cluster object in memory with its indexes, changed
// only by batches of actions committed through Raft. A writer reads, builds a batch in a
// transaction and proposes it; every member applies the committed batch in log order and checks
// each action's expected version there, so two writers on different managers cannot both win:
// the second batch is refused whole, deterministically, on every member. The store is the
// Raft StateMachine (apply, snapshot, restore) and the source of watch events.
import { Packr } from "msgpackr";
import { randomBytes } from "node:crypto";
import { conflict, invalid, notFound, ShoalError } from "../../shared/errors.js";
import { TERMINAL_STATES } from "../../shared/cluster.js";
import {
  NAMED_TABLES,
  TABLES,
  type StoreAction,
  type StoreEvent,
  type StoredObject,
  type TableName,
  type TableTypes,
  type TaskObject,
} from "./types.js";

const packr = new Packr({ useRecords: false });

/** Proposes an encoded batch through Raft; resolves with what apply() returned on this member. */
export type Proposer = (command: Uint8Array) => Promise<unknown>;

export function newObjectId(): string {
  // Swarm ids: 25 lower-case alphanumerics.
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = randomBytes(25);
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join("");
}

function nameOf(obj: StoredObject): string | undefined {
  const spec = (obj as { Spec?: { Name?: unknown } }).Spec;
  return typeof spec?.Name === "string" ? spec.Name : undefined;
}

/**
 * A batch a leader's loop wrote, refused at apply because a newer leader took office (see
 * ClusterStore.apply): the loop that wrote it must stop, it no longer leads.
 */
export class DeposedLeaderError extends ShoalError {
  constructor(message: string) {
    super("unavailable", message);
    this.name = "DeposedLeaderError";
  }
}

/** The apply result a proposer gets back when the batch was refused. */
interface Refusal {
  refused: { kind: "conflict" | "not_found" | "invalid" | "deposed"; message: string };
}

/**
 * What goes through Raft: a batch of actions (a plain list: the API's writes), a batch a
 * leader's loop wrote stamped with its term, or the marker a new leader writes before its loops
 * start.
 */
type Command =
  StoreAction[] | { actions: StoreAction[]; term: number } | { leader: { term: number; raftId: number } };

/** A refused stale batch, as the store reports it to whoever logs for it. */
export interface FencedBatch {
  index: number;
  /** The term the batch was stamped with by the loop that wrote it. */
  stampedTerm: number;
  /** The term of the Raft entry that carried it (the leader that appended it). */
  entryTerm: number | undefined;
  /** The newest leadership marker's term applied before it. */
  leaderTerm: number;
  actions: number;
}

function isRefusal(v: unknown): v is Refusal {
  return typeof v === "object" && v !== null && "refused" in v;
}

class Table<T extends StoredObject> {
  readonly byId = new Map<string, T>();
  readonly byName = new Map<string, string>();

  constructor(readonly name: TableName) {}

  put(obj: T): void {
    const old = this.byId.get(obj.ID);
    if (old) {
      const oldName = nameOf(old);
      if (oldName !== undefined && this.byName.get(oldName) === obj.ID) this.byName.delete(oldName);
    }
    this.byId.set(obj.ID, obj);
    const n = nameOf(obj);
    if (n !== undefined && NAMED_TABLES.has(this.name)) this.byName.set(n, obj.ID);
  }

  remove(id: string): void {
    const old = this.byId.get(id);
    if (!old) return;
    const n = nameOf(old);
    if (n !== undefined && this.byName.get(n) === id) this.byName.delete(n);
    this.byId.delete(id);
  }
}

/** Reads of one consistent moment. Objects are copies: changing them changes nothing. */
export interface ReadTx {
  get<K extends TableName>(table: K, id: string): TableTypes[K] | undefined;
  byName<K extends TableName>(table: K, name: string): TableTypes[K] | undefined;
  list<K extends TableName>(table: K, filter?: (o: TableTypes[K]) => boolean): Array<TableTypes[K]>;
  tasksOfService(serviceId: string): TaskObject[];
  tasksOfNode(nodeId: string): TaskObject[];
}

/** The object `ref` names, as the docker CLI's references go: its id, its name, or a unique id prefix. */
export function findByRef<K extends TableName>(tx: ReadTx, table: K, ref: string): TableTypes[K] | undefined {
  const byId = tx.get(table, ref);
  if (byId) return byId;
  const byName = tx.byName(table, ref);
  if (byName) return byName;
  const prefixed = tx.list(table, (o) => o.ID.startsWith(ref));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** A transaction: reads see its own writes; nothing is visible to others until the batch commits. */
export interface WriteTx extends ReadTx {
  create<K extends TableName>(
    table: K,
    object: Omit<TableTypes[K], "ID" | "Meta"> & { ID?: string },
  ): TableTypes[K];
  /** `object.Meta.Version.Index` must be the version read; a newer one in the store refuses the batch. */
  update<K extends TableName>(table: K, object: TableTypes[K]): void;
  delete(table: TableName, id: string, expectVersion?: number): void;
}

export class ClusterStore {
  private readonly tables = new Map<TableName, Table<StoredObject>>();
  private readonly listeners = new Set<(events: StoreEvent[]) => void>();
  private lastIndex = 0;
  /** The term of the newest leadership marker applied: the leadership now in office. */
  private leaderTermApplied = 0;
  private onFenced: ((f: FencedBatch) => void) | undefined;

  constructor(private proposer?: Proposer) {
    for (const t of TABLES) this.tables.set(t, new Table(t));
  }

  /** Set how batches reach Raft (the manager wires its RaftNode's propose here). */
  setProposer(p: Proposer): void {
    this.proposer = p;
  }

  /** Told of every batch refused at apply because its leader was deposed (the manager logs it). */
  setFencedListener(fn: (f: FencedBatch) => void): void {
    this.onFenced = fn;
  }

  /** The term of the newest leadership marker applied (0 before any). */
  get leaderTerm(): number {
    return this.leaderTermApplied;
  }

  /** The index of the last applied batch: the store's version. */
  get index(): number {
    return this.lastIndex;
  }

  private table<K extends TableName>(name: K): Table<TableTypes[K]> {
    return this.tables.get(name) as unknown as Table<TableTypes[K]>;
  }

  // ---- reads ------------------------------------------------------------------------------

  view<T>(fn: (tx: ReadTx) => T): T {
    return fn(
      this.reader(
        (t, id) => this.table(t).byId.get(id),
        (t) => [...this.table(t).byId.values()],
      ),
    );
  }

  private reader(
    get: (t: TableName, id: string) => StoredObject | undefined,
    all: (t: TableName) => StoredObject[],
  ): ReadTx {
    const copy = <T>(o: T | undefined): T | undefined => (o === undefined ? undefined : structuredClone(o));
    const list = <K extends TableName>(t: K, filter?: (o: TableTypes[K]) => boolean): Array<TableTypes[K]> =>
      (all(t) as Array<TableTypes[K]>).filter((o) => !filter || filter(o)).map((o) => structuredClone(o));
    return {
      get: (t, id) => copy(get(t, id)) as never,
      byName: (t, name) => copy(all(t).find((o) => nameOf(o) === name)) as never,
      list,
      tasksOfService: (serviceId) => list("tasks", (task) => task.ServiceID === serviceId),
      tasksOfNode: (nodeId) => list("tasks", (task) => task.NodeID === nodeId),
    };
  }

  // ---- writes -----------------------------------------------------------------------------

  /**
   * Run `fn` as a transaction and commit its batch through Raft. Resolves once this member has
   * applied it; throws 409 when another writer changed an object first (read again and retry),
   * 404 for an object deleted meanwhile, 400 for a duplicate name.
   */
  async update(fn: (tx: WriteTx) => void | Promise<void>, o: { term?: number } = {}): Promise<number> {
    const actions = await this.buildBatch(fn);
    if (actions.length === 0) return this.lastIndex;
    const command: Command = o.term === undefined ? actions : { actions, term: o.term };
    const result = await this.propose(command);
    if (isRefusal(result)) {
      const { kind, message } = result.refused;
      throw kind === "deposed" ? new DeposedLeaderError(message) : new ShoalError(kind, message);
    }
    return typeof result === "number" ? result : this.lastIndex;
  }

  /**
   * A new leader's first write: resolves once the marker of its term is applied here, so this
   * member's store holds everything the leaders before it committed, and batches stamped with an
   * older term are refused from then on. The leader's loops start only after it.
   */
  async markLeadership(term: number, raftId: number): Promise<void> {
    const result = await this.propose({ leader: { term, raftId } });
    if (isRefusal(result)) throw new DeposedLeaderError(result.refused.message);
  }

  private propose(command: Command): Promise<unknown> {
    if (!this.proposer) throw new Error("the cluster store has no Raft proposer: this member cannot write");
    return this.proposer(packr.pack(command));
  }

  private async buildBatch(fn: (tx: WriteTx) => void | Promise<void>): Promise<StoreAction[]> {
    const now = new Date().toISOString();
    const pending = new Map<string, StoredObject | null>();
    const key = (t: TableName, id: string): string => `${t}/${id}`;
    const actions: StoreAction[] = [];
    const get = (t: TableName, id: string): StoredObject | undefined => {
      const p = pending.get(key(t, id));
      if (p === null) return undefined;
      return p ?? this.table(t).byId.get(id);
    };
    const all = (t: TableName): StoredObject[] => {
      const out = new Map<string, StoredObject>();
      for (const [id, o] of this.table(t).byId) out.set(id, o);
      for (const [k, o] of pending) {
        if (!k.startsWith(`${t}/`)) continue;
        const id = k.slice(t.length + 1);
        if (o === null) out.delete(id);
        else out.set(id, o);
      }
      return [...out.values()];
    };
    const tx: WriteTx = {
      ...this.reader(get, all),
      create: (t, input) => {
        const object = {
          ...structuredClone(input),
          ID: input.ID ?? newObjectId(),
          Meta: { Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now },
        } as unknown as TableTypes[typeof t];
        if (get(t, object.ID)) throw conflict(`${t} object ${object.ID} already exists`);
        pending.set(key(t, object.ID), object);
        actions.push({ op: "create", table: t, object });
        return structuredClone(object);
      },
      update: (t, input) => {
        const current = get(t, input.ID);
        if (!current) throw notFound(`${t.replace(/s$/, "")} ${input.ID} not found`);
        const object = structuredClone(input) as StoredObject;
        object.Meta = { ...current.Meta, UpdatedAt: now };
        pending.set(key(t, input.ID), object);
        actions.push({ op: "update", table: t, object, expect: input.Meta.Version.Index });
      },
      delete: (t, id, expectVersion) => {
        if (!get(t, id)) throw notFound(`${t.replace(/s$/, "")} ${id} not found`);
        pending.set(key(t, id), null);
        actions.push({ op: "delete", table: t, id, expect: expectVersion });
      },
    };
    await fn(tx);
    return actions;
  }

  // ---- Raft state machine -----------------------------------------------------------------

  /**
   * Apply a committed batch at `index`: all of it or, when one action's check fails, none of it
   * (the proposer gets the reason). Deterministic: depends only on the batch and the state.
   */
  apply(index: number, command: Uint8Array, entryTerm?: number): unknown {
    if (command.length === 0) return undefined; // a leader's no-op entry
    const decoded = decodeCommand(command);
    if ("leader" in decoded) return this.applyLeadership(index, decoded.leader, entryTerm);
    const actions = Array.isArray(decoded) ? decoded : decoded.actions;
    const refusal =
      (Array.isArray(decoded) ? undefined : this.checkTerm(index, decoded.term, entryTerm, actions.length)) ??
      this.check(actions);
    if (refusal) {
      this.lastIndex = Math.max(this.lastIndex, index);
      return refusal;
    }
    const events: StoreEvent[] = [];
    for (const a of actions) {
      const table = this.tables.get(a.table) as Table<StoredObject>;
      if (a.op === "delete") {
        const old = table.byId.get(a.id);
        table.remove(a.id);
        if (old) events.push({ op: "delete", table: a.table, object: old, index });
        continue;
      }
      const old = table.byId.get(a.object.ID);
      const object = structuredClone(a.object);
      object.Meta = { ...object.Meta, Version: { Index: index } };
      table.put(object);
      events.push({ op: a.op, table: a.table, object, old, index });
    }
    this.lastIndex = Math.max(this.lastIndex, index);
    for (const fn of this.listeners) fn(events);
    return index;
  }

  /**
   * A leader's marker: it takes office in the store, unless the entry was appended in a later
   * term than the marker's (a deposed leader's marker, forwarded to the next leader).
   */
  private applyLeadership(
    index: number,
    leader: { term: number; raftId: number },
    entryTerm: number | undefined,
  ): unknown {
    this.lastIndex = Math.max(this.lastIndex, index);
    if ((entryTerm !== undefined && leader.term < entryTerm) || leader.term < this.leaderTermApplied)
      return {
        refused: {
          kind: "deposed",
          message: `the leadership of term ${leader.term} was superseded before it took office`,
        },
      } satisfies Refusal;
    this.leaderTermApplied = leader.term;
    return index;
  }

  /**
   * Fencing: a batch a leader's loop stamped with its term is refused when a newer leader took
   * office meanwhile. Either the entry was appended in a later term (the deposed leader's
   * follower forwarded it to the new leader), or a newer leader's marker was applied before it.
   */
  private checkTerm(
    index: number,
    stampedTerm: number,
    entryTerm: number | undefined,
    actions: number,
  ): Refusal | undefined {
    const newer = Math.max(entryTerm ?? 0, this.leaderTermApplied);
    if (stampedTerm >= newer) return undefined;
    this.onFenced?.({ index, stampedTerm, entryTerm, leaderTerm: this.leaderTermApplied, actions });
    return {
      refused: {
        kind: "deposed",
        message: `refused a batch of the leader of term ${stampedTerm}: the leader of term ${newer} now leads`,
      },
    };
  }

  private check(actions: StoreAction[]): Refusal | undefined {
    // Names and versions are checked against the state as the batch's earlier actions leave it.
    const names = new Map<string, string | null>();
    const versions = new Map<string, number | null>();
    const versionOf = (t: TableName, id: string): number | null | undefined => {
      const k = `${t}/${id}`;
      if (versions.has(k)) return versions.get(k);
      const o = this.table(t).byId.get(id);
      return o ? o.Meta.Version.Index : undefined;
    };
    const holderOf = (t: TableName, name: string): string | null | undefined => {
      const k = `${t}/${name}`;
      return names.has(k) ? names.get(k) : this.table(t).byName.get(name);
    };
    const refuse = (kind: Refusal["refused"]["kind"], message: string): Refusal => ({
      refused: { kind, message },
    });
    /** A unique name for the object, unless another object holds it (in the store or this batch). */
    const claimName = (t: TableName, obj: StoredObject): Refusal | undefined => {
      const n = nameOf(obj);
      if (n === undefined || !NAMED_TABLES.has(t)) return undefined;
      const holder = holderOf(t, n);
      if (holder != null && holder !== obj.ID)
        return refuse(
          "conflict",
          `${t.replace(/s$/, "")} name ${n} is already in use by ${holder}: choose another name`,
        );
      names.set(`${t}/${n}`, obj.ID);
      return undefined;
    };
    for (const a of actions) {
      if (a.op === "create") {
        if (versionOf(a.table, a.object.ID) != null)
          return refuse("conflict", `${a.table} object ${a.object.ID} already exists`);
        const taken = claimName(a.table, a.object);
        if (taken) return taken;
        versions.set(`${a.table}/${a.object.ID}`, -1);
      } else if (a.op === "update") {
        const v = versionOf(a.table, a.object.ID);
        if (v == null) return refuse("not_found", `${a.table.replace(/s$/, "")} ${a.object.ID} not found`);
        if (v !== -1 && v !== a.expect)
          return refuse(
            "conflict",
            `update out of sequence: ${a.table.replace(/s$/, "")} ${a.object.ID} is at version ${v}, not ${a.expect}: read it again and retry`,
          );
        const taken = claimName(a.table, a.object);
        if (taken) return taken;
        versions.set(`${a.table}/${a.object.ID}`, -1);
      } else {
        const v = versionOf(a.table, a.id);
        if (v == null) return refuse("not_found", `${a.table.replace(/s$/, "")} ${a.id} not found`);
        if (a.expect !== undefined && v !== -1 && v !== a.expect)
          return refuse(
            "conflict",
            `${a.table.replace(/s$/, "")} ${a.id} changed (version ${v}, not ${a.expect}): read it again`,
          );
        versions.set(`${a.table}/${a.id}`, null);
        const old = this.table(a.table).byId.get(a.id);
        const n = old ? nameOf(old) : undefined;
        if (n !== undefined) names.set(`${a.table}/${n}`, null);
      }
    }
    return undefined;
  }

  snapshot(): Uint8Array {
    const data: Record<string, StoredObject[]> = {};
    for (const t of TABLES) data[t] = [...this.table(t).byId.values()];
    return packr.pack({ index: this.lastIndex, tables: data, leaderTerm: this.leaderTermApplied });
  }

  restore(bytes: Uint8Array): void {
    const decoded = packr.unpack(bytes) as {
      index: number;
      tables: Record<string, StoredObject[]>;
      leaderTerm?: number;
    };
    if (typeof decoded?.index !== "number" || typeof decoded.tables !== "object")
      throw invalid("cluster store snapshot is not in the expected format");
    for (const t of TABLES) {
      const table = new Table<StoredObject>(t);
      for (const o of decoded.tables[t] ?? []) table.put(o);
      this.tables.set(t, table);
    }
    this.lastIndex = decoded.index;
    this.leaderTermApplied = decoded.leaderTerm ?? 0;
    // Watchers cannot follow a replaced state event by event: they get one reset marker.
    for (const fn of this.listeners) fn([]);
  }

  // ---- watching ---------------------------------------------------------------------------

  /**
   * Every applied batch's events, in order, synchronously after the state changed. An empty
   * list means the state was replaced by a snapshot: read everything again.
   */
  subscribe(fn: (events: StoreEvent[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Dead tasks beyond `keep` per slot (per node for global services), oldest first: what the task reaper deletes. */
  tasksBeyondHistory(keep: number): string[] {
    const groups = new Map<string, TaskObject[]>();
    for (const task of this.table("tasks").byId.values()) {
      const g = `${task.ServiceID}/${task.Slot > 0 ? `slot${task.Slot}` : `node${task.NodeID}`}`;
      const list = groups.get(g) ?? [];
      list.push(task);
      groups.set(g, list);
    }
    const out: string[] = [];
    for (const list of groups.values()) {
      const old = list
        .filter((t) => TERMINAL_STATES.has(t.Status.State) && TERMINAL_STATES.has(t.DesiredState))
        .sort((a, b) => b.Meta.Version.Index - a.Meta.Version.Index);
      // Count the live task of the slot toward `keep`, as swarmkit's history does.
      const live = list.length - old.length;
      out.push(
        ...old
          .slice(Math.max(0, keep - live))
          .map((t) => t.ID)
          .reverse(),
      );
    }
    return out;
  }
}

export function encodeBatch(actions: StoreAction[]): Uint8Array {
  return packr.pack(actions);
}

function decodeCommand(bytes: Uint8Array): Command {
  const c = packr.unpack(bytes) as Command;
  if (Array.isArray(c)) return c;
  if (typeof c === "object" && c !== null) {
    if ("leader" in c && typeof c.leader?.term === "number") return c;
    if ("actions" in c && Array.isArray(c.actions) && typeof c.term === "number") return c;
  }
  throw invalid("a cluster store command must be a batch of actions or a leadership marker");
}

/** A proposer for a store with no peers (one manager, tests): applies at once, in order. */
export function localProposer(store: ClusterStore): Proposer {
  let index = store.index;
  return async (command) => store.apply(++index, command);
}
