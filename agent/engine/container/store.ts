import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { conflict, invalid, notFound } from "../../../shared/errors.js";
import { readJsonIfExists, writeJsonAtomic } from "../../../shared/fsutil.js";
import type { ContainerRecord } from "./types.js";

export const NAME_PATTERN = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function nameInUse(name: string, id: string): Error {
  return conflict(
    `Conflict. The container name "/${name}" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`,
  );
}

/**
 * Container records in memory, each mirrored to <containersRoot>/<id>/container.json, plus the
 * name index. Names are reserved synchronously so two creates racing for a name cannot both win.
 */
export class ContainerStore {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly names = new Map<string, string>();
  private readonly writes = new Map<string, Promise<void>>();

  constructor(readonly root: string) {}

  dir(id: string): string {
    return join(this.root, id);
  }

  /**
   * Load the records on disk that are not in memory yet; returns their ids, and the folders that
   * hold no record (a create that crashed halfway).
   */
  async load(): Promise<{
    loaded: string[];
    orphans: string[];
    broken: Array<{ id: string; error: unknown }>;
  }> {
    const loaded: string[] = [];
    const orphans: string[] = [];
    const broken: Array<{ id: string; error: unknown }> = [];
    let entries: string[];
    try {
      entries = await readdir(this.root);
    } catch {
      return { loaded, orphans, broken };
    }
    for (const id of entries) {
      if (!/^[0-9a-f]{64}$/.test(id) || this.byId.has(id)) continue;
      try {
        const rec = await readJsonIfExists<ContainerRecord>(join(this.root, id, "container.json"));
        if (!rec) {
          orphans.push(id);
          continue;
        }
        this.byId.set(rec.Id, rec);
        this.names.set(rec.Name, rec.Id);
        loaded.push(rec.Id);
      } catch (error) {
        broken.push({ id, error });
      }
    }
    return { loaded, orphans, broken };
  }

  all(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Hold a name for a container being created; throws the Docker conflict when it is taken. */
  reserveName(name: string, id: string): void {
    const holder = this.names.get(name);
    if (holder !== undefined && holder !== id) throw nameInUse(name, holder);
    this.names.set(name, id);
  }

  releaseName(name: string, id: string): void {
    if (this.names.get(name) === id) this.names.delete(name);
  }

  nameTaken(name: string): boolean {
    return this.names.has(name);
  }

  /**
   * Add or update a record and write it to disk. Writes of one record are queued and each writes
   * the record as it is when its turn comes, so the file never ends older than memory.
   */
  save(rec: ContainerRecord): Promise<void> {
    this.byId.set(rec.Id, rec);
    this.names.set(rec.Name, rec.Id);
    const path = join(this.root, rec.Id, "container.json");
    const prev = this.writes.get(rec.Id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => writeJsonAtomic(path, this.byId.get(rec.Id) ?? rec));
    this.writes.set(rec.Id, next);
    void next
      .catch(() => undefined)
      .then(() => {
        if (this.writes.get(rec.Id) === next) this.writes.delete(rec.Id);
      });
    return next;
  }

  /** Forget a record (its folder is the caller's to remove). */
  drop(id: string): void {
    const rec = this.byId.get(id);
    if (!rec) return;
    this.byId.delete(id);
    this.releaseName(rec.Name, id);
  }

  /** Find by full id, name (leading "/" allowed), or unique id prefix. */
  resolve(ref: string): ContainerRecord {
    const found = this.find(ref);
    if (!found) throw notFound(`No such container: ${ref}`);
    return found;
  }

  find(ref: string): ContainerRecord | undefined {
    if (ref === "") return undefined;
    const exact = this.byId.get(ref);
    if (exact) return exact;
    const name = ref.startsWith("/") ? ref.slice(1) : ref;
    const byName = this.names.get(name);
    if (byName !== undefined && this.byId.has(byName)) return this.byId.get(byName);
    if (!/^[0-9a-f]+$/.test(ref)) return undefined;
    const matches = [...this.byId.keys()].filter((id) => id.startsWith(ref));
    if (matches.length > 1) {
      throw invalid(
        `Multiple containers match the id prefix ${ref}: use more characters of the id or the name`,
      );
    }
    return matches.length === 1 ? this.byId.get(matches[0]) : undefined;
  }
}
