// Tags and digest references -> image ids, persisted in <root>/repositories.json in dockerd's
// own layout ({"Repositories": {name: {ref: id}}}), so an operator reading it sees what they know.
import { join } from "node:path";
import { readJsonIfExists, writeJsonAtomic } from "../../../shared/fsutil.js";
import { familiarName, parseReference } from "../../../shared/reference.js";

interface RepositoriesFile {
  Repositories: Record<string, Record<string, string>>;
}

export class TagStore {
  /** Familiar reference ("busybox:latest" or "busybox@sha256:...") -> image id. */
  private readonly refs = new Map<string, string>();

  private constructor(private readonly file: string) {}

  static async open(root: string): Promise<TagStore> {
    const store = new TagStore(join(root, "repositories.json"));
    const data = await readJsonIfExists<RepositoriesFile>(store.file);
    for (const repo of Object.values(data?.Repositories ?? {})) {
      for (const [ref, id] of Object.entries(repo)) store.refs.set(ref, id);
    }
    return store;
  }

  get(ref: string): string | undefined {
    return this.refs.get(ref);
  }

  /** References to one image, tags first, sorted so listings are stable. */
  refsOf(id: string): { tags: string[]; digests: string[] } {
    const all = [...this.refs]
      .filter(([, v]) => v === id)
      .map(([k]) => k)
      .sort();
    return { tags: all.filter((r) => !r.includes("@")), digests: all.filter((r) => r.includes("@")) };
  }

  set(ref: string, id: string): void {
    this.refs.set(ref, id);
  }

  delete(ref: string): boolean {
    return this.refs.delete(ref);
  }

  async save(): Promise<void> {
    const Repositories: Record<string, Record<string, string>> = {};
    for (const [ref, id] of [...this.refs].sort(([a], [b]) => a.localeCompare(b))) {
      const name = familiarName(parseReference(ref));
      (Repositories[name] ??= {})[ref] = id;
    }
    await writeJsonAtomic(this.file, { Repositories } satisfies RepositoriesFile);
  }
}
