// The exec engine against real runc + conmon: output and exit codes through conmon's exec mode,
// a TTY with its size, the session rules (404, 409, one start only), and a failed start that
// leaves nothing behind.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ContainerEngine } from "../../agent/engine/container/engine.js";
import type { AttachSocket } from "../../agent/engine/runtime/attach-socket.js";
import { makeContainerEnv } from "../helpers/container-env.js";

const env = await makeContainerEnv();
let engine: ContainerEngine;
let id: string;

beforeAll(async () => {
  engine = await env.open();
  ({ Id: id } = await engine.create({
    config: { Image: "busybox", Cmd: ["sleep", "1000"] },
    hostConfig: { NetworkMode: "none" },
  }));
  await engine.start(id);
});
afterAll(() => env.cleanup());

function collect(socket: AttachSocket | undefined): { text: () => string } {
  let out = "";
  socket?.onOutput((o) => (out += `${o.stream}:${o.data.toString()}`));
  return { text: () => out };
}

const base = { AttachStdout: true, AttachStderr: true };

it("runs a command and records its exit code", async () => {
  const { Id } = await engine.exec.create(id, {
    ...base,
    Cmd: ["sh", "-c", "echo out; echo err >&2; exit 7"],
  });
  const run = await engine.exec.start(Id, { Detach: false, Tty: false });
  const out = collect(run.socket);
  expect(await run.exited).toBe(7);
  await run.socket?.ended;
  expect(out.text()).toContain("stdout:out\n");
  expect(out.text()).toContain("stderr:err\n");
  const info = await engine.exec.inspect(Id);
  expect(info.ExitCode).toBe(7);
  expect(info.Running).toBe(false);
  expect(info.ContainerID).toBe(id);
  // Docker's events, with the exec's id and its exit code.
  const mine = engine.events.history().filter((e) => e.Actor.Attributes.execID === Id);
  expect(mine.map((e) => e.Action)).toEqual([
    "exec_create: sh -c echo out; echo err >&2; exit 7",
    "exec_start: sh -c echo out; echo err >&2; exit 7",
    "exec_die",
  ]);
  expect(mine[2].Actor).toMatchObject({ ID: id, Attributes: { exitCode: "7", name: expect.any(String) } });
  // started once only
  await expect(engine.exec.start(Id, { Detach: false, Tty: false })).rejects.toMatchObject({
    kind: "conflict",
  });
});

it("gives a terminal of the asked size", async () => {
  const { Id } = await engine.exec.create(id, { ...base, Tty: true, Cmd: ["stty", "size"] });
  const run = await engine.exec.start(Id, { Detach: false, Tty: true, ConsoleSize: [31, 97] });
  const out = collect(run.socket);
  expect(await run.exited).toBe(0);
  await run.socket?.ended;
  expect(out.text()).toContain("31 97");
});

it("refuses a missing command with 127 and leaves nothing behind", async () => {
  const { Id } = await engine.exec.create(id, { ...base, Cmd: ["nosuchcommand"] });
  await expect(engine.exec.start(Id, { Detach: false, Tty: false })).rejects.toThrow(
    /executable file not found/,
  );
  expect((await engine.exec.inspect(Id)).ExitCode).toBe(127);
  const left = await readdir(join(env.config.execRoot, "exec")).catch(() => []);
  expect(left).toEqual([]);
});

it("answers 404 for an unknown exec and 409 for a stopped container", async () => {
  await expect(engine.exec.inspect("nosuch")).rejects.toMatchObject({ kind: "not_found" });
  const { Id: other } = await engine.create({
    config: { Image: "busybox", Cmd: ["true"] },
    hostConfig: { NetworkMode: "none" },
  });
  await expect(engine.exec.create(other, { Cmd: ["true"] })).rejects.toMatchObject({ kind: "conflict" });
  await expect(engine.exec.create(id, { Cmd: ["true"], Bogus: 1 })).rejects.toThrow(/Bogus/);
});
