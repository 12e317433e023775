// The volume store on a temporary folder: names, idempotent create, users, prune, copy-up, leftovers.
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VolumeStore } from "../../agent/engine/volume/store.js";
import { ANONYMOUS_LABEL, type VolumeUser } from "../../agent/engine/volume/types.js";
import { ShoalError } from "../../shared/errors.js";
import { silentLogger } from "../../shared/logging.js";

async function rejects(p: Promise<unknown>, status: number, message: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ShoalError);
  expect((e as ShoalError).status).toBe(status);
  expect((e as ShoalError).message).toMatch(message);
}

describe("VolumeStore", () => {
  let dir: string;
  let root: string;
  let users: Map<string, VolumeUser[]>;
  let store: VolumeStore;
  const open = () => VolumeStore.open(root, silentLogger(), (name) => [...(users.get(name) ?? [])]);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "shoal-volume-store-"));
    root = join(dir, "volumes");
    users = new Map();
    store = await open();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("creates named volumes once, keeps them across a reopen, and validates names", async () => {
    const first = await store.create({ Name: "data", Labels: { team: "a" } });
    expect(first.created).toBe(true);
    expect(first.volume).toMatchObject({
      Name: "data",
      Driver: "local",
      Scope: "local",
      Mountpoint: join(root, "data", "_data"),
      Labels: { team: "a" },
      Anonymous: false,
    });
    expect(first.volume.CreatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect((await stat(first.volume.Mountpoint)).mode & 0o777).toBe(0o755);
    const again = await store.create({ Name: "data", Labels: { other: "b" } });
    expect(again.created).toBe(false);
    expect(again.volume.Labels).toEqual({ team: "a" });
    const reopened = await open();
    expect(reopened.inspect("data").Labels).toEqual({ team: "a" });
    await rejects(store.create({ Name: "a" }), 400, /"a" includes invalid characters/);
    await rejects(store.create({ Name: "../x" }), 400, /invalid characters/);
    await rejects(store.create({ Name: "ok1", Driver: "nfs" }), 400, /volume driver "nfs" is not supported/);
    await rejects(
      store.create({ Name: "ok1", DriverOpts: { bogus: "1" } }),
      400,
      /invalid option key: "bogus"/,
    );
    expect(() => store.inspect("nope")).toThrow(/No such volume: nope/);
    expect(await readdir(root)).toEqual(["data"]);
  });

  it("anonymous volumes get a 64-hex name and Docker's label", async () => {
    const { volume } = await store.create({ Anonymous: true });
    expect(volume.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(volume.Labels).toEqual({ [ANONYMOUS_LABEL]: "" });
    expect(volume.Anonymous).toBe(true);
  });

  it("refuses to remove a volume in use (even with force) and names the containers", async () => {
    await store.create({ Name: "busy" });
    users.set("busy", [{ id: "c".repeat(64), name: "web" }]);
    await rejects(store.remove("busy"), 409, /remove busy: volume is in use - \[c{64}\] \(container web\)/);
    await rejects(store.remove("busy", { force: true }), 409, /in use/);
    users.delete("busy");
    await store.remove("busy");
    await rejects(store.remove("busy"), 404, /No such volume: busy/);
    await store.remove("busy", { force: true });
    expect(await readdir(root)).toEqual([]);
  });

  it("a create's hold counts as a use until released", async () => {
    await store.create({ Name: "held" }, "container-1");
    await rejects(store.remove("held"), 409, /in use - \[container-1\]/);
    expect(store.list({ dangling: ["true"] })).toEqual([]);
    store.release("container-1");
    expect(store.list({ dangling: ["true"] }).map((v) => v.Name)).toEqual(["held"]);
  });

  it("lists with Docker's filters", async () => {
    await store.create({ Name: "web-data", Labels: { app: "web", tier: "front" } });
    await store.create({ Name: "db-data", Labels: { app: "db" } });
    await store.create({ Name: "cache" });
    users.set("db-data", [{ id: "d".repeat(64), name: "db" }]);
    const names = (f: Record<string, string[]>) => store.list(f).map((v) => v.Name);
    expect(names({})).toEqual(["cache", "db-data", "web-data"]);
    expect(names({ dangling: ["true"] })).toEqual(["cache", "web-data"]);
    expect(names({ dangling: ["false"] })).toEqual(["db-data"]);
    expect(names({ name: ["data"] })).toEqual(["db-data", "web-data"]);
    expect(names({ label: ["app"] })).toEqual(["db-data", "web-data"]);
    expect(names({ label: ["app=web", "tier=front"] })).toEqual(["web-data"]);
    expect(names({ driver: ["local"] })).toHaveLength(3);
    expect(() => store.list({ colour: ["red"] })).toThrow(/invalid filter 'colour'/);
    expect(() => store.list({ dangling: ["maybe"] })).toThrow(/invalid filter 'dangling=maybe'/);
  });

  it("prune removes unused anonymous volumes, with all=true named ones too, and counts the bytes", async () => {
    const anon = (await store.create({ Anonymous: true })).volume;
    const usedAnon = (await store.create({ Anonymous: true })).volume;
    await store.create({ Name: "named" });
    users.set(usedAnon.Name, [{ id: "e".repeat(64), name: "app" }]);
    await writeFile(join(anon.Mountpoint, "f"), "12345");
    expect(await store.prune()).toEqual({ VolumesDeleted: [anon.Name], SpaceReclaimed: 5 });
    expect(await store.prune({ label: ["nope"], all: ["true"] })).toEqual({
      VolumesDeleted: [],
      SpaceReclaimed: 0,
    });
    expect((await store.prune({ all: ["true"] })).VolumesDeleted).toEqual(["named"]);
    expect(store.list().map((v) => v.Name)).toEqual([usedAnon.Name]);
    expect((await readdir(root)).sort()).toEqual([usedAnon.Name]);
  });

  it("copy-up fills an empty volume once, keeping owners, modes and links", async () => {
    const src = join(dir, "image-data");
    await mkdir(join(src, "sub"), { recursive: true });
    await writeFile(join(src, "sub", "file"), "from the image");
    await chmod(join(src, "sub", "file"), 0o640);
    await chown(join(src, "sub"), 1000, 1000);
    await symlink("/etc/passwd", join(src, "link"));
    await chmod(src, 0o750);
    await chown(src, 1234, 1234);
    const { volume } = await store.create({ Name: "filled" });
    await store.fillIfEmpty("filled", src);
    const data = volume.Mountpoint;
    expect(await readFile(join(data, "sub", "file"), "utf8")).toBe("from the image");
    expect((await stat(join(data, "sub", "file"))).mode & 0o777).toBe(0o640);
    expect((await stat(join(data, "sub"))).uid).toBe(1000);
    const top = await stat(data);
    expect([top.uid, top.mode & 0o777]).toEqual([1234, 0o750]);
    expect((await readdir(data)).sort()).toEqual(["link", "sub"]);
    // Not empty any more: a second fill changes nothing.
    await writeFile(join(src, "new"), "x");
    await store.fillIfEmpty("filled", src);
    expect((await readdir(data)).sort()).toEqual(["link", "sub"]);
  });

  it("at open, removes what an interrupted create or remove left and skips strange folders", async () => {
    await mkdir(join(root, ".tmp-0123"), { recursive: true });
    await mkdir(join(root, ".removing-4567", "_data"), { recursive: true });
    await mkdir(join(root, "stray"), { recursive: true });
    const reopened = await open();
    expect((await readdir(root)).sort()).toEqual(["stray"]);
    expect(reopened.list()).toEqual([]);
    await rejects(reopened.create({ Name: "stray" }), 409, /already exists but is no volume of this daemon/);
    expect((await readdir(root)).sort()).toEqual(["stray"]);
  });
});
