// A manager whose Raft node stopped on a storage error steps down where everyone can see it: it
// logs the failure at error level, stops claiming to lead, and answers every write with a 503
// that says nothing was applied (and every confirmed read with a refusal), instead of going on
// as a leader that can no longer persist anything.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { Manager } from "../../manager/manager.js";
import { ShoalError } from "../../shared/errors.js";
import { FakeDisk } from "../raft/helpers/fake-disk.js";

function capturingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: "info" }, stream), lines };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const create = (m: Manager, name: string) =>
  m.store.update(
    (tx) =>
      void tx.create("services", {
        Spec: { Name: name, TaskTemplate: {}, Mode: { Replicated: { Replicas: 0 } } },
      }),
  );

describe("a manager whose raft node failed on storage", () => {
  it("steps down, logs it at error, and refuses writes and confirmed reads with a 503", async () => {
    const dir = await mkdtemp(join(tmpdir(), "shoal-mgr-"));
    const disk = new FakeDisk();
    const { log, lines } = capturingLogger();
    const m = await Manager.open({
      dir,
      raftId: 1,
      nodeId: "n1",
      addr: "127.0.0.1:1",
      bootstrap: true,
      log,
      disk,
      tickMs: 20,
    });
    try {
      await until("the leadership marker", () => m.store.leaderTerm > 0);
      await create(m, "before");
      disk.failSync = () => true;
      // The write in flight when the disk fails: raft may have taken it, so its outcome is unknown.
      const during = await create(m, "during").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(during).toBeInstanceOf(ShoalError);
      expect((during as ShoalError).status).toBe(503);
      await until("the step-down, logged at error", () =>
        lines.some((l) => l.level === 50 && /storage failure: this manager stepped down/.test(l.msg)),
      );
      expect(m.isLeader()).toBe(false);
      expect(m.stoppedBy).toBeDefined();
      const after = await create(m, "after").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((after as ShoalError).status).toBe(503);
      expect((after as ShoalError).message).toMatch(/^not applied: .*storage failure/);
      await expect(m.readBarrier(500)).rejects.toThrow();
      expect(m.store.view((tx) => tx.byName("services", "after"))).toBeUndefined();
    } finally {
      await m.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
